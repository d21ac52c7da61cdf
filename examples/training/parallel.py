"""Training under torch.distributed, as torchrun starts it: one process per GPU (or
per CPU share), each with its own slice of every epoch's data.

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK (and MASTER_ADDR / MASTER_PORT) in
each process's environment; `Launch.from_env` reads them and `start` joins the
process group: NCCL on GPUs, Gloo on CPUs. A compiled network is a plain
nn.Module: DistributedDataParallel wraps it as it wraps any other, and
SyncBatchNorm.convert_sync_batchnorm swaps its batch norms in place, keeping every
state-dict key. FSDP2 (`fully_shard`) needs its units chosen with the generated
forward in mind; see `_fully_shard`.

Weights and optimizer state go to checkpoints through torch.distributed.checkpoint's
state-dict functions, which give the same full, unsharded form (keys are the spec's
node names) whether the model is plain, DDP or FSDP: a checkpoint from one resumes
in another."""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from .errors import TrainingError

MODES = ("ddp", "fsdp")


@dataclass(frozen=True)
class Launch:
    rank: int
    world_size: int
    local_rank: int

    @classmethod
    def from_env(cls, environ=os.environ) -> "Launch | None":
        """The process's place in a torchrun launch; None when not started by torchrun."""
        if "WORLD_SIZE" not in environ:
            return None
        return cls(int(environ["RANK"]), int(environ["WORLD_SIZE"]), int(environ.get("LOCAL_RANK", 0)))

    @property
    def device(self) -> torch.device:
        return torch.device("cuda", self.local_rank) if torch.cuda.is_available() else torch.device("cpu")


def start(launch: Launch) -> torch.device:
    """Join the process group (NCCL on GPUs, Gloo on CPUs); the device to train on."""
    device = launch.device
    if device.type == "cuda":
        if launch.local_rank >= torch.cuda.device_count():
            gpus = torch.cuda.device_count()
            raise TrainingError(f"process {launch.local_rank} of this machine has no GPU of its own: the machine "
                                f"has {gpus}", hint=f"start one process per GPU: torchrun --nproc_per_node={gpus}")
        torch.cuda.set_device(device)
        dist.init_process_group("nccl", device_id=device)
    else:
        dist.init_process_group("gloo")
    return device


def stop() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def is_main() -> bool:
    """Rank 0 prints, plots and saves; a single process is rank 0."""
    return not dist.is_initialized() or dist.get_rank() == 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def sync_batchnorm(net, device: torch.device):
    """Batch norms that compute their statistics over the whole global batch.
    torch's SyncBatchNorm synchronises CUDA (and XPU, HPU) tensors only: on CPU its
    training forward raises, so this is refused there before training starts."""
    if device.type not in ("cuda", "xpu", "hpu"):
        raise TrainingError(f"--sync-bn needs GPUs: torch's SyncBatchNorm synchronises only CUDA, XPU and HPU "
                            f"tensors, and this process trains on {device.type}",
                            hint="on CPUs, train without --sync-bn (each process normalises its own batch)")
    return torch.nn.SyncBatchNorm.convert_sync_batchnorm(net)


def wrap(net, mode: str, device: torch.device, spec):
    """The model to train: `net` itself in a single process, else its DDP or FSDP2
    form. `net` must already be on `device`; `spec` is the one it was built from."""
    if not dist.is_initialized():
        return net
    if mode == "ddp":
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
    if mode == "fsdp":
        return _fully_shard(net, device, spec)
    raise ValueError(f"unknown parallel mode {mode!r}; one of {', '.join(MODES)}")


def _fully_shard(net, device: torch.device, spec):
    try:
        from torch.distributed.fsdp import fully_shard
    except ImportError:  # public from torch 2.6
        raise TrainingError(f"--parallel fsdp needs torch.distributed.fsdp.fully_shard (torch 2.6 or later); "
                            f"this is torch {torch.__version__}", hint="use --parallel ddp, or a newer torch") from None
    from torch.distributed.device_mesh import init_device_mesh

    mesh = init_device_mesh(device.type, (dist.get_world_size(),))
    # FSDP gathers a unit's weights in a hook on that module's forward, so a unit
    # must be a module the forward calls. The generated forward calls each node's
    # layer by its path (`self.layer1[0].conv1(x)`), never a block's namespace
    # (`layer1` only holds modules) nor a layer's own sub-modules, so the units are
    # the layers; the root takes what is left (a weight an op keeps on a namespace,
    # as layer_scale does). Only one layer's weights are whole at a time.
    stay_with_root = _layers_returning_views(spec)
    for name, layer in _layers(net):
        if name not in stay_with_root and any(True for _ in layer.parameters()):
            fully_shard(layer, mesh=mesh)
    fully_shard(net, mesh=mesh)
    return net


def _layers(module, prefix=""):
    """(path, module) of each module a compiled network's forward calls: those at
    nodes' names, below the namespaces of blocks."""
    from archspec.builder import Namespace

    for name, child in module.named_children():
        if isinstance(child, Namespace):
            yield from _layers(child, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", child


def _layers_returning_views(spec) -> set:
    """Layers whose training forward returns a view (nn.MultiheadAttention's
    batch-first transpose does). FSDP2 hooks a unit's backward all-gather on its
    outputs, and an in-place op on such a view (the generated forward adds a residual
    or applies an activation in place where nothing else reads the value) loses the
    hook: backward then finds the weights freed (pytorch/pytorch#181832). These
    layers stay in the root's unit. Found by a training forward on the meta device,
    which allocates nothing."""
    import archspec

    meta = archspec.build(spec, device="meta", check=False).train()
    found, handles = set(), []
    for name, layer in _layers(meta):
        def record(module, args, output, name=name):
            outputs = output if isinstance(output, tuple) else (output,)
            if any(isinstance(t, torch.Tensor) and t._base is not None for t in outputs):
                found.add(name)
        handles.append(layer.register_forward_hook(record))
    meta(torch.empty(2, *spec.input_shape, device="meta"))
    for handle in handles:
        handle.remove()
    return found


def total(*values, device) -> list:
    """Each value summed over all processes (itself in a single process)."""
    if not dist.is_initialized():
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def gathered(obj) -> list:
    """`obj` of every process, in rank order, on every process."""
    if not dist.is_initialized():
        return [obj]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def full_model_state(model) -> dict:
    """The whole state dict on the CPU under the spec's names; under FSDP every
    process must call it (it gathers) and only rank 0 gets the tensors."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def full_optimizer_state(model, optimizer) -> dict:
    """The optimizer's state keyed by parameter name (not position), unsharded."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

    return get_optimizer_state_dict(model, optimizer,
                                    options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def load_optimizer_state(model, optimizer, state: dict) -> None:
    """Undo `full_optimizer_state`, sharding again under FSDP."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

    set_optimizer_state_dict(model, optimizer, state, options=StateDictOptions(full_state_dict=True))

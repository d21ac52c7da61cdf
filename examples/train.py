"""Train a spec on scikit-learn's 8x8 handwritten digits, as article 004 trains its
GoogLeNet: cross-entropy plus 0.3 x each auxiliary head's, SGD with momentum and
weight decay, a learning-rate schedule; test accuracy on a held-out split each epoch.

The same command runs in one process or, started by torchrun, in several (on one
machine or many): see examples/README.md and `python examples/train.py --help`.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler

import archspec
from archspec.artifact import resolved_text
from archspec.spec import parse_override

# examples/training, on sys.path as the folder of this script
from training import parallel
from training.checkpoint import (TrainingState, load_checkpoint, random_state, restore_random_state,
                                 save_checkpoint, save_network)
from training.data import NUM_CLASSES, check_input, load_digits_split
from training.errors import TrainingError
from training.loop import SCHEDULES, Heads, evaluate, make_optimizer, make_schedule, step_schedule, train_epoch

DEFAULT_SPEC = Path(__file__).resolve().parent / "digits_cnn.yaml"
# What a run is started with; a resumed run keeps them, so it replays the same steps.
SETTINGS = {"epochs": 10, "batch_size": 64, "lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4,
            "schedule": "cosine", "seed": 0}
# What the `examples` extra installs: module -> what it is for.
EXTRA = {"sklearn": "scikit-learn (the digits)", "tqdm": "tqdm (the progress bar)", "matplotlib": "matplotlib (--plot)"}
# The figures of each epoch, kept in checkpoints and drawn by --plot.
HISTORY = ("train_loss", "train_acc", "test_loss", "test_acc", "lr", "step_loss")

EPILOG = """\
examples:
  python examples/train.py
  python examples/train.py --spec examples/digits_cnn.yaml --epochs 10 --plot digits.png --out digits.pt
  python examples/train.py --checkpoint run.pt --stop-after 4
  python examples/train.py --resume run.pt --checkpoint run.pt
  python examples/train.py --spec examples/digits_cnn.yaml --set width=16 --set aux_logits=false
  torchrun --nproc_per_node=2 examples/train.py --spec examples/digits_cnn.yaml

The digits are 1x8x8 images of 10 classes: a spec must take input [1, 8, 8] or [64]
(or [1 or 3, H, W], H and W at least 8: the digits are upsampled) and give 10 logits.
Started by torchrun, each process trains on its share of every batch; --batch-size
is per process. Only rank 0 prints, plots and saves.

exit status: 0 ok, 2 invalid spec, option or file."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        if os.environ.get("RANK", "0") == "0":  # under torchrun every process parses: one complaint will do
            self.print_usage(sys.stderr)
            print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(2)


def parse_args(argv=None) -> argparse.Namespace:
    p = _Parser(prog="train.py", description=__doc__.split("\n\n")[0],
                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    p.add_argument("--spec", metavar="SPEC", help=f"spec to train (default: examples/{DEFAULT_SPEC.name})")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override an arg of the spec, as `archspec build --set` does; repeatable")
    p.add_argument("--input", metavar="CxHxW", help="override the spec's input shape (e.g. 1x8x8)")
    p.add_argument("--no-expect", action="store_true",
                   help="do not check the spec's `expect:` figures (a variant may not keep those written for "
                        "its original input)")
    p.add_argument("--epochs", type=int, metavar="N", help=f"epochs in all (default {SETTINGS['epochs']})")
    p.add_argument("--batch-size", type=int, metavar="N",
                   help=f"images per step and process (default {SETTINGS['batch_size']})")
    p.add_argument("--lr", type=float, help=f"initial learning rate (default {SETTINGS['lr']})")
    p.add_argument("--momentum", type=float, metavar="M", help=f"SGD momentum (default {SETTINGS['momentum']})")
    p.add_argument("--weight-decay", type=float, metavar="WD",
                   help=f"SGD weight decay (default {SETTINGS['weight_decay']})")
    p.add_argument("--schedule", choices=SCHEDULES,
                   help="learning-rate schedule: cosine (to 0 at the last epoch), step (/10 at 1/2 and 3/4), "
                        f"plateau (halved after 5 epochs without progress; article 004's) "
                        f"(default {SETTINGS['schedule']})")
    p.add_argument("--seed", type=int, metavar="N", help=f"seed of the initial weights and the data order (default "
                                             f"{SETTINGS['seed']}); the test split never changes")
    p.add_argument("--checkpoint", metavar="FILE", help="save a checkpoint after every epoch (weights as "
                   "`archspec build -o` writes them, optimizer, schedule, epoch, random state)")
    p.add_argument("--resume", metavar="FILE", help="continue the run saved in FILE, with its settings; "
                   "--spec is then not needed")
    p.add_argument("--stop-after", type=int, metavar="N", help="stop after N epochs of this invocation (to fit "
                   "a time slot); with --checkpoint, --resume continues the run later")
    p.add_argument("--out", metavar="FILE", help="write the trained network as `archspec build -o` does "
                   "(load it with archspec.load_built)")
    p.add_argument("--plot", metavar="FILE", help="write loss, accuracy and learning rate per epoch as a PNG")
    p.add_argument("--parallel", choices=parallel.MODES, default="ddp",
                   help="under torchrun: DistributedDataParallel (ddp, default) or FSDP2 fully_shard (fsdp)")
    p.add_argument("--threads", type=int, metavar="N",
                   help="CPU threads per process (default: OMP_NUM_THREADS if set, as torchrun sets it, else 1: "
                        "layers this small run slower split across threads)")
    p.add_argument("--sync-bn", action="store_true",
                   help="under torchrun on GPUs: batch-norm statistics over the global batch (SyncBatchNorm)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    launch = parallel.Launch.from_env()
    try:
        check_counts(args)
        if args.threads is not None or "OMP_NUM_THREADS" not in os.environ:
            torch.set_num_threads(args.threads or 1)
        device = parallel.start(launch) if launch else default_device()
        train(args, device)
        return 0
    except archspec.SpecError as exc:
        if parallel.is_main():
            print("\n".join(d.render() for d in exc.diagnostics), file=sys.stderr)
        return exc.exit_code
    except TrainingError as exc:
        if parallel.is_main():
            print(exc.render("train.py"), file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").split(".")[0]
        if missing not in EXTRA:
            raise
        if parallel.is_main():
            problem = TrainingError(f"train.py needs {EXTRA[missing]}, which is not installed",
                                    hint="pip install -e '.[examples]' (scikit-learn, tqdm, matplotlib)")
            print(problem.render("train.py"), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    finally:
        parallel.stop()


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def check_counts(args) -> None:
    """Numbers argparse takes as any int or float, where only some make sense."""
    for key in ("epochs", "batch_size", "stop_after", "threads"):
        if getattr(args, key) is not None and getattr(args, key) < 1:
            raise TrainingError(f"--{key.replace('_', '-')} must be at least 1, got {getattr(args, key)}",
                                hint="see `python examples/train.py --help`")
    for key in ("lr", "momentum", "weight_decay"):
        if getattr(args, key) is not None and not getattr(args, key) >= 0:  # also refuses nan
            raise TrainingError(f"--{key.replace('_', '-')} must be 0 or more, got {getattr(args, key)}",
                                hint="see `python examples/train.py --help`")


def network_and_state(args):
    """The spec, its network (with weights) and the training state: a new run's from
    --spec, or the saved run's from --resume."""
    overrides = dict(parse_override(assignment) for assignment in args.overrides)
    chosen = {key: getattr(args, key) for key in SETTINGS if getattr(args, key) is not None}
    if args.resume:
        if (overrides or args.input) and not args.spec:
            raise TrainingError("--set and --input change a --spec; a resumed run keeps the checkpoint's network",
                                hint="leave them out, or give the --spec the run was started with")
        spec, net, state = load_checkpoint(args.resume)
        if args.spec and not same_network(archspec.load(args.spec, input_shape=args.input, **overrides), spec):
            raise TrainingError(f"{args.resume} holds {spec.name} as it was when the run started, which is not "
                                f"{args.spec}" + (" with these --set/--input" if overrides or args.input else ""),
                                hint="resume with the spec and options the run was started with, or without --spec")
        for key, value in chosen.items():
            if value != state.settings[key]:
                raise TrainingError(f"--{key.replace('_', '-')} {value} differs from the run's {state.settings[key]}",
                                    hint="a resumed run keeps the settings it started with, so that it takes "
                                         "the steps the uninterrupted run would; start a new run to change them")
        return spec, net, state

    settings = {**SETTINGS, **chosen}
    compiled = archspec.compile_spec(args.spec or DEFAULT_SPEC, input_shape=args.input, check=not args.no_expect,
                                     **overrides)
    check_outputs(compiled)
    check_input(compiled.spec.input_shape)
    torch.manual_seed(settings["seed"])  # the same initial weights in every process
    net = archspec.build_compiled(compiled)
    return compiled.spec, net, TrainingState(settings=settings)


def check_outputs(compiled) -> None:
    """Every output a classifier of the digits is trained on gives 10 logits."""
    for output in compiled.inferred.graph.active_outputs(True):
        shape = list(compiled.inferred.shape(output.node))
        if shape != [NUM_CLASSES]:
            raise TrainingError(f"output `{output.name}` of {compiled.spec.name} has shape {shape}; the digits "
                                f"have {NUM_CLASSES} classes, so each output must be [{NUM_CLASSES}]",
                                hint=f"--set num_classes={NUM_CLASSES}, if the spec has that argument")


def same_network(a, b) -> bool:
    """Specs that resolve to the same network (`expect:` aside: a variant drops it)."""
    docs = [yaml.safe_load(resolved_text(spec)) for spec in (a, b)]
    for doc in docs:
        doc.pop("expect", None)
    return docs[0] == docs[1]


@dataclass
class Session:
    """Everything one invocation trains with, set up by `start_session`."""

    spec: object
    net: torch.nn.Module       # the compiled network (its SyncBatchNorm form with --sync-bn)
    model: torch.nn.Module     # what is called: net, or its DDP / FSDP form
    heads: Heads
    optimizer: torch.optim.Optimizer
    scheduler: object
    sampler: DistributedSampler
    loader: DataLoader
    test_loader: DataLoader
    state: TrainingState       # the epochs done so far and their figures
    device: torch.device
    rank: int
    world: int


def train(args, device: torch.device) -> None:
    say = print if parallel.is_main() else (lambda *a, **k: None)
    s = start_session(args, device, say)
    settings, history = s.state.settings, s.state.history
    last = settings["epochs"] if args.stop_after is None else min(settings["epochs"], s.state.epoch + args.stop_after)
    started = time.perf_counter()
    for epoch in range(s.state.epoch, last):
        epoch_start = time.perf_counter()
        figures = run_epoch(s, epoch)
        for key, value in figures.items():
            history[key].extend(value) if key == "step_loss" else history[key].append(value)
        say(f"epoch {epoch + 1:>{len(str(settings['epochs']))}}/{settings['epochs']}  "
            f"train loss {figures['train_loss']:.4f} acc {100 * figures['train_acc']:5.1f}%  "
            f"test loss {figures['test_loss']:.4f} acc {100 * figures['test_acc']:5.1f}%  "
            f"lr {figures['lr']:.4f}  {time.perf_counter() - epoch_start:.1f} s")
        s.state.epoch = epoch + 1
        if args.checkpoint:
            save(s, args.checkpoint)

    if last < settings["epochs"]:
        say(f"stopped after epoch {last} of {settings['epochs']}"
            + (f"; continue with --resume {args.checkpoint}" if args.checkpoint else ""))
    elif history["test_acc"]:
        done = len(history["test_acc"])
        say(f"test accuracy {100 * history['test_acc'][-1]:.1f}% on {len(s.test_loader.dataset)} held-out digits "
            f"after {done} epoch{'s' if done != 1 else ''} ({time.perf_counter() - started:.1f} s)")
    if args.out:
        model_state = parallel.full_model_state(s.model)  # every process: under FSDP it gathers
        if parallel.is_main():
            save_network(s.spec, model_state, args.out)
            say(f"wrote {args.out} (load it with archspec.load_built)")
    if args.plot and parallel.is_main() and history["test_acc"]:
        from training.plot import plot_history

        plot_history(history, args.plot, f"{s.spec.name} on 8x8 digits")
        say(f"wrote {args.plot}")


def start_session(args, device: torch.device, say) -> Session:
    rank, world = (torch.distributed.get_rank() if parallel.world_size() > 1 else 0), parallel.world_size()
    spec, net, state = network_and_state(args)
    settings = state.settings
    heads = Heads.of(net)
    net = net.to(device)
    if args.sync_bn:
        net = parallel.sync_batchnorm(net, device)
    digits = load_digits_split(spec.input_shape)
    where = f"{world} processes ({args.parallel}, {'nccl' if device.type == 'cuda' else 'gloo'})" if world > 1 \
        else "1 process"
    say(f"{spec.name}: {sum(p.numel() for p in net.parameters()):,} params, outputs {', '.join(heads.train_names)}"
        + (f" (aux weight 0.3: {', '.join(heads.aux)})" if heads.aux else ""))
    say(f"digits: {len(digits.train):,} training, {len(digits.test):,} test images; {device.type}, {where}")
    if digits.note:
        say(digits.note)

    model = parallel.wrap(net, args.parallel, device, spec)
    optimizer = make_optimizer(model.parameters(), settings["lr"], settings["momentum"], settings["weight_decay"])
    scheduler = make_schedule(optimizer, settings["schedule"], settings["epochs"])
    # Each process draws its own dropout masks; the weights were made from the seed
    # alone, the same in every process (FSDP shards them without a broadcast).
    torch.manual_seed(settings["seed"] + rank)
    if state.epoch:
        parallel.load_optimizer_state(model, optimizer, state.optimizer)
        scheduler.load_state_dict(state.scheduler)
        if len(state.rng) == world:
            restore_random_state(state.rng[rank], device)
        else:
            say(f"note: the checkpoint was saved by {len(state.rng)} processes and this run has {world}: "
                "it goes on, but not exactly as the uninterrupted run would have")
        say(f"resumed after epoch {state.epoch} of {settings['epochs']}")
    if not state.history:
        state.history = {key: [] for key in HISTORY}

    # The order of an epoch is a function of the seed and the epoch (set_epoch), so a
    # resumed run sees the batches the uninterrupted one would have.
    sampler = DistributedSampler(digits.train, num_replicas=world, rank=rank, shuffle=True, seed=settings["seed"])
    loader = DataLoader(digits.train, batch_size=settings["batch_size"], sampler=sampler,
                        pin_memory=device.type == "cuda")
    # Every process scores the whole (small) test split: the figures need no exchange,
    # and each calls the model equally often, which DDP and FSDP require.
    test_loader = DataLoader(digits.test, batch_size=256)
    return Session(spec, net, model, heads, optimizer, scheduler, sampler, loader, test_loader, state, device,
                   rank, world)


def run_epoch(s: Session, epoch: int) -> dict:
    """Train one epoch, score the test split, step the schedule; the epoch's figures."""
    from tqdm import tqdm

    s.sampler.set_epoch(epoch)
    bar = tqdm(total=len(s.loader), desc=f"epoch {epoch + 1}/{s.state.settings['epochs']}", leave=False,
               disable=None if parallel.is_main() else True)  # None: no bar when not on a terminal
    result = train_epoch(s.model, s.heads, s.loader, s.optimizer, s.device, bar)
    bar.close()
    loss_sum, correct, count = parallel.total(result.loss_sum, result.correct, result.count, device=s.device)
    test_loss, test_correct, test_count = evaluate(s.model, s.test_loader, s.device)
    lr = s.optimizer.param_groups[0]["lr"]
    step_schedule(s.scheduler, loss_sum / count)
    return {"train_loss": loss_sum / count, "train_acc": correct / count, "test_loss": test_loss / test_count,
            "test_acc": test_correct / test_count, "lr": lr,
            "step_loss": result.losses}  # this process's: the loss of its share of each batch


def save(s: Session, path) -> None:
    """A checkpoint of the run so far. Every process takes part (its random state
    is gathered, and under FSDP its shard of the weights); rank 0 writes."""
    s.state.optimizer = parallel.full_optimizer_state(s.model, s.optimizer)
    s.state.scheduler = s.scheduler.state_dict()
    s.state.rng = parallel.gathered(random_state(s.device))
    model_state = parallel.full_model_state(s.model)
    if parallel.is_main():
        save_checkpoint(path, s.spec, model_state, s.state)


if __name__ == "__main__":
    sys.exit(main())

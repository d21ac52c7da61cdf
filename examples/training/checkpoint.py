"""Checkpoints from which a run resumes exactly where it stopped.

A checkpoint holds what `archspec build -o` writes (the resolved spec and the
weights, loaded back with `archspec.load_built`), and beside it the optimizer's
and the schedule's state, the number of epochs done, each process's random state
and the figures so far. It is written through archspec's atomic_output: a run
stopped while saving leaves the previous checkpoint whole.

What resuming needs to replay the same steps: the weights, the optimizer (momentum
buffers), the schedule, the random generators that dropout draws from, and the data
order, which is no state at all: every epoch's order is a function of the seed and
the epoch number (DistributedSampler.set_epoch), so it is the same again."""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field

import torch

import archspec
from archspec.atomic import atomic_output

from .errors import TrainingError

FORMAT = "archspec-examples.checkpoint/1"
_ARTIFACT = "model.pt"
_KEYS = {"format", "artifact", "epoch", "optimizer", "scheduler", "rng", "history", "settings"}
_WHAT_RESUMES = "--resume takes a file that `train.py --checkpoint FILE` wrote"


@dataclass
class TrainingState:
    epoch: int = 0                                # epochs completed
    optimizer: dict = field(default_factory=dict)  # parallel.full_optimizer_state's form
    scheduler: dict = field(default_factory=dict)
    rng: list = field(default_factory=list)        # random_state() of each process, rank order
    history: dict = field(default_factory=dict)    # name -> one figure per epoch
    settings: dict = field(default_factory=dict)   # what the run was started with (lr, batch size, ...)


class _Weights:
    """What save_built reads of a network, its state dict, when the weights were
    gathered from several processes rather than held by one module."""

    def __init__(self, state: dict):
        self._state = state

    def state_dict(self) -> dict:
        return self._state


def save_network(spec, model_state: dict, path) -> None:
    """What `archspec build -o` writes, from a full state dict (spec names), atomically."""
    archspec.save_built(spec, _Weights(model_state), path)


def save_checkpoint(path, spec, model_state: dict, state: TrainingState) -> None:
    """Write `path` atomically. `model_state`: the full state dict (spec names)."""
    with tempfile.TemporaryDirectory() as tmp:
        save_network(spec, model_state, os.path.join(tmp, _ARTIFACT))
        with open(os.path.join(tmp, _ARTIFACT), "rb") as f:
            artifact = f.read()
    payload = {"format": FORMAT, "artifact": torch.frombuffer(bytearray(artifact), dtype=torch.uint8),
               "epoch": state.epoch, "optimizer": state.optimizer, "scheduler": state.scheduler,
               "rng": state.rng, "history": state.history, "settings": state.settings}
    with atomic_output(path) as f:
        torch.save(payload, f)


def load_checkpoint(path, device=None):
    """(spec, network with its weights, TrainingState) from a checkpoint file. The
    network is checked against its spec as `archspec.load_built` checks any build."""
    shown = os.fspath(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise TrainingError(f"no such file: {shown}", hint=_WHAT_RESUMES) from None
    except Exception as exc:  # torch raises many kinds for a file that is not its format
        raise TrainingError(f"{shown} is not a checkpoint of examples/train.py ({type(exc).__name__})",
                            hint=_WHAT_RESUMES) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise TrainingError(f"{shown} is not a checkpoint of examples/train.py ({FORMAT})", hint=_WHAT_RESUMES)
    if payload.keys() != _KEYS or not isinstance(payload["artifact"], torch.Tensor) \
            or payload["artifact"].dtype != torch.uint8:
        raise TrainingError(f"{shown} is damaged: it lacks parts a checkpoint has", hint=_WHAT_RESUMES)
    with tempfile.TemporaryDirectory() as tmp:
        artifact = os.path.join(tmp, _ARTIFACT)
        with open(artifact, "wb") as f:
            f.write(payload["artifact"].numpy().tobytes())
        try:
            net = archspec.load_built(artifact, device=device)  # checks the weights against the spec
        except archspec.SpecError as exc:
            detail = exc.diagnostics[0].message.replace(f"artifact is damaged: {artifact}: ", "")
            raise TrainingError(f"{shown} is damaged: {detail.replace(artifact, 'its network')}",
                                hint=_WHAT_RESUMES) from None
        spec_text = torch.load(artifact, map_location="meta", weights_only=True)["spec"]
    spec = archspec.loads(spec_text, name=f"{shown}#spec")
    state = TrainingState(payload["epoch"], payload["optimizer"], payload["scheduler"], payload["rng"],
                          payload["history"], payload["settings"])
    return spec, net, state


def random_state(device: torch.device) -> dict:
    """The generators training draws from: torch's CPU one, and the GPU's when on one."""
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore_random_state(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["cpu"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)

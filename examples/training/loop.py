"""The training loop of article 004 (GoogLeNet on CIFAR-10): cross-entropy on the
main output plus 0.3 x the cross-entropy of each auxiliary head, SGD with momentum
and weight decay, and a learning-rate schedule stepped once per epoch.

A compiled network names its outputs: in training mode it returns those of
`output_names(True)`, the main output first, then the training-only (auxiliary) ones;
in eval mode only the main one. The functions here take the model to call (the
network itself or its DistributedDataParallel / FSDP form) and the `Heads` read
from the network, since a wrapper does not carry the names."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .errors import TrainingError

AUX_WEIGHT = 0.3  # GoogLeNet's weight for each auxiliary loss, as article 004 uses it
SCHEDULES = ("cosine", "step", "plateau")


@dataclass(frozen=True)
class Heads:
    """Which outputs a network returns in training mode, and which of them is the main one."""

    train_names: tuple
    main: str
    aux: tuple

    @classmethod
    def of(cls, net) -> "Heads":
        evaluated = net.output_names(False)
        if len(evaluated) != 1:
            raise TrainingError(f"{net.spec_name} has {len(evaluated)} outputs in eval mode "
                                f"({', '.join(evaluated)}); a classifier has one",
                                hint="mark the others `train_only: true` in the spec's `outputs:` if they "
                                     "are auxiliary heads")
        training = net.output_names(True)
        return cls(training, evaluated[0], tuple(n for n in training if n not in evaluated))


def loss_and_logits(model, heads: Heads, images, labels):
    """The training objective on one batch, and the main output's logits."""
    outputs = model(images)
    named = dict(zip(heads.train_names, outputs if isinstance(outputs, tuple) else (outputs,)))
    loss = F.cross_entropy(named[heads.main], labels)
    for name in heads.aux:
        loss = loss + AUX_WEIGHT * F.cross_entropy(named[name], labels)
    return loss, named[heads.main]


def train_step(model, heads: Heads, optimizer, images, labels):
    """One SGD step; the loss (a detached tensor) and the batch's correct predictions."""
    loss, logits = loss_and_logits(model, heads, images, labels)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach(), (logits.argmax(1) == labels).sum()


@dataclass
class EpochResult:
    losses: list      # the loss of each step, in order
    loss_sum: float   # sum over samples, for a mean across processes
    correct: int
    count: int


def train_epoch(model, heads: Heads, loader, optimizer, device, progress=None) -> EpochResult:
    """One pass over `loader` in training mode. `progress`, if given, is a tqdm bar
    (or anything with update(n) and set_postfix_str(s))."""
    model.train()
    losses, sizes, correct = [], [], torch.zeros((), dtype=torch.long, device=device)
    for images, labels in loader:
        images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        loss, hits = train_step(model, heads, optimizer, images, labels)
        losses.append(loss)
        sizes.append(len(labels))
        correct += hits
        if progress is not None:
            progress.update(1)
            progress.set_postfix_str(f"loss {loss.item():.3f}", refresh=False)
    values = torch.stack(losses).tolist() if losses else []  # one device sync per epoch
    return EpochResult(values, sum(v * n for v, n in zip(values, sizes)), int(correct), sum(sizes))


@torch.no_grad()
def evaluate(model, loader, device) -> tuple[float, float, int]:
    """Summed cross-entropy, correct predictions and count of the main output in eval
    mode, where a compiled network computes no auxiliary head."""
    model.eval()
    loss_sum, correct, count = 0.0, 0, 0
    for images, labels in loader:
        images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        logits = model(images)
        loss_sum += F.cross_entropy(logits, labels, reduction="sum").item()
        correct += int((logits.argmax(1) == labels).sum())
        count += len(labels)
    return loss_sum, correct, count


def make_optimizer(parameters, lr: float, momentum: float = 0.9, weight_decay: float = 5e-4):
    """Article 004's optimizer: SGD with momentum 0.9 and weight decay 5e-4."""
    return torch.optim.SGD(parameters, lr=lr, momentum=momentum, weight_decay=weight_decay)


def make_schedule(optimizer, name: str, epochs: int):
    """The learning rate over the epochs: `cosine` anneals it to 0 by the last epoch,
    `step` divides it by 10 at 1/2 and 3/4 of the run, `plateau` halves it when the
    training loss has not improved for 5 epochs (article 004's ReduceLROnPlateau)."""
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    if name == "step":
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[epochs // 2, epochs * 3 // 4],
                                                    gamma=0.1)
    if name == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, "min", factor=0.5, patience=5,
                                                          min_lr=1e-6)
    raise ValueError(f"unknown schedule {name!r}; one of {', '.join(SCHEDULES)}")


def step_schedule(scheduler, train_loss: float) -> None:
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        scheduler.step(train_loss)
    else:
        scheduler.step()

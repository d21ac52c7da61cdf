"""The run's curves as a PNG, as article 004 draws them: loss and accuracy per
epoch, training beside test, and the learning rate."""
from __future__ import annotations

from archspec.atomic import atomic_output


def plot_history(history: dict, path, title: str) -> None:
    """`history`: train_loss, test_loss, train_acc, test_acc (0..1) and lr, one
    value per epoch. Written atomically, so an old plot is never left half-replaced."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed; set before pyplot is imported
    import matplotlib.pyplot as plt

    epochs = range(1, len(history["train_loss"]) + 1)
    fig, (loss, acc, lr) = plt.subplots(1, 3, figsize=(13, 3.8), layout="constrained")
    loss.plot(epochs, history["train_loss"], "o-", label="train (with 0.3 x aux)")
    loss.plot(epochs, history["test_loss"], "s-", label="test")
    loss.set(title="loss", xlabel="epoch", ylabel="cross-entropy")
    acc.plot(epochs, [100 * a for a in history["train_acc"]], "o-", label="train")
    acc.plot(epochs, [100 * a for a in history["test_acc"]], "s-", label="test")
    acc.set(title="accuracy", xlabel="epoch", ylabel="%")
    lr.plot(epochs, history["lr"], "o-", color="tab:green")
    lr.set(title="learning rate", xlabel="epoch")
    for ax in (loss, acc):
        ax.legend()
    for ax in (loss, acc, lr):
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    with atomic_output(path) as f:
        fig.savefig(f, format="png", dpi=100)
    plt.close(fig)

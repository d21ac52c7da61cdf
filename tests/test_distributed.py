"""A compiled network under torch.distributed on the CPU (Gloo), in two processes
set up as torchrun sets them up: one SGD step under DistributedDataParallel and under
FSDP2 gives the weights one process gets from the combined batch, and
examples/train.py trains in both modes, with only rank 0 printing and saving."""
from __future__ import annotations

import contextlib
import io
import os
import re
import socket
import subprocess
import sys
import time

import pytest
import torch
import torch.multiprocessing as mp

import archspec
from conftest import ROOT

EXAMPLES = ROOT / "examples"
sys.path.insert(0, str(EXAMPLES))
from training import loop, parallel  # noqa: E402

WORLD = 2
MODES = ("ddp", "fsdp")
# No dropout and no batch norm: each process's forward then depends on its own
# samples only, so the averaged gradient is the combined batch's. An auxiliary head
# (training only, weighted 0.3) keeps it like the digits network. Two things FSDP
# must be shown around: a layer scale keeps its weight on a block's namespace, which
# is not a layer; and attention returns a view that the generated forward then
# changes in place (the ReLU after it), which loses FSDP2's backward hook on a unit
# (pytorch/pytorch#181832).
SPEC = """
archspec: 1
name: step_check
input: [1, 8, 8]
graph:
  conv1: {op: conv, out: 6, k: 3, pad: 1}
  relu1: {op: relu}
  pool: {op: maxpool, k: 2}
  block:
    seq:
      conv2: {op: conv, out: 8, k: 3, pad: 1}
      gamma: {op: layer_scale, value: 0.5}
      relu2: {op: relu}
  tokens: {op: reshape, shape: [8, 16]}
  attn: {op: attention, heads: 2}
  relu3: {op: relu}
  flatten: {op: flatten}
  fc: {op: linear, out: 10}
  aux:
    from: pool
    seq:
      flatten: {op: flatten}
      fc: {op: linear, out: 10}
outputs:
  logits: fc
  aux: {from: aux, train_only: true}
"""
LR = 0.5


def _network():
    torch.manual_seed(0)
    return archspec.build(archspec.loads(SPEC))


def _batch():
    generator = torch.Generator().manual_seed(1)
    return torch.randn(8 * WORLD, 1, 8, 8, generator=generator), torch.randint(0, 10, (8 * WORLD,), generator=generator)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, ports: list, out: str) -> None:
    """One process of a two-process run, given the environment torchrun would give it."""
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(WORLD), MASTER_ADDR="127.0.0.1",
                      OMP_NUM_THREADS="1")
    torch.set_num_threads(1)
    for mode, port in zip(MODES, ports):
        os.environ["MASTER_PORT"] = str(port)
        launch = parallel.Launch.from_env()
        device = parallel.start(launch)
        net = _network()
        model = parallel.wrap(net, mode, device, archspec.loads(SPEC))
        optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=0)
        images, labels = _batch()
        mine = slice(rank * 8, rank * 8 + 8)
        loop.train_step(model, loop.Heads.of(net), optimizer, images[mine], labels[mine])
        state = parallel.full_model_state(model)
        if rank == 0:
            torch.save(state, os.path.join(out, f"{mode}.pt"))
        parallel.stop()

    import train  # examples/train.py, which starts (and stops) the process group itself

    for mode, port in zip(MODES, ports[len(MODES):]):
        os.environ["MASTER_PORT"] = str(port)
        stdout = io.StringIO()
        with contextlib.redirect_stdout(stdout):
            status = train.main(["--epochs", "1", "--set", "width=8", "--parallel", mode,
                                 "--checkpoint", os.path.join(out, f"{mode}-run.pt")])
        with open(os.path.join(out, f"{mode}-{rank}.txt"), "w") as f:
            f.write(f"{status}\n{stdout.getvalue()}")
    # Everything is on disk. DDP imported ~900 modules (dynamo, sympy), and a normal
    # interpreter exit spends seconds tearing them down.
    sys.stderr.flush()
    os._exit(0)


def test_two_processes_train_as_one_process_on_the_combined_batch(tmp_path):
    ports = [_free_port() for _ in range(2 * len(MODES))]
    context = mp.start_processes(_worker, args=(ports, str(tmp_path)), nprocs=WORLD, join=False,
                                 start_method="spawn")
    deadline = time.monotonic() + 120
    while not context.join(timeout=1):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail("the two processes did not finish in 120 s")

    # The reference: one process, the whole batch, the same step.
    net = _network()
    optimizer = torch.optim.SGD(net.parameters(), lr=LR, momentum=0)
    images, labels = _batch()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    loop.train_step(net, loop.Heads.of(net), optimizer, images, labels)
    for mode in MODES:
        theirs = torch.load(tmp_path / f"{mode}.pt", weights_only=True)
        assert theirs.keys() == net.state_dict().keys()
        for key, ours in net.state_dict().items():
            assert not torch.equal(ours, before[key]), key  # the step moved every weight...
            assert torch.allclose(theirs[key], ours, rtol=0, atol=1e-6), (mode, key)  # ...as one process moved it

    for mode in MODES:
        status, printed = (tmp_path / f"{mode}-0.txt").read_text().split("\n", 1)
        assert status == "0"
        assert f"2 processes ({mode}, gloo)" in printed
        assert re.search(r"^epoch 1/1  train loss [\d.]+ acc", printed, re.M)
        assert (tmp_path / f"{mode}-1.txt").read_text() == "0\n"  # rank 1 says nothing
        from training.checkpoint import load_checkpoint

        _, _, state = load_checkpoint(tmp_path / f"{mode}-run.pt")
        assert state.epoch == 1 and len(state.rng) == WORLD  # each process's random state
        # 1,437 training digits in 2 shares of 719 (one padded), 64 a step: 12 steps each
        assert len(state.history["step_loss"]) == 12


@pytest.mark.slow
def test_torchrun_runs_the_example_as_the_readme_shows(tmp_path):
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", str(EXAMPLES / "train.py"),
               "--spec", str(EXAMPLES / "digits_cnn.yaml")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "2 processes (ddp, gloo)" in result.stdout
    assert len(re.findall(r"^epoch 10/10 ", result.stdout, re.M)) == 1  # printed by rank 0 alone
    assert float(re.search(r"^test accuracy ([\d.]+)%", result.stdout, re.M)[1]) >= 95

"""examples/train.py: a compiled network trained on scikit-learn's 8x8 digits as
article 004 trains GoogLeNet, checkpoints that resume exactly, the options' errors,
and SyncBatchNorm on a compiled network. The multi-process runs are in
test_distributed.py."""
from __future__ import annotations

import contextlib
import io
import re
import shlex
import subprocess
import sys
import time

import pytest
import torch
import torch.nn.functional as F

import archspec
from conftest import ROOT

EXAMPLES = ROOT / "examples"
sys.path.insert(0, str(EXAMPLES))  # train.py and its `training` package, as `python examples/train.py` sees them
import train  # noqa: E402
from training import data, loop  # noqa: E402
from training.checkpoint import load_checkpoint  # noqa: E402

DIGITS_CNN = EXAMPLES / "digits_cnn.yaml"
SMALL = ["--set", "width=8"]  # digits_cnn at a quarter of its width: the same layers, quicker


def run(argv) -> tuple[int, str, str]:
    """train.py's main in this process; its status, stdout and stderr. It sets torch's
    thread count (1 by default), which is restored for the tests after it."""
    out, err, threads = io.StringIO(), io.StringIO(), torch.get_num_threads()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = train.main([str(a) for a in argv])
    finally:
        torch.set_num_threads(threads)
    return status, out.getvalue(), err.getvalue()


def test_aux_heads_are_added_at_weight_0_3():
    net = archspec.build(DIGITS_CNN).train()
    heads = loop.Heads.of(net)
    assert (heads.main, heads.aux) == ("logits", ("aux",))
    images, labels = torch.randn(8, 1, 8, 8), torch.randint(0, 10, (8,))
    torch.manual_seed(1)  # the same dropout mask in both forwards
    loss, logits = loop.loss_and_logits(net, heads, images, labels)
    torch.manual_seed(1)
    main, aux = net(images)
    assert torch.equal(logits, main)
    # Article 004: loss = loss0 + loss1 * 0.3 + loss2 * 0.3, one term per auxiliary head.
    assert torch.allclose(loss, F.cross_entropy(main, labels) + 0.3 * F.cross_entropy(aux, labels))


def test_two_epochs_beat_chance_and_write_the_network_plot_and_checkpoint(tmp_path):
    out, png, ckpt = tmp_path / "digits.pt", tmp_path / "digits.png", tmp_path / "run.pt"
    status, stdout, stderr = run(["--epochs", 2, "--out", out, "--plot", png, "--checkpoint", ckpt])
    assert status == 0, stderr
    assert re.search(r"^epoch 1/2  train loss [\d.]+ acc +[\d.]+%  test loss [\d.]+ acc +[\d.]+%", stdout, re.M)
    printed = float(re.search(r"^test accuracy ([\d.]+)% on 360 held-out digits after 2 epochs", stdout, re.M)[1])
    assert printed > 50  # ten classes: chance is 10%

    # The network written by --out is the trained one: scored again here, it gets the
    # accuracy the run printed.
    net = archspec.load_built(out).eval()
    digits = data.load_digits_split()
    images, labels = digits.test.tensors
    with torch.no_grad():
        accuracy = 100 * (net(images).argmax(1) == labels).float().mean().item()
    assert accuracy == pytest.approx(printed, abs=0.05)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    spec, _, state = load_checkpoint(ckpt)
    assert spec.name == "digits_cnn" and state.epoch == 2 and len(state.history["test_acc"]) == 2


def test_the_split_is_fixed_and_stratified():
    first, second = data.load_digits_split(), data.load_digits_split()
    assert torch.equal(first.test.tensors[1], second.test.tensors[1])
    # 1,797 digits, a fifth held out: 360 test images, 36 of each class (178 to 183 per class in all)
    counts = torch.bincount(first.test.tensors[1], minlength=10)
    assert len(first.test) == 360 and len(first.train) == 1437 and counts.min() >= 35 and counts.max() <= 37


def test_digits_fit_flat_and_upsampled_inputs():
    images = torch.rand(2, 1, 8, 8)
    assert data.fit_to_input(images, (64,))[0].shape == (2, 64)
    resized, note = data.fit_to_input(images, (3, 32, 32))
    assert resized.shape == (2, 3, 32, 32) and "upsampled" in note
    assert torch.equal(resized[:, 0], resized[:, 2])  # grey: the same in every channel


def test_resume_replays_the_uninterrupted_run(tmp_path):
    whole, part = tmp_path / "whole.pt", tmp_path / "part.pt"
    assert run(["--epochs", 3, *SMALL, "--checkpoint", whole])[0] == 0
    status, stdout, _ = run(["--epochs", 3, *SMALL, "--checkpoint", part, "--stop-after", 1])
    assert status == 0 and "stopped after epoch 1 of 3" in stdout
    # A fresh network from the checkpoint's `build -o` artifact, the optimizer's momentum,
    # the schedule, the dropout generator, and the data order (seed and epoch).
    status, stdout, stderr = run(["--resume", part, "--checkpoint", part])
    assert status == 0 and "resumed after epoch 1 of 3" in stdout, stderr

    _, net_a, a = load_checkpoint(whole)
    _, net_b, b = load_checkpoint(part)
    steps = len(a.history["step_loss"])
    assert steps == 3 * 23  # ceil(1437 / 64) steps an epoch
    assert b.history == a.history  # every step's loss, bit for bit, and each epoch's figures
    for key, tensor in net_a.state_dict().items():
        assert torch.equal(tensor, net_b.state_dict()[key]), key
    assert a.optimizer["state"].keys() == b.optimizer["state"].keys()
    for name, buffers in a.optimizer["state"].items():
        assert torch.equal(buffers["momentum_buffer"], b.optimizer["state"][name]["momentum_buffer"]), name

    # A resumed run keeps its settings: another learning rate would not replay it.
    status, _, stderr = run(["--resume", part, "--lr", 0.5])
    assert status == 2 and "--lr 0.5 differs from the run's 0.1" in stderr and "Traceback" not in stderr

    # A damaged checkpoint is an error naming it, not a traceback: one missing parts,
    # and one whose network's spec was edited (its first stage renamed).
    payload = torch.load(part, weights_only=True)
    torch.save({k: v for k, v in payload.items() if k != "rng"}, tmp_path / "partial.pt")
    artifact = payload["artifact"].numpy().tobytes().replace(b"stage1:", b"stageX:", 1)
    torch.save({**payload, "artifact": torch.frombuffer(bytearray(artifact), dtype=torch.uint8)},
               tmp_path / "edited.pt")
    for name, message in (("partial.pt", "is damaged: it lacks parts a checkpoint has"),
                          ("edited.pt", "is damaged: its spec is not valid: unknown input `stage1`")):
        status, _, stderr = run(["--resume", tmp_path / name])
        assert status == 2 and message in stderr and "Traceback" not in stderr, stderr


@pytest.mark.parametrize("argv, message", [
    (["--input", "2x8x8"], "train.py: error: the spec takes input [2, 8, 8]; the digits are 1x8x8 grey images"),
    (["--set", "num_classes=5"], "output `logits` of digits_cnn has shape [5]; the digits have 10 classes"),
    (["--spec", ROOT / "specs" / "resnet18.yaml"], "output `output` of resnet18 has shape [1000]"),
    (["--set", "widht=3"], "error[E0601]: `widht` is not an argument"),
    (["--epochs", "0"], "train.py: error: --epochs must be at least 1, got 0"),
    (["--resume", "no-such-run.pt"], "train.py: error: no such file: no-such-run.pt"),
    (["--resume", DIGITS_CNN], "is not a checkpoint of examples/train.py"),
    (["--set", "width=4"] + (["--sync-bn"] if not torch.cuda.is_available() else []),
     "--sync-bn needs GPUs" if not torch.cuda.is_available() else None),
], ids=["input", "classes", "zoo-classes", "spec-error", "epochs", "no-checkpoint", "not-checkpoint", "sync-bn"])
def test_mistakes_are_one_error_and_a_hint_not_a_traceback(argv, message):
    if message is None:
        pytest.skip("SyncBatchNorm works on this machine's GPU")
    status, _, stderr = run(argv)
    assert status == 2
    assert message in stderr and "= hint:" in stderr and "Traceback" not in stderr


def test_a_missing_extra_is_named_with_its_install_command(monkeypatch):
    for name in ("sklearn", "sklearn.datasets"):
        monkeypatch.setitem(sys.modules, name, None)  # as if scikit-learn were not installed
    status, _, stderr = run(["--set", "width=4"])
    assert status == 2 and "train.py needs scikit-learn (the digits), which is not installed" in stderr
    assert "pip install -e '.[examples]'" in stderr and "Traceback" not in stderr


def test_sync_batchnorm_conversion_keeps_keys_and_the_generated_forward():
    torch.manual_seed(0)
    reference = archspec.build(DIGITS_CNN)
    torch.manual_seed(0)
    net = archspec.build(DIGITS_CNN)
    keys = list(net.state_dict())
    converted = torch.nn.SyncBatchNorm.convert_sync_batchnorm(net)
    # The root is not a batch norm: the same module comes back, its four bns replaced
    # where they were, so the forward (which calls `self.stage1[0].bn` by path) finds them.
    assert converted is net
    assert sum(isinstance(m, torch.nn.SyncBatchNorm) for m in net.modules()) == 4
    assert list(net.state_dict()) == keys
    images = torch.randn(16, 1, 8, 8)
    for training in (False, True):  # without a process group, SyncBatchNorm computes as BatchNorm2d
        torch.manual_seed(1)
        expected = reference.train(training)(images)
        torch.manual_seed(1)
        assert all(torch.equal(a, b) for a, b in zip(expected, net.train(training)(images)))
    assert reference.load_state_dict(net.state_dict(), strict=True)  # a SyncBatchNorm run saves plain weights


def test_help_examples_are_valid_command_lines():
    lines = [line.strip() for line in train.EPILOG.splitlines() if "examples/train.py" in line]
    assert len(lines) >= 5
    for line in lines:
        words = shlex.split(line)
        args = train.parse_args(words[words.index("examples/train.py") + 1:])
        assert args.spec is None or (ROOT / args.spec).is_file()


def documented_commands() -> list[tuple[str, str]]:
    """(command, shown output) for each train.py or torchrun command in --help and in
    the console blocks of examples/README.md (the multi-GPU and multi-machine ones are
    in sh blocks: they need what a test does not have)."""
    found = [(line.strip(), "") for line in train.EPILOG.splitlines() if "examples/train.py" in line]
    text = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    for block in re.findall(r"```console\n(.*?)```", text, re.S):
        for command, shown in re.findall(r"^\$ ((?:python|torchrun) .*examples/train\.py.*)\n((?:(?!\$ ).*\n)*)",
                                         block, re.M):
            found.append((command, shown))
    return found


@pytest.mark.slow
def test_documented_training_commands_run_as_written(tmp_path):
    for name in ("examples", "specs"):  # the commands' relative paths; what they write stays here
        (tmp_path / name).symlink_to(ROOT / name)
    commands = documented_commands()
    assert len(commands) >= 10
    for command, shown in commands:
        words = shlex.split(command)
        if words[0] == "torchrun":
            words = [sys.executable, "-m", "torch.distributed.run", *words[1:]]
        else:
            words[0] = sys.executable
        result = subprocess.run(words, cwd=tmp_path, capture_output=True, text=True, timeout=300)
        if "error:" in shown:  # shown failing: it fails with that message
            assert result.returncode == 2 and shown.splitlines()[0] in result.stderr, command
        else:
            assert result.returncode == 0, f"{command}\n{result.stderr}"
            final = [line for line in shown.splitlines() if line.startswith("test accuracy")]
            assert not final or final[0].split(" (")[0] in result.stdout, command  # the figures shown
    assert (tmp_path / "digits.png").is_file() and (tmp_path / "digits.pt").is_file()


@pytest.mark.slow
def test_the_default_run_reaches_95_percent_within_a_minute():
    started = time.perf_counter()
    result = subprocess.run([sys.executable, str(EXAMPLES / "train.py")], capture_output=True, text=True,
                            timeout=300, cwd=ROOT)
    elapsed = time.perf_counter() - started
    assert result.returncode == 0, result.stderr
    accuracy = float(re.search(r"^test accuracy ([\d.]+)%", result.stdout, re.M)[1])
    print(f"\n{result.stdout}wall time {elapsed:.1f} s")
    assert accuracy >= 95

"""Summary extras: folding, trainable vs frozen, memory estimates."""
import textwrap

import torchvision

import archspec
from conftest import SPECS


def test_buffers_and_params_memory_match_torchvision():
    summary = archspec.summarize(SPECS / "resnet50.yaml", dtype="float32")
    theirs = torchvision.models.resnet50(weights=None)
    assert summary.param_bytes == sum(p.numel() * p.element_size() for p in theirs.parameters())
    assert summary.buffer_bytes == sum(b.numel() * b.element_size() for b in theirs.buffers())
    half = archspec.summarize(SPECS / "resnet50.yaml", dtype="bfloat16")
    assert half.param_bytes * 2 == summary.param_bytes


def test_activation_memory_is_the_sum_of_allocated_outputs():
    spec = archspec.loads(textwrap.dedent("""
        input: [3, 8, 8]
        graph:
          c: {op: conv, out: 4, k: 3, pad: 1}
          r: {op: relu}
          f: {op: flatten}
          l: {op: linear, out: 10}
    """))
    s = archspec.summarize(spec, batch=2, dtype="float16")
    # conv 4*8*8 + relu 4*8*8 + linear 10 (flatten is a view), x batch 2 x 2 bytes
    assert s.activation_bytes == (256 + 256 + 10) * 2 * 2


def test_frozen_nodes_do_not_train():
    spec = archspec.loads(textwrap.dedent("""
        input: [3, 8, 8]
        blocks:
          stem:
            body: {c: {op: conv, out: 4, k: 3}, b: {op: bn}}
        graph:
          trunk: {block: stem, frozen: true}
          head: [{op: flatten}, {op: linear, out: 5}]
    """))
    s = archspec.summarize(spec)
    # frozen: conv 4*3*9 + 4 = 112 and bn 8; trainable: linear 4*6*6*5 + 5 = 725
    assert (s.frozen_params, s.trainable_params) == (120, 725)
    net = archspec.build(spec)
    assert not any(p.requires_grad for p in net.trunk.parameters())
    assert all(p.requires_grad for p in net.head.parameters())


def test_depth_folds_rows_into_blocks():
    s = archspec.summarize(SPECS / "resnet50.yaml", depth=2)
    rows = {r.name: r for r in s.rows}
    assert rows["layer1.0"].op == "bottleneck"
    # layer1.0: 1x1 64->64, 3x3 64->64, 1x1 64->256, BNs 2*(64+64+256), projection 64*256 + 2*256
    assert rows["layer1.0"].params == 4096 + 36864 + 16384 + 768 + 16384 + 512
    assert sum(r.params for r in s.rows) == 25_557_032  # REFERENCE.md
    assert rows["layer4.2"].shape == (1, 2048, 7, 7)

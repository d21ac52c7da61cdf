"""Value-level checks of the ops for MobileNetV3, EfficientNet, RegNet, ShuffleNetV2,
ConvNeXt and ViT: each against the PyTorch or torchvision code it imitates, with the
same weights (loaded by state-dict key, so the keys must be torchvision's), in
training and eval mode, with gradients. Where the computation is the same, the
results must be bitwise equal."""
import textwrap

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from torchvision.models.convnext import CNBlock, LayerNorm2d
from torchvision.models.shufflenetv2 import InvertedResidual, channel_shuffle
from torchvision.ops import SqueezeExcitation, StochasticDepth

import archspec
from archspec import SpecError


def build(text, **kwargs):
    return archspec.build(archspec.loads(textwrap.dedent(text)), verify=True, **kwargs)


def error_codes(text):
    with pytest.raises(SpecError) as err:
        archspec.compile_spec(archspec.loads(textwrap.dedent(text)))
    return [d.code for d in err.value.diagnostics]


def one_op(input_shape, node: str):
    """A network of one op node, written as flow YAML."""
    return build(f"input: {list(input_shape)}\ngraph:\n  node: {node}\n")


def run_both(net, ref, x, seed=0):
    """Outputs and gradients (input and every named parameter) of two modules that
    hold the same weights, on the same input, after the same seed."""
    results = []
    for module in (net, ref):
        xi = x.clone().requires_grad_(True)
        torch.manual_seed(seed)
        out = module(xi)
        out.backward(torch.linspace(-1, 1, out.numel()).reshape(out.shape))
        grads = {name: p.grad.clone() for name, p in module.named_parameters()}
        module.zero_grad()
        results.append((out.detach(), xi.grad, grads))
    return results


def assert_same(net, ref, x, seed=0, exact_grads=True, prefix=""):
    """Outputs bitwise equal; gradients too unless `exact_grads` is False (a tensor read
    by several ops sums their gradients in an order the graph's layout decides).
    `prefix`: where `ref`'s parameters sit in `net` (`node.` for a one-op network)."""
    (out, gx, grads), (ref_out, ref_gx, ref_grads) = run_both(net, ref, x, seed)
    ref_grads = {prefix + name: grad for name, grad in ref_grads.items()}
    assert torch.equal(out, ref_out), (out - ref_out).abs().max()
    same = torch.equal if exact_grads else (lambda a, b: torch.allclose(a, b, atol=1e-6, rtol=1e-5))
    assert same(gx, ref_gx), (gx - ref_gx).abs().max()
    assert grads.keys() == ref_grads.keys()
    for name in grads:
        assert same(grads[name], ref_grads[name]), (name, (grads[name] - ref_grads[name]).abs().max())


# -- mul ----------------------------------------------------------------------

SE = """
    input: [8, 6, 6]
    graph:
      se:
        mul:
          - ~
          - avgpool: {op: adaptive_avgpool}
            fc1: {op: conv, out: 4, k: 1}
            activation: {op: relu}
            fc2: {op: conv, out: 8, k: 1}
            scale_activation: {op: hardsigmoid}
"""


@pytest.mark.parametrize("training", [True, False])
def test_mul_join_is_torchvisions_squeeze_excitation(training):
    ref = SqueezeExcitation(8, 4, scale_activation=nn.Hardsigmoid)
    net = build(SE)
    assert list(net.state_dict()) == list(ref.state_dict())
    net.load_state_dict(ref.state_dict())
    net.train(training), ref.train(training)
    # `x * scale` here, `scale * x` there: IEEE products commute, bit for bit.
    assert_same(net, ref, torch.randn(2, 8, 6, 6))
    # The input is read twice (pool and product), so the product must not overwrite it.
    assert "se = x * scale_activation" in net.code(training)


def test_mul_broadcasts_in_either_order_and_of_three():
    net = build("""
        input: [4, 5, 5]
        graph:
          gate: {op: adaptive_avgpool}
          a: {op: mul, from: [input, gate]}
          b: {op: mul, from: [gate, input]}
          c: {op: mul, from: [a, b, gate]}
    """)
    x = torch.randn(2, 4, 5, 5)
    gate = F.adaptive_avg_pool2d(x, 1)
    assert torch.equal(net(x), (x * gate) * (gate * x) * gate)


@pytest.mark.parametrize("training", [True, False])
def test_mul_in_place_only_where_nothing_else_reads_the_first_input(training):
    # `bn` is read by the product alone: it may take the result (as `add` does);
    # `conv` is read by the product and by `out`, so its product allocates.
    text = """
        input: [3, 4, 4]
        graph:
          conv: {op: conv, out: 4, k: 1}
          bn: {op: bn}
          gate: {op: sigmoid, from: conv}
          scaled: {op: mul, from: [bn, gate]}
          other: {op: mul, from: [conv, gate]}
          out: {op: add, from: [scaled, other, conv]}
    """
    net = build(text).train(training)
    code = net.code(training)
    assert "bn *= gate" in code and "other = conv * gate" in code

    class Reference(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.bn = nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4)

        def forward(self, x):
            conv = self.conv(x)
            gate = torch.sigmoid(conv)
            return self.bn(conv) * gate + conv * gate + conv

    ref = Reference().train(training)
    ref.load_state_dict(net.state_dict())
    assert_same(net, ref, torch.randn(2, 3, 4, 4), exact_grads=False)


def test_mul_reports_shapes_that_do_not_broadcast():
    assert error_codes("""
        input: [4, 5, 5]
        graph:
          a: {op: conv, out: 3, k: 1}
          b: {op: mul, from: [input, a]}
    """) == ["E0401"]
    assert error_codes("""
        input: [4, 5, 5]
        graph:
          a: {op: flatten}
          b: {op: mul, from: [input, a]}
    """) == ["E0401"]


# -- activations ----------------------------------------------------------------

@pytest.mark.parametrize("op, module", [("hardswish", nn.Hardswish), ("hardsigmoid", nn.Hardsigmoid)])
@pytest.mark.parametrize("training", [True, False])
def test_hard_activations_match_torchvisions_conv_norm_activation(op, module, training):
    # Conv2dNormActivation applies its activation in place, as archspec does after bn.
    ref = torchvision.ops.Conv2dNormActivation(3, 6, 3, activation_layer=module)
    net = build(f"""
        input: [3, 6, 6]
        graph: [{{op: conv, out: 6, k: 3, pad: 1, bias: false}}, {{op: bn}}, {{op: {op}}}]
    """)
    assert list(net.state_dict()) == list(ref.state_dict())
    net.load_state_dict(ref.state_dict())
    net.train(training), ref.train(training)
    assert "inplace = True" in net.code(training)
    assert_same(net, ref, 4 * torch.randn(2, 3, 6, 6))


@pytest.mark.parametrize("op, fn", [("hardswish", F.hardswish), ("hardsigmoid", F.hardsigmoid)])
def test_hard_activation_in_place_keeps_a_second_readers_value(op, fn):
    net = build(f"""
        input: [5]
        graph:
          fc: {{op: linear, out: 5}}
          act: {{op: {op}}}
          out: {{op: add, from: [act, fc]}}
    """)
    x = 4 * torch.randn(3, 5)
    fc = net.fc(x)
    assert torch.equal(net(x), fn(fc) + fc)


@pytest.mark.parametrize("shape, dim", [((3, 5, 5), -1), ((4, 6), 1), ((4, 6), -2), ((7,), 1)])
def test_softmax_along_a_batched_dim(shape, dim):
    net = one_op(shape, f"{{op: softmax, dim: {dim}}}")
    x = torch.randn(2, *shape, requires_grad=True)
    out = net(x)
    assert torch.equal(out, torch.softmax(x, dim))
    out[:, 0].sum().backward()
    assert x.grad.abs().sum() > 0


def test_softmax_refuses_the_batch_dim():
    assert error_codes("input: [4, 6]\ngraph:\n  s: {op: softmax, dim: 0}\n") == ["E0408"]
    assert error_codes("input: [4, 6]\ngraph:\n  s: {op: softmax, dim: -3}\n") == ["E0408"]


# -- norms ----------------------------------------------------------------------

@pytest.mark.parametrize("args, kwargs", [
    ("{op: layer_norm}", {}),
    ("{op: layer_norm, eps: 0.000001, bias: false}", {"eps": 1e-6, "bias": False}),
    ("{op: layer_norm, affine: false}", {"elementwise_affine": False}),
])
@pytest.mark.parametrize("shape", [(5, 8), (8,), (2, 3, 8)])
def test_layer_norm_is_nn_layer_norm_on_the_last_dim(args, kwargs, shape):
    ref = nn.LayerNorm(8, **kwargs)
    with torch.no_grad():
        for p in ref.parameters():
            p.uniform_(-2, 2)
    net = one_op(shape, args)
    assert list(net.state_dict()) == [f"node.{key}" for key in ref.state_dict()]
    net.node.load_state_dict(ref.state_dict())
    assert_same(net, ref, torch.randn(3, *shape), prefix="node.")


@pytest.mark.parametrize("training", [True, False])
def test_layer_norm2d_is_torchvisions(training):
    ref = LayerNorm2d(6, eps=1e-6)
    with torch.no_grad():
        ref.weight.uniform_(-2, 2), ref.bias.uniform_(-2, 2)
    net = build("""
        input: [6, 4, 5]
        graph:
          norm: {op: layer_norm2d, eps: 0.000001}
    """).train(training)
    assert list(net.state_dict()) == ["norm.weight", "norm.bias"]
    net.norm.load_state_dict(ref.state_dict())
    assert_same(net, ref.train(training), torch.randn(3, 6, 4, 5), prefix="norm.")


@pytest.mark.parametrize("shape", [(6, 7), (6, 2, 3, 3), (6,)])
def test_layer_norm2d_normalises_the_channels_of_any_rank(shape):
    net = one_op(shape, "{op: layer_norm2d}")
    with torch.no_grad():
        net.node.weight.uniform_(-2, 2), net.node.bias.uniform_(-2, 2)
    x = torch.randn(3, *shape)
    # The channels moved last by hand, normalised there, moved back.
    moved = x.movedim(1, -1)
    want = F.layer_norm(moved, (6,), net.node.weight, net.node.bias).movedim(-1, 1)
    assert torch.allclose(net(x), want, atol=1e-6)


@pytest.mark.parametrize("shape", [(6, 5, 5), (6, 9), (6, 2, 3, 3), (6,)])
@pytest.mark.parametrize("affine", [True, False])
def test_group_norm_is_nn_group_norm(shape, affine):
    ref = nn.GroupNorm(3, 6, eps=1e-3, affine=affine)
    net = one_op(shape, f"{{op: group_norm, groups: 3, eps: 0.001, affine: {str(affine).lower()}}}")
    if affine:
        with torch.no_grad():
            ref.weight.uniform_(-2, 2), ref.bias.uniform_(-2, 2)
        net.node.load_state_dict(ref.state_dict())
    assert sum(p.numel() for p in net.parameters()) == sum(p.numel() for p in ref.parameters())
    assert_same(net, ref, torch.randn(2, *shape), prefix="node.")


def test_group_norm_needs_groups_that_divide_the_channels():
    assert error_codes("input: [6, 4, 4]\ngraph:\n  g: {op: group_norm, groups: 4}\n") == ["E0405"]
    assert error_codes("input: [6, 4, 4]\ngraph:\n  g: {op: group_norm, groups: 0}\n") == ["E0408"]


# -- shape ops ------------------------------------------------------------------

@pytest.mark.parametrize("training", [True, False])
def test_chunk_concat_channel_shuffle_are_shufflenet_v2s_block(training):
    # torchvision's stride-1 unit: x1, x2 = x.chunk(2, dim=1); cat(x1, branch2(x2)); shuffle.
    ref = InvertedResidual(8, 8, 1)
    net = build("""
        input: [8, 6, 6]
        graph:
          x1: {op: chunk, chunks: 2, index: 0, from: input}
          x2: {op: chunk, chunks: 2, index: 1, from: input}
          branch2:
            seq:
              - {op: conv, out: 4, k: 1, bias: false}
              - {op: bn}
              - {op: relu}
              - {op: conv, k: 3, pad: 1, depthwise: true, bias: false}
              - {op: bn}
              - {op: conv, out: 4, k: 1, bias: false}
              - {op: bn}
              - {op: relu}
          out: {op: concat, from: [x1, branch2]}
          shuffle: {op: channel_shuffle, groups: 2}
    """)
    assert list(net.state_dict()) == list(ref.state_dict())
    net.load_state_dict(ref.state_dict())
    assert_same(net.train(training), ref.train(training), torch.randn(2, 8, 6, 6))


@pytest.mark.parametrize("shape, groups", [((6, 4, 4), 2), ((12, 3, 5), 3), ((8, 2, 2), 8), ((6, 3, 3), 1)])
def test_channel_shuffle_is_torchvisions(shape, groups):
    net = one_op(shape, f"{{op: channel_shuffle, groups: {groups}}}")
    x = torch.randn(2, *shape)
    assert torch.equal(net(x), channel_shuffle(x, groups))


@pytest.mark.parametrize("shape", [(6, 5), (6,), (6, 2, 2, 2)])
def test_channel_shuffle_of_other_ranks_interleaves_the_groups(shape):
    net = one_op(shape, "{op: channel_shuffle, groups: 3}")
    # Channel c of group g goes to position 3 * c + g.
    x = torch.arange(6.0).reshape(1, 6, *[1] * (len(shape) - 1)).expand(2, *shape)
    order = [0, 2, 4, 1, 3, 5]
    assert torch.equal(net(x), x[:, order])


def test_channel_shuffle_takes_a_permuted_input():
    net = build("""
        input: [3, 3, 6]
        graph:
          channels_first: {op: permute, dims: [0, 3, 1, 2]}
          shuffled: {op: channel_shuffle, groups: 2}
    """)
    x = torch.randn(2, 3, 3, 6)
    assert torch.equal(net(x), channel_shuffle(x.permute(0, 3, 1, 2).contiguous(), 2))


def test_channel_shuffle_output_is_new_memory():
    net = build("""
        input: [6, 2, 2]
        graph:
          shuffled: {op: channel_shuffle, groups: 2}
          act: {op: relu}
          out: {op: add, from: [act, input]}
    """)
    x = torch.randn(2, 6, 2, 2)
    assert torch.equal(net(x.clone()), F.relu(channel_shuffle(x, 2)) + x)


@pytest.mark.parametrize("size, chunks", [(6, 2), (7, 3), (5, 4), (8, 3), (3, 3)])
def test_chunk_gives_each_piece_torch_chunk_gives(size, chunks):
    x = torch.randn(2, 3, size)
    pieces = torch.chunk(x, chunks, dim=-1)
    for index in range(-len(pieces), len(pieces)):
        net = one_op((3, size), f"{{op: chunk, chunks: {chunks}, index: {index}, dim: -1}}")
        got = net(x)
        assert torch.equal(got, pieces[index])
        assert got.data_ptr() == pieces[index].data_ptr()  # the same view, no copy
    # torch.chunk may give fewer pieces than asked for: 5 into 4 is 2, 2, 1.
    past = len(pieces)
    assert error_codes(f"input: [3, {size}]\ngraph:\n  c: {{op: chunk, chunks: {chunks}, index: {past}, dim: 2}}\n") \
        == ["E0408"]


@pytest.mark.parametrize("shape, dims", [((3, 4, 5), [0, 2, 3, 1]), ((3, 4, 5), [0, -1, 1, 2]),
                                         ((6, 4), [0, 2, 1]), ((2, 3, 4, 5), [0, 4, 2, 3, 1])])
def test_permute_is_torch_permute(shape, dims):
    net = one_op(shape, f"{{op: permute, dims: {dims}}}")
    x = torch.randn(2, *shape)
    assert torch.equal(net(x), x.permute(dims))


@pytest.mark.parametrize("dims, code", [([0, 2, 1], "E0407"), ([1, 0, 2, 3], "E0408"), ([0, 1, 1, 2], "E0408")])
def test_permute_needs_every_dim_once_with_the_batch_first(dims, code):
    assert error_codes(f"input: [3, 4, 5]\ngraph:\n  p: {{op: permute, dims: {dims}}}\n") == [code]


@pytest.mark.parametrize("shape, target", [((3, 4, 5), [12, 5]), ((6, 2, 2), [-1, 4]), ((24,), [2, 3, -1])])
def test_reshape_is_torch_reshape_per_sample(shape, target):
    net = one_op(shape, f"{{op: reshape, shape: {target}}}")
    x = torch.randn(2, *shape)
    assert torch.equal(net(x), x.reshape(2, *target))


def test_reshape_after_permute_copies_and_keeps_values():
    # ViT's `x.reshape(n, hidden, h * w).permute(0, 2, 1)`, and back to an image.
    net = build("""
        input: [8, 3, 4]
        graph:
          tokens: {op: reshape, shape: [8, 12]}
          seq: {op: permute, dims: [0, 2, 1]}
          image: {op: reshape, shape: [12, 2, 4]}
    """)
    x = torch.randn(2, 8, 3, 4)
    assert torch.equal(net(x), x.reshape(2, 8, 12).permute(0, 2, 1).reshape(2, 12, 2, 4))


@pytest.mark.parametrize("target", [[5, 5], [-1, -1], [0, 12], [-1, 7]])
def test_reshape_checks_the_element_count(target):
    assert error_codes(f"input: [3, 4]\ngraph:\n  r: {{op: reshape, shape: {target}}}\n") == ["E0408"]


@pytest.mark.parametrize("shape, dim, index", [((5, 8), 1, 0), ((5, 8), 1, -1), ((3, 4, 6), -1, 2),
                                               ((2, 3, 4, 4), 2, 1)])
def test_select_is_torch_select(shape, dim, index):
    net = one_op(shape, f"{{op: select, dim: {dim}, index: {index}}}")
    x = torch.randn(2, *shape)
    assert torch.equal(net(x), torch.select(x, dim, index))


def test_select_class_token_as_vit_reads_it():
    net = build("input: [5, 8]\ngraph:\n  cls: {op: select, index: 0}\n")
    x = torch.randn(2, 5, 8)
    assert torch.equal(net(x), x[:, 0])
    assert error_codes("input: [5, 8]\ngraph:\n  cls: {op: select, index: 5}\n") == ["E0408"]
    assert error_codes("input: [8]\ngraph:\n  cls: {op: select, index: 0}\n") == ["E0407"]


@pytest.mark.parametrize("view", ["{op: permute, dims: [0, 2, 1]}", "{op: select, dim: 2, index: 1}",
                                  "{op: chunk, chunks: 2, index: 0}", "{op: reshape, shape: [24]}"])
def test_an_in_place_op_after_a_view_spares_the_viewed_tensors_other_reader(view):
    # `conv` is read through the view (by relu) and directly (by `both`): the relu must
    # not run in place, or `both` would read the rectified values.
    net = build(f"""
        input: [4, 6]
        graph:
          conv: {{op: conv, out: 4, k: 1}}
          view: {view}
          act: {{op: relu}}
          flat: {{op: flatten}}
          keep: {{op: flatten, from: conv}}
          both: {{op: concat, from: [flat, keep], dim: 1}}
    """)
    assert "inplace" not in net.code(False)
    x = torch.randn(2, 4, 6)
    conv = net.conv(x)
    views = {"permute": lambda t: t.permute(0, 2, 1), "select": lambda t: t[:, :, 1],
             "chunk": lambda t: t[:, :2], "reshape": lambda t: t.reshape(2, 24)}
    viewed = next(fn for key, fn in views.items() if key in view)(conv)
    want = torch.cat([F.relu(viewed).flatten(1), conv.flatten(1)], 1)
    assert torch.equal(net(x).flatten(1), want)


# -- stochastic depth -------------------------------------------------------------

@pytest.mark.parametrize("mode", ["row", "batch"])
@pytest.mark.parametrize("p", [0.3, 0.5, 1.0])
def test_stochastic_depth_draws_what_torchvision_draws(mode, p):
    ref = StochasticDepth(p, mode)
    net = one_op((4, 3, 3), f"{{op: stochastic_depth, p: {p}, mode: {mode}}}")
    x = torch.randn(16, 4, 3, 3)
    for seed in range(4):
        assert_same(net.train(), ref.train(), x, seed=seed)
    assert torch.equal(net.eval()(x), x) and torch.equal(ref.eval()(x), x)


@pytest.mark.parametrize("training", [True, False])
def test_layer_scale_and_stochastic_depth_are_convnexts_block(training):
    ref = CNBlock(8, 0.5, 0.5, norm_layer=lambda dim: nn.LayerNorm(dim, eps=1e-6))
    net = build("""
        input: [8, 7, 7]
        graph:
          res:
            add:
              - ~
              - block:
                  seq:
                    - {op: conv, k: 7, pad: 3, depthwise: true}
                    - {op: permute, dims: [0, 2, 3, 1]}
                    - {op: layer_norm, eps: 0.000001}
                    - {op: linear, out: 32}
                    - {op: gelu}
                    - {op: linear, out: 8}
                    - {op: permute, dims: [0, 3, 1, 2]}
                layer_scale: {op: layer_scale, value: 0.5}
                stochastic_depth: {op: stochastic_depth, p: 0.5}
    """)
    assert sorted(net.state_dict()) == sorted(ref.state_dict())
    assert torch.equal(net.layer_scale, ref.layer_scale)  # torch.ones(8, 1, 1) * 0.5
    net.load_state_dict(ref.state_dict())
    net.train(training), ref.train(training)
    if training:  # the factor and the noise are applied in the memory of the block's output
        assert "*= layer_scale" in net.code(True) and "inplace = True" in net.code(True)
    x = torch.randn(8, 8, 7, 7)
    for seed in range(3):
        assert_same(net, ref, x, seed=seed)


def test_stochastic_depth_in_place_keeps_a_second_readers_value():
    net = build("""
        input: [4, 3, 3]
        graph:
          conv: {op: conv, out: 4, k: 1}
          drop: {op: stochastic_depth, p: 0.5}
          out: {op: add, from: [drop, conv]}
    """).train()
    x = torch.randn(16, 4, 3, 3)
    torch.manual_seed(5)
    got = net(x)
    conv = net.conv(x)
    torch.manual_seed(5)
    assert torch.equal(got, torchvision.ops.stochastic_depth(conv, 0.5, "row") + conv)


# -- parameters -------------------------------------------------------------------

def test_layer_scale_over_tokens_is_one_factor_per_feature():
    net = build("input: [5, 8]\ngraph:\n  gamma: {op: layer_scale, value: 0.25, dim: -1}\n")
    assert list(net.state_dict()) == ["gamma"] and net.gamma.shape == (8,)
    with torch.no_grad():
        net.gamma.uniform_(-2, 2)
    x = torch.randn(3, 5, 8, requires_grad=True)
    out = net(x)
    assert torch.equal(out, x * net.gamma)
    out.sum().backward()
    assert torch.equal(net.gamma.grad, x.detach().sum((0, 1)))


def test_param_is_a_free_parameter_repeated_over_the_batch():
    net = build("""
        input: [5, 8]
        graph:
          class_token: {op: param, shape: [1, 1, 8], from: input}
          tokens: {op: concat, from: [class_token, input], dim: 1}
    """)
    assert list(net.state_dict()) == ["class_token"] and net.class_token.shape == (1, 1, 8)
    assert torch.equal(net.class_token, torch.zeros(1, 1, 8))
    with torch.no_grad():
        net.class_token.normal_()
    x = torch.randn(3, 5, 8)
    out = net(x)
    # torchvision's ViT: torch.cat([self.class_token.expand(n, -1, -1), x], dim=1)
    assert torch.equal(out, torch.cat([net.class_token.expand(3, -1, -1), x], dim=1))
    out[:, 0].sum().backward()
    assert torch.equal(net.class_token.grad, torch.full((1, 1, 8), 3.0))  # one per sample of 3


def test_param_is_not_overwritten_by_an_in_place_op_after_it():
    net = build("""
        input: [4]
        graph:
          bias: {op: param, shape: [1, 3, 2], init: -0.5}
          act: {op: relu}
    """).eval()
    with torch.no_grad():
        assert torch.equal(net(torch.randn(1, 4)), torch.zeros(1, 3, 2))
    assert torch.equal(net.bias, torch.full((1, 3, 2), -0.5))


@pytest.mark.parametrize("shape", [[3, 8], [8], [1, 0, 8]])
def test_param_shape_starts_with_the_batch_of_one(shape):
    assert error_codes(f"input: [4]\ngraph:\n  p: {{op: param, shape: {shape}}}\n") == ["E0408"]


def test_frozen_layer_scale_does_not_train():
    net = build("input: [4, 2, 2]\ngraph:\n  layer_scale: {op: layer_scale, frozen: true}\n")
    assert not net.layer_scale.requires_grad
    assert torch.equal(net.layer_scale, torch.ones(4, 1, 1) * 1e-6)  # torchvision's default, 1e-6


# -- tracing ----------------------------------------------------------------------

@pytest.mark.parametrize("training", [False, True])
def test_the_new_ops_trace_whole(training):
    # Their functions are plain torch calls: TorchDynamo traces them without a graph
    # break, and torch.export takes them (as test_compile_export.py does for resnet).
    net = build("""
        input: [8, 7, 7]
        graph:
          x1: {op: chunk, chunks: 2, index: 0}
          x2: {op: chunk, chunks: 2, index: 1, from: input}
          swapped: {op: concat, from: [x2, x1]}
          shuffled: {op: channel_shuffle, groups: 2}
          ln: {op: layer_norm2d}
          gn: {op: group_norm, groups: 4}
          res:
            add:
              - ~
              - block:
                  seq:
                    - {op: permute, dims: [0, 2, 3, 1]}
                    - {op: layer_norm}
                    - {op: linear, out: 16}
                    - {op: hardswish}
                    - {op: linear, out: 8}
                    - {op: permute, dims: [0, 3, 1, 2]}
                layer_scale: {op: layer_scale, value: 0.5}
                drop: {op: stochastic_depth, p: 0.5}
          se:
            mul:
              - ~
              - [{op: adaptive_avgpool}, {op: conv, out: 8, k: 1}, {op: hardsigmoid}]
          tokens: {op: reshape, shape: [8, 49]}
          seq: {op: permute, dims: [0, 2, 1]}
          cls: {op: param, shape: [1, 1, 8]}
          cat: {op: concat, from: [cls, seq], dim: 1}
          attn: {op: softmax}
          first: {op: select, index: 0}
    """).train(training)
    x = torch.randn(4, 8, 7, 7)
    torch._dynamo.reset()
    compiled = torch.compile(net, fullgraph=True, backend="eager")
    torch.manual_seed(1)
    got = compiled(x)
    torch.manual_seed(1)
    assert torch.equal(got, net(x))
    exported = torch.export.export(net, (x,))
    if not training:
        assert torch.equal(exported.module()(x), net(x))

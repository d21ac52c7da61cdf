"""Checks every zoo spec is held to, against the library it claims to match.

- `check_static`: the parameter count (exact, REFERENCE.md) and the MACs, which are
  archspec's static arithmetic and must equal FlopCounterMode on the reference model
  (meta device, no memory), and REFERENCE.md's FlopCounterMode column within 1%.
- `check_keys_on_meta`: both models built on the meta device (nothing allocated):
  the same state-dict keys in the same order, each with the same shape. Cheap
  enough for the largest nets.
- `check_weights_and_outputs`: the reference's state dict loads with strict=True
  and the eval outputs agree on the same input (to `atol`, relative to the output
  scale for the largest nets).

Full-size comparisons of the large members are marked `slow`; CI runs the rest
(README: `python -m pytest -m "slow or not slow"` runs everything).
"""
from __future__ import annotations

import torch

import archspec
from conftest import SPECS, flop_counter_macs


def randomize_batch_norms(model, seed: int = 1):
    """Random running statistics and affine terms in every batch norm (1-D, 2-D, 3-D),
    so that an eval-mode comparison tests where each one sits and which channels it
    reads: fresh ones are the identity. A model on the meta device is left as it is."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.weight is not None \
                    and m.weight.device.type != "meta":
                n = m.num_features
                m.running_mean.copy_(torch.rand(n, generator=g) - 0.5)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.rand(n, generator=g) - 0.5)
    return model


def with_random_norms(family, name: str):
    """A builder of the library's `family.name(weights=None)` (torchvision.models, or
    torchvision.models.video) whose batch norms are randomised, for the checks below."""
    return lambda: randomize_batch_norms(getattr(family, name)(weights=None))


def on_meta(build):
    with torch.device("meta"):
        return build()


def check_static(name: str, params: int, fcm_macs: int, reference=None, input_shape=None, **keywords):
    """`params` and `fcm_macs` from REFERENCE.md; `reference` builds the library's
    model (measured on meta at the spec's own input, or `input_shape`)."""
    summary = archspec.summarize(SPECS / f"{name}.yaml", input_shape=input_shape, **keywords)
    assert summary.total_params == params, (name, summary.total_params, params)
    if reference is not None:
        measured = flop_counter_macs(on_meta(reference), summary.input_shape)
        assert summary.total_macs == measured, (name, summary.total_macs, measured)
    assert abs(summary.total_macs - fcm_macs) <= 0.01 * fcm_macs, (name, summary.total_macs, fcm_macs)
    return summary


def check_keys_on_meta(name: str, reference, **keywords):
    ours = archspec.build(SPECS / f"{name}.yaml", device="meta", **keywords)
    theirs = on_meta(reference)
    ours_sd, theirs_sd = ours.state_dict(), theirs.state_dict()
    assert list(ours_sd) == list(theirs_sd), _first_difference(list(ours_sd), list(theirs_sd))
    for key, value in theirs_sd.items():
        assert ours_sd[key].shape == value.shape, (key, ours_sd[key].shape, value.shape)


def check_weights_and_outputs(name: str, reference, input_shape=None, atol=1e-5, relative=False,
                              batch=2, **keywords):
    theirs = reference().eval()
    ours = archspec.build(SPECS / f"{name}.yaml", **keywords).eval()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    shape = input_shape or archspec.load(SPECS / f"{name}.yaml", **keywords).input_shape
    x = torch.randn(batch, *shape)
    with torch.no_grad():
        got, expected = ours(x), theirs(x)
    if isinstance(expected, dict):  # torchvision segmentation models
        expected = expected["out"]
        got = got[0] if isinstance(got, tuple) else got
    scale = expected.abs().max().item() if relative else 1.0
    difference = (got - expected).abs().max().item()
    assert difference <= atol * scale, (name, difference, scale)
    return difference


def check_same_stochastic_depth(ours, theirs, x):
    """Training forwards of `ours` (archspec, the reference's weights loaded here) and
    `theirs` under one seed draw the same stochastic-depth noise: same outputs, and the
    same gradients after a backward. Another seed gives other outputs, so the noise acted."""
    ours.load_state_dict(theirs.state_dict(), strict=True)
    torch.manual_seed(7)
    got = ours(x)
    torch.manual_seed(7)
    expected = theirs(x)
    assert torch.allclose(got, expected, atol=1e-5), (got - expected).abs().max()
    torch.manual_seed(8)  # another seed drops other branches
    with torch.no_grad():
        assert not torch.allclose(ours(x), expected, atol=1e-3)
    got.sum().backward()
    expected.sum().backward()
    for key, p in theirs.named_parameters():
        assert torch.allclose(ours.get_parameter(key).grad, p.grad, atol=1e-5, rtol=1e-4), key


def _first_difference(ours, theirs):
    for index, (a, b) in enumerate(zip(ours, theirs)):
        if a != b:
            return f"key {index}: ours {a!r}, reference {b!r}"
    return f"ours has {len(ours)} keys, the reference {len(theirs)}"

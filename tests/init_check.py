"""Comparing initialised weights with a reference's: bitwise, and by distribution.

`same_distribution(ours, theirs)` holds a tensor to the reference's on its own draws:
a constant tensor must be the same constant; any other must agree in mean and
standard deviation within 6 standard errors of the difference (worked out from the
tensor's size) and pass a two-sample Kolmogorov-Smirnov test at p > 1e-6 on up to
KS_SAMPLE elements (the elements of one tensor are independent draws, so the first
ones are a fair sample). Mean and deviation alone cannot tell He-normal from
He-uniform, whose deviations are equal by design; the KS test can. The test is worked
out with torch (the asymptotic Kolmogorov distribution, as Numerical Recipes gives
it), so no statistics package is needed.
"""
from __future__ import annotations

import math

import torch

KS_SAMPLE = 50_000
KS_P = 1e-6
STANDARD_ERRORS = 6.0


def distribution_problem(ours: torch.Tensor, theirs: torch.Tensor) -> str | None:
    """Why `ours` does not look drawn as `theirs` was, or None."""
    if ours.shape != theirs.shape:
        return f"shape {tuple(ours.shape)} against {tuple(theirs.shape)}"
    a, b = ours.detach().double().flatten(), theirs.detach().double().flatten()
    if b.numel() == 0:
        return None
    if bool((b == b[0]).all()):
        return None if bool((a == b[0]).all()) else f"the reference is the constant {b[0].item():g}, ours is not"
    n = b.numel()
    mean_a, mean_b = a.mean().item(), b.mean().item()
    std_a, std_b = a.std().item(), b.std().item()
    # The standard error of a mean is std / sqrt(n), of a standard deviation about
    # std / sqrt(2n) for normal draws (less for uniform ones); the difference of two
    # independent estimates has sqrt(2) times that.
    mean_tolerance = STANDARD_ERRORS * math.sqrt((std_a ** 2 + std_b ** 2) / n)
    std_tolerance = STANDARD_ERRORS * std_b * math.sqrt(2 / (2 * n))
    if abs(mean_a - mean_b) > mean_tolerance:
        return f"mean {mean_a:.4g} against {mean_b:.4g} (tolerance {mean_tolerance:.2g}, n = {n})"
    if abs(std_a - std_b) > std_tolerance:
        return f"std {std_a:.4g} against {std_b:.4g} (tolerance {std_tolerance:.2g}, n = {n})"
    if n >= 20:
        p = ks_p_value(a[:KS_SAMPLE], b[:KS_SAMPLE])
        if p < KS_P:
            return f"Kolmogorov-Smirnov p = {p:.2g} (mean {mean_a:.4g}/{mean_b:.4g}, std {std_a:.4g}/{std_b:.4g})"
    return None


def ks_p_value(a: torch.Tensor, b: torch.Tensor) -> float:
    """The two-sample Kolmogorov-Smirnov test's p-value: D is the largest gap between
    the two empirical distribution functions; P(D > d) = Q(lambda) with lambda =
    (sqrt(ne) + 0.12 + 0.11 / sqrt(ne)) d, ne = n m / (n + m), and
    Q(x) = 2 sum_k (-1)^(k-1) exp(-2 k^2 x^2)."""
    a, b = a.sort().values, b.sort().values
    points = torch.cat([a, b])
    cdf_a = torch.searchsorted(a, points, right=True).double() / a.numel()
    cdf_b = torch.searchsorted(b, points, right=True).double() / b.numel()
    d = (cdf_a - cdf_b).abs().max().item()
    ne = a.numel() * b.numel() / (a.numel() + b.numel())
    x = (math.sqrt(ne) + 0.12 + 0.11 / math.sqrt(ne)) * d
    if x < 0.2:  # the series converges slowly there, and the answer is 1 to many places
        return 1.0
    q = 2 * sum((-1) ** (k - 1) * math.exp(-2 * k * k * x * x) for k in range(1, 101))
    return min(max(q, 0.0), 1.0)


def distribution_problems(ours: dict, theirs: dict) -> dict:
    """Key -> problem for every floating-point tensor of `theirs` (a state dict)."""
    found = {}
    for key, value in theirs.items():
        if not value.is_floating_point():
            continue
        problem = distribution_problem(ours[key], value)
        if problem:
            found[key] = problem
    return found


def bitwise_differences(ours: dict, theirs: dict) -> list:
    return [key for key, value in theirs.items() if not torch.equal(ours[key], value)]

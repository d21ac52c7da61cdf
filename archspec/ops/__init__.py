"""The op registry. Importing this package registers every built-in op."""
from . import (  # noqa: F401
    activation, attention, conv, conv_transpose, detect, elementwise, join, matmul, norm, parameter, pool, regularize,
    resample, shape, tensor, tokens, window_attention,
)
from .base import ARG_KINDS, Arg, Example, Op, OpError, Shape
from .registry import REGISTRY, PluginError, RegistrationError, register_op

__all__ = ["ARG_KINDS", "Arg", "Example", "Op", "OpError", "PluginError", "REGISTRY", "RegistrationError",
           "Shape", "register_op"]

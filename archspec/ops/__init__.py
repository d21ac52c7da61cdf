"""Importing this package registers every op in `REGISTRY`."""
from . import activation, conv, join, norm, pool, tensor  # noqa: F401
from .base import REGISTRY, Op, OpError, Shape

__all__ = ["REGISTRY", "Op", "OpError", "Shape"]

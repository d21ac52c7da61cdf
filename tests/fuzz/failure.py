"""How a property reports a failure: the message, then the spec text that showed it."""
from __future__ import annotations


class PropertyFailure(AssertionError):
    pass


def raise_failure(message: str, text: str, overrides=None):
    extra = f"\n--- overrides: {overrides}" if overrides else ""
    raise PropertyFailure(f"{message}\n--- spec ---\n{text}{extra}")

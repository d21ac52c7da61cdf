"""Mistakes a person running the training can make, reported as archspec reports
its own: one line saying what is wrong, one hint saying what to do, exit status 2."""
from __future__ import annotations


class TrainingError(ValueError):
    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.hint = hint

    def render(self, prog: str) -> str:
        return f"{prog}: error: {self}" + (f"\n  = hint: {self.hint}" if self.hint else "")

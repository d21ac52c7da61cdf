"""archspec: neural-network architectures written as YAML, compiled to torch.nn.Module.

    import archspec
    net = archspec.build("specs/resnet50.yaml", num_classes=10)
    print(archspec.summarize("specs/inception_v3.yaml").total_params)

Validating and summarising import no torch; building does.
"""
from .api import build, compile_spec, load, summarize
from .diagnostics import Diagnostic, Position, SpecError
from .spec import Spec, loads
from .summary import Summary

__version__ = "0.1.0"
__all__ = ["build", "compile_spec", "load", "loads", "summarize", "load_built", "save_built",
           "CompiledNetwork", "Diagnostic", "Position", "SpecError", "Spec", "Summary"]

_NEEDS_TORCH = {"CompiledNetwork": ".builder", "load_built": ".artifact", "save_built": ".artifact"}


def __getattr__(name):  # the names that need torch load it on first use
    if name in _NEEDS_TORCH:
        import importlib

        return getattr(importlib.import_module(_NEEDS_TORCH[name], __name__), name)
    raise AttributeError(f"module 'archspec' has no attribute {name!r}")

"""archspec: neural-network architectures written as YAML, compiled to torch.nn.Module.

    import archspec
    net = archspec.build("specs/resnet50.yaml", num_classes=10)
    print(archspec.summarize("specs/inception_v3.yaml").total_params)

Validating and summarising import no torch; building does.
"""
from .api import Compiled, SpecWarning, build, build_compiled, compile_spec, load, summarize
from .diagnostics import Diagnostic, Position, SpecError
from .ops import Arg, Example, Op, OpError, RegistrationError, register_op
from .spec import Spec, loads
from .summary import Summary

__version__ = "0.2.0"
__all__ = ["build", "build_compiled", "compile_spec", "load", "loads", "summarize", "load_built",
           "save_built", "fuse", "register_op", "Arg", "Example", "Op", "OpError", "RegistrationError",
           "Compiled", "CompiledNetwork", "Diagnostic", "Position", "SpecError", "SpecWarning", "Spec",
           "Summary"]

_NEEDS_TORCH = {"CompiledNetwork": ".builder", "load_built": ".artifact", "save_built": ".artifact",
               "fuse": ".fusion"}


def __getattr__(name):  # the names that need torch load it on first use
    if name in _NEEDS_TORCH:
        import importlib

        return getattr(importlib.import_module(_NEEDS_TORCH[name], __name__), name)
    raise AttributeError(f"module 'archspec' has no attribute {name!r}")

"""archspec: neural-network architectures written as YAML, compiled to torch.nn.Module.

    import archspec
    net = archspec.build("specs/resnet50.yaml", num_classes=10)
    print(archspec.summarize("specs/inception_v3.yaml").total_params)
"""
from .api import build, compile_spec, load, summarize
from .artifact import load_built, save_built
from .build import CompiledNetwork
from .diagnostics import Diagnostic, Position, SpecError
from .spec import Spec, loads
from .summary import Summary

__version__ = "0.1.0"
__all__ = ["build", "compile_spec", "load", "loads", "summarize", "load_built", "save_built",
           "CompiledNetwork", "Diagnostic", "Position", "SpecError", "Spec", "Summary"]

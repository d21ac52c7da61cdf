"""archspec: neural-network architectures written as YAML, compiled to torch.nn.Module.

    import archspec
    net = archspec.build("specs/resnet50.yaml", num_classes=10)
    print(archspec.summarize("specs/inception_v3.yaml").total_params)

Validating and summarising import no torch; building does.
"""
__version__ = "0.2.0"

# Each public name is imported from its module on first use (PEP 562), so a command
# that needs little (`archspec --help`, `archspec schema`) does not pay at start-up for
# the YAML loader, the compiler or, for the names that build, torch.
_WHERE = {
    ".api": ("Compiled", "SpecWarning", "build", "build_compiled", "compile_spec", "load", "summarize"),
    ".diagnostics": ("Diagnostic", "Position", "SpecError"),
    ".ops": ("Arg", "Example", "Op", "OpError", "RegistrationError", "register_op"),
    ".spec": ("Spec", "loads"),
    ".summary": ("Summary",),
    ".builder": ("CompiledNetwork",),  # these need torch
    ".artifact": ("load_built", "save_built"),
    ".fusion": ("fuse",),
}
_MODULE_OF = {name: module for module, names in _WHERE.items() for name in names}

__all__ = ["build", "build_compiled", "compile_spec", "load", "loads", "summarize", "load_built",
           "save_built", "fuse", "register_op", "Arg", "Example", "Op", "OpError", "RegistrationError",
           "Compiled", "CompiledNetwork", "Diagnostic", "Position", "SpecError", "SpecWarning", "Spec",
           "Summary"]


def __getattr__(name):
    import importlib

    if name in _MODULE_OF:
        value = getattr(importlib.import_module(_MODULE_OF[name], __name__), name)
        globals()[name] = value  # later lookups skip this function
        return value
    try:  # `archspec.ops` after a bare `import archspec`, as before the names were lazy
        return importlib.import_module(f".{name}", __name__)
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.{name}":  # the submodule exists; something it imports does not
            raise
        raise AttributeError(f"module 'archspec' has no attribute {name!r}") from None


def __dir__():
    return sorted(set(globals()) | set(__all__))

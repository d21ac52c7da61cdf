"""A built network on disk: the resolved spec (extends merged, arguments fixed) and
its state dict, in one torch.save file that `load_built` turns back into a module.

`load_built` trusts nothing in the file: it is read with weights_only=True, and its
keys, types, spec and weights are checked against each other before any weight is
allocated. A file that is not an archspec build is E0106; one that is, but was
damaged or edited, is E0107."""
from __future__ import annotations

import os
import reprlib

import torch
import yaml

from .atomic import atomic_output
from .checkpoint_file import open_checkpoint, zip_archive_problem
from .diagnostics import SpecError, error
from .yaml_source import load_text

FORMAT = "archspec.built/1"
# A network archspec.fuse made: its state dict has no folded batch norms, and loading
# fuses the spec's network again before reading it.
FUSED_FORMAT = "archspec.fused/1"
_KEYS = {"format", "name", "spec", "state_dict"}


def plain(value):
    """Source-tracking containers as plain dicts and lists, for dumping."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def resolved_text(spec) -> str:
    document = plain(spec.document)
    document.pop("extends", None)
    document["name"] = spec.name
    document["args"] = {k: plain(v) for k, v in spec.args.items()}
    document["input"] = list(spec.input_shape)
    if spec.input_overridden or spec.overrides:
        document.pop("expect", None)  # the figures describe the spec as written, not this variant
    return yaml.safe_dump(document, sort_keys=False)


def save_built(spec, net: torch.nn.Module, path) -> None:
    from .fusion import FusedNetwork

    _refuse_own_sources(spec, path)
    payload = {"format": FUSED_FORMAT if isinstance(net, FusedNetwork) else FORMAT, "name": spec.name,
               "spec": resolved_text(spec), "state_dict": net.state_dict()}
    with atomic_output(path) as f:
        torch.save(payload, f)


def _refuse_own_sources(spec, path) -> None:
    """`build x.yaml -o x.yaml` would replace the spec with its weights."""
    for source in (spec.path, *spec.parents):
        try:
            same = os.path.samefile(source, path)
        except (OSError, ValueError):  # not a file (a spec from text), or no output yet
            continue
        if same:
            raise error("E0605", f"cannot write {os.fspath(path)}: it is {source}, a spec this build was read from",
                        hint="choose another output file")


def load_built(path, device=None):
    """The module saved by `archspec build -o FILE`, weights included; the fused
    network when `build --fuse -o FILE` wrote it."""
    shown = os.fspath(path)
    payload = _read(path, shown, device)
    spec = _embedded_spec(payload, shown)
    return _network(spec, payload["state_dict"], shown, device, payload["format"] == FUSED_FORMAT)


def _read(path, shown: str, device):
    f = open_checkpoint(path, shown, "an archspec build")
    with f:
        problem = zip_archive_problem(f)
        if problem:
            raise error("E0106", f"{shown} is not an archspec build: {problem}",
                        hint="`archspec build -o FILE` writes one")
        try:
            payload = torch.load(f, map_location=device or "cpu", weights_only=True)
        except Exception as exc:  # torch raises many kinds for a file that is not its format
            raise error("E0106", f"{shown} is not an archspec build: torch.load failed ({type(exc).__name__})",
                        hint="`archspec build -o FILE` writes one") from None
    if not (isinstance(payload, dict) and isinstance(payload.get("format"), str)
            and payload["format"] in (FORMAT, FUSED_FORMAT)):
        raise error("E0106", f"{shown} is not an archspec build ({FORMAT})")
    _check_shape_of(payload, shown)
    return payload


def _damaged(shown: str, what: str):
    return error("E0107", f"artifact is damaged: {shown}: {what}",
                 hint="it was edited or corrupted after `archspec build -o`; build it again")


def _check_shape_of(payload: dict, shown: str) -> None:
    """The keys and value types `save_built` writes, and nothing else."""
    missing, extra = _KEYS - payload.keys(), payload.keys() - _KEYS
    if missing or extra:
        parts = ([f"lacks {_names(missing)}"] if missing else []) + ([f"has unexpected {_names(extra)}"] if extra else [])
        raise _damaged(shown, " and ".join(parts))
    for key in ("name", "spec"):
        if not isinstance(payload[key], str):
            raise _damaged(shown, f"`{key}` is {type(payload[key]).__name__}, not text")
    state = payload["state_dict"]
    if not isinstance(state, dict):
        raise _damaged(shown, f"`state_dict` is {type(state).__name__}, not a mapping")
    for key, value in state.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise _damaged(shown, f"`state_dict` maps {reprlib.repr(key)} to {type(value).__name__}, "
                                  "not a name to a tensor")


def _embedded_spec(payload: dict, shown: str):
    from .spec import loads

    name = f"{shown}#spec"
    try:
        # A saved spec is resolved: `extends:` in it would read other files.
        if "extends" in load_text(payload["spec"], name):
            raise _damaged(shown, "its spec has `extends:`, which a saved spec never has")
        spec = loads(payload["spec"], name=name)
    except SpecError as exc:
        if exc.code == "E0107":
            raise
        raise _damaged(shown, f"its spec is not valid: {_brief(exc)}") from None
    if spec.name != payload["name"]:
        raise _damaged(shown, f"its name `{payload['name'][:80]}` differs from its spec's `{spec.name}`")
    return spec


def _network(spec, state: dict, shown: str, device, fused: bool = False):
    from .api import build
    from .fusion import fuse

    def network(device):
        net = build(spec, device=device, check=False, init=False)  # the file sets every tensor: draw nothing
        return fuse(net.eval()) if fused else net

    # Built on the meta device first, which allocates nothing: the spec's weights are
    # compared with the file's before memory is spent on a spec that was edited.
    try:
        expected = network("meta").state_dict()
    except SpecError as exc:
        raise _damaged(shown, f"its spec is not valid: {_brief(exc)}") from None
    problem = _state_mismatch(expected, state)
    if problem:
        raise _damaged(shown, f"its weights do not fit its {'fused ' if fused else ''}spec: {problem}")
    net = network(device)
    try:
        net.load_state_dict(state, strict=True)
    except Exception as exc:  # e.g. a tensor of a type that cannot be copied into a weight
        raise _damaged(shown, f"its weights do not load: {(str(exc).strip().splitlines() or [''])[0]}") from None
    return net


def _state_mismatch(expected: dict, found: dict) -> str | None:
    missing, extra = expected.keys() - found.keys(), found.keys() - expected.keys()
    if missing or extra:
        return " and ".join(([f"missing {_names(missing)}"] if missing else [])
                            + ([f"unexpected {_names(extra)}"] if extra else []))
    for key, tensor in expected.items():
        if found[key].shape != tensor.shape:
            return f"`{key}` has shape {list(found[key].shape)} in the file, the spec makes {list(tensor.shape)}"
        # Another precision is fine (it is converted); another kind of number is not.
        if found[key].dtype.is_complex or found[key].is_floating_point() != tensor.is_floating_point():
            return f"`{key}` holds {found[key].dtype} values in the file, the spec makes {tensor.dtype}"
    return None


def _names(keys) -> str:
    shown = sorted(reprlib.repr(k) if not isinstance(k, str) else f"`{k}`" for k in keys)
    more = f" and {len(shown) - 3} more" if len(shown) > 3 else ""
    return ("key " if len(shown) == 1 else "keys ") + ", ".join(shown[:3]) + more


def _brief(exc: SpecError) -> str:
    d = exc.diagnostics[0]
    where = f" at line {d.pos.line}" if d.pos else ""
    return f"{d.message} (error[{d.code}]{where})"

"""Loading trained weights into a compiled spec: `build --weights FILE`.

A checkpoint is read with torch.load(weights_only=True), so a file that would run
code to rebuild its objects is refused, never run (E0901). Its state dict (the file
itself, or the dict under `state_dict` or `model`) is renamed by `--weights-map`
prefixes, then compared with the state dict the spec makes on the meta device,
which allocates nothing: keys the spec lacks, keys the file lacks and tensors of
another shape are reported together (E0904), grouped by the block that owns them,
each at the spec line that wrote it, before any real weight is allocated.
"""
from __future__ import annotations

import os
import re
import reprlib
import warnings
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass

from .checkpoint_file import open_checkpoint, zip_archive_problem
from .diagnostics import SpecError, error

# Keys of a training checkpoint that hold the model's state dict, in the order looked for.
CHECKPOINT_KEYS = ("state_dict", "model")
SHOWN_PER_GROUP = 6  # keys listed under one block before "... and N more"
SHOWN_GROUPS = 12


def parse_weights_map(assignments) -> tuple:
    """`OLD=NEW` strings (or a {old: new} mapping) as ((old, new), ...), in order."""
    if isinstance(assignments, Mapping):
        pairs = list(assignments.items())
    else:
        pairs = []
        for text in assignments or ():
            if not isinstance(text, str) or "=" not in text:
                raise error("E0623", f"--weights-map expects OLD=NEW, got `{text}`",
                            hint="e.g. `--weights-map module.=` drops a `module.` prefix; "
                                 "`--weights-map backbone.=features.` renames one")
            pairs.append(tuple(text.split("=", 1)))
    for old, new in pairs:
        if not isinstance(old, str) or not isinstance(new, str):
            raise error("E0623", f"a weights map renames text to text, got {old!r} -> {new!r}")
    return tuple(pairs)


def read_state_dict(source, weights_map=()) -> dict:
    """The state dict held by `source` (a path, or a checkpoint already loaded), with
    its key prefixes renamed by `weights_map` (((old, new), ...): the first that
    matches a key renames it)."""
    if isinstance(source, Mapping):
        shown, checkpoint = "the given checkpoint", source
    else:
        shown = os.fspath(source)
        checkpoint = _load(source, shown)
    state = _state_dict_in(checkpoint, shown)
    return _renamed(state, parse_weights_map(weights_map), shown)


def _load(path, shown: str):
    import torch

    f = open_checkpoint(path, shown, "a checkpoint", hint="--weights takes a file written by torch.save")
    with f:
        if zipfile.is_zipfile(f):
            problem = zip_archive_problem(f)
            if problem:
                raise error("E0902", f"{shown} is not a PyTorch checkpoint: {problem}", hint=_TAKES)
        else:
            f.seek(0)
            if f.read(1) != _PICKLE_PROTO:  # torch.save's legacy format is a pickle too
                raise error("E0902", f"{shown} is not a PyTorch checkpoint: neither a zip archive as torch.save "
                            "writes nor a pickle", hint=_TAKES)
        f.seek(0)
        try:
            with warnings.catch_warnings():  # torch's notes on pickle protocols are not the user's business
                warnings.simplefilter("ignore")
                return torch.load(f, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise _refusal(exc, shown) from None


_PICKLE_PROTO = b"\x80"  # the first byte of every pickle of protocol 2 or later
_TAKES = ("--weights takes a file written by torch.save: a state dict, or a dict holding one under "
          "`state_dict` or `model`")
_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")


def _refusal(exc: Exception, shown: str) -> SpecError:
    import pickle

    text = str(exc)
    if isinstance(exc, pickle.UnpicklingError) and "Weights only load failed" in text:
        named = _GLOBAL.search(text)
        what = f"it names `{named.group(1)}`" if named else "it uses pickle instructions beyond plain data"
        return error("E0901", f"{shown} was refused: it holds more than tensors and plain containers ({what}); "
                     "nothing in it was run",
                     hint="archspec reads checkpoints with torch.load(weights_only=True), which never runs code "
                          "from the file; save the state dict alone (torch.save(model.state_dict(), PATH)) "
                          "from a copy you trust")
    first = (text.strip().splitlines() or [""])[0][:200]
    return error("E0902", f"{shown} is not a PyTorch checkpoint: torch.load failed ({type(exc).__name__}: {first})",
                 hint=_TAKES)


def _state_dict_in(checkpoint, shown: str) -> dict:
    import torch

    if not isinstance(checkpoint, Mapping):
        raise error("E0903", f"{shown} holds a {type(checkpoint).__name__}, not a state dict",
                    hint="save model.state_dict(), or a dict holding it under `state_dict` or `model`")
    if isinstance(checkpoint.get("format"), str) and checkpoint["format"] == _fused_format():
        raise error("E0632", f"{shown} holds a fused network (`build --fuse -o`): its batch norms are folded "
                    "into the layers before them, so its weights do not fit the spec's network",
                    hint=f"archspec.load_built({shown!r}) returns the fused network; for --weights, give the "
                         "unfused build or checkpoint it was fused from")
    if checkpoint and not _is_state_dict(checkpoint):
        for key in CHECKPOINT_KEYS:
            if isinstance(checkpoint.get(key), Mapping):
                checkpoint = checkpoint[key]
                break
    for key, value in checkpoint.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            held = ", ".join(f"`{k}`" for k in list(checkpoint)[:6] if isinstance(k, str))
            raise error("E0903", f"{shown} holds no state dict: {reprlib.repr(key)} maps to "
                        f"{type(value).__name__}, not a tensor",
                        hint=f"a checkpoint's state dict is read from its `state_dict` or `model` entry; "
                             f"this one holds {held or 'no names'}")
    if not checkpoint:
        raise error("E0903", f"{shown} holds an empty state dict")
    return dict(checkpoint)


def _fused_format() -> str:
    from .artifact import FUSED_FORMAT

    return FUSED_FORMAT


def _is_state_dict(mapping: Mapping) -> bool:
    import torch

    return all(isinstance(v, torch.Tensor) for v in mapping.values())


def _renamed(state: dict, pairs: tuple, shown: str) -> dict:
    if not pairs:
        return state
    used = set()
    renamed: dict = {}
    origin: dict = {}
    for key, value in state.items():
        new = key
        for old, replacement in pairs:
            if key.startswith(old):
                new = replacement + key[len(old):]
                used.add(old)
                break
        if new in renamed:
            raise error("E0905", f"--weights-map renames both `{origin[new]}` and `{key}` in {shown} to `{new}`",
                        hint="make the prefixes more specific")
        renamed[new], origin[new] = value, key
    unused = [old for old, _ in pairs if old not in used]
    if unused:
        raise error("E0905", f"--weights-map `{unused[0]}=`: no key of {shown} starts with `{unused[0]}`",
                    hint=f"its keys start like {_sample(state)}")
    return renamed


def _sample(state: dict) -> str:
    return ", ".join(f"`{k}`" for k in list(state)[:3])


# -- comparing with the spec -------------------------------------------------------

@dataclass(frozen=True)
class _Problem:
    kind: str      # missing, unexpected, reshaped
    key: str
    detail: str
    owner: str | None  # the spec node holding the key


def check_fits(inferred, name: str, expected: dict, state: dict, shown: str) -> None:
    """E0904 listing every key of `state` that does not fit `expected` (the state dict
    of the spec built on the meta device), grouped by block."""
    graph = inferred.graph
    if not expected.keys() & state.keys():  # another naming altogether: a listing would be every key twice
        raise error("E0904", f"the weights in {shown} do not fit {name}: none of its {len(state):,} keys is one "
                    f"of the spec's {len(expected):,}; it has {_sample(state)}, ..., the spec {_sample(expected)}, ...",
                    hint=_hint(expected, state, []))
    problems = []
    for key, tensor in expected.items():
        if key not in state:
            problems.append(_Problem("missing", key, _shape(tensor), _owner(graph, key)))
        else:
            found = state[key]
            if found.shape != tensor.shape:
                problems.append(_Problem("reshaped", key, f"{_shape(found)} in the file, {_shape(tensor)} in the spec",
                                         _owner(graph, key)))
            elif found.dtype.is_complex or found.is_floating_point() != tensor.is_floating_point():
                problems.append(_Problem("reshaped", key, f"{found.dtype} in the file, {tensor.dtype} in the spec",
                                         _owner(graph, key)))
    for key, tensor in state.items():
        if key not in expected:
            problems.append(_Problem("unexpected", key, _shape(tensor), _owner(graph, key)))
    if problems:
        raise error("E0904", _report(graph, name, shown, problems), hint=_hint(expected, state, problems))


def _shape(tensor) -> str:
    return str(list(tensor.shape))


def _owner(graph, key: str) -> str | None:
    """The node whose module holds `key`: the longest name that prefixes it."""
    parts = key.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in graph.nodes:
            return candidate
    return None


def _scopes(graph) -> dict:
    """Every enclosing scope of the graph -> (what made it, where it was instantiated)."""
    found = {}
    for node in graph.nodes.values():
        # trace is innermost first, scopes outermost first: they pair up reversed.
        places = [pos for _, pos in reversed(node.trace)] if len(node.trace) == len(node.scopes) else []
        for index, (scope, what) in enumerate(node.scopes):
            if scope not in found:
                found[scope] = (what, places[index] if places else None)
    return found


def _group_of(graph, scopes: dict, problem: _Problem) -> str:
    if problem.owner is not None:
        node_scopes = graph.nodes[problem.owner].scopes
        return node_scopes[-1][0] if node_scopes else ""
    parts = problem.key.split(".")
    for end in range(len(parts) - 1, 0, -1):  # the deepest scope of the spec that prefixes the key
        candidate = ".".join(parts[:end])
        if candidate in scopes:
            return candidate
    return ""


def _report(graph, name: str, shown: str, problems: list) -> str:
    scopes = _scopes(graph)
    counts = {kind: sum(p.kind == kind for p in problems) for kind in ("missing", "unexpected", "reshaped")}
    summary = ", ".join(f"{n} {kind}" for kind, n in counts.items() if n)
    lines = [f"the weights in {shown} do not fit {name}: {summary} "
             f"key{'s' if len(problems) != 1 else ''}"]
    groups: dict = {}
    for problem in problems:
        groups.setdefault(_group_of(graph, scopes, problem), []).append(problem)
    order = {kind: i for i, kind in enumerate(("reshaped", "missing", "unexpected"))}
    for index, (group, members) in enumerate(groups.items()):
        if index == SHOWN_GROUPS:
            rest = sum(len(m) for m in list(groups.values())[index:])
            lines.append(f"  ... {len(groups) - index} more blocks, {rest} keys")
            break
        what, pos = scopes.get(group, (None, None))
        title = f"block `{group}` ({what})" if group else "top level"
        lines.append(f"  {title}" + (f", instantiated at {pos}" if pos else "") + ":")
        members = _collapsed(sorted(members, key=lambda p: order[p.kind]), group)
        for problem in members[:SHOWN_PER_GROUP]:
            where = graph.nodes[problem.owner].pos if problem.owner else None
            lines.append(f"    {problem.kind:<10}  {problem.key} {problem.detail}" + (f"  ({where})" if where else ""))
        if len(members) > SHOWN_PER_GROUP:
            rest = members[SHOWN_PER_GROUP:]
            kinds = ", ".join(f"{sum(p.kind == k for p in rest)} {k}" for k in order if any(p.kind == k for p in rest))
            lines.append(f"    ... and {len(rest)} more ({kinds})")
    return "\n".join(lines)


def _collapsed(members: list, group: str) -> list:
    """Unexpected keys of a part the spec does not have (`layer1.2.*` when `layer1`
    repeats twice) as one line per part."""
    depth = len(group.split(".")) + 1 if group else 1
    parts: dict = {}
    for problem in members:
        if problem.kind == "unexpected" and problem.owner is None and problem.key.count(".") >= depth:
            parts.setdefault(".".join(problem.key.split(".")[:depth]), []).append(problem)
    shown, done = [], set()
    for problem in members:
        part = ".".join(problem.key.split(".")[:depth])
        keys = parts.get(part) if problem.kind == "unexpected" and problem.owner is None else None
        if not keys or len(keys) == 1:
            shown.append(problem)
        elif part not in done:
            done.add(part)
            what = "not in the spec" + (f": `{group}` has no `{part[len(group) + 1:]}`" if group else "")
            shown.append(_Problem("unexpected", f"{part}.*", f"({len(keys)} keys, {what})", None))
    return shown


def _hint(expected: dict, state: dict, problems: list) -> str:
    prefix = _common_extra_prefix(expected, state)
    if prefix:
        return (f"every key in the file starts with `{prefix}`: load it with `--weights-map {prefix}=` "
                f"(weights_map={{'{prefix}': ''}} in the API)")
    if problems and all(p.kind == "reshaped" for p in problems):
        return "the layout matches but sizes differ: check the spec's args (--set, --scale) against the checkpoint's"
    return ("the checkpoint comes from another architecture or layout: check the spec's args (--set, --scale), "
            "or rename key prefixes with --weights-map OLD=NEW")


def _common_extra_prefix(expected: dict, state: dict) -> str | None:
    """`module.` when every key of the file starts with it and none of the spec's do
    (a checkpoint saved from a DataParallel or a wrapper)."""
    firsts = {key.split(".", 1)[0] for key in state}
    if len(firsts) != 1 or not all("." in key for key in state):
        return None
    prefix = firsts.pop() + "."
    if any(key.startswith(prefix) for key in expected):
        return None
    stripped = {key[len(prefix):] for key in state}
    return prefix if stripped & expected.keys() else None


def load_into(net, state: dict, shown: str) -> None:
    """Copy `state` (already checked to fit) into the built module."""
    try:
        net.load_state_dict(state, strict=True)
    except Exception as exc:  # a tensor that cannot be copied into its weight
        raise error("E0904", f"the weights in {shown} do not load: {(str(exc).strip().splitlines() or [''])[0]}") \
            from None


def build_with_weights(compiled, weights, weights_map=None, device=None, dtype=None):
    """The module of `compiled` holding the weights of `weights` (a path or a
    checkpoint), checked to fit on the meta device before anything is allocated. The
    spec's `init:` is checked there too but not drawn: the checkpoint sets every tensor."""
    from .builder import build_module
    from .init import apply as apply_init

    name = compiled.spec.name
    shown = "the given checkpoint" if isinstance(weights, Mapping) else os.fspath(weights)
    state = read_state_dict(weights, weights_map)
    skeleton = build_module(compiled.inferred, name, device="meta")
    apply_init(compiled.init, skeleton)  # on the meta device: the `init:` checks, no draws
    expected = skeleton.state_dict()
    check_fits(compiled.inferred, name, expected, state, shown)
    net = build_module(compiled.inferred, name, device=device, dtype=dtype)
    load_into(net, state, shown)
    return net

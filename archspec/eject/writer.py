"""The Python text of the ejected module: imports, helper functions, one class per
block structure (children before parents), the network's class and `build()`."""
from __future__ import annotations

import keyword
import re
import textwrap

from ..expand import TAKEN_BY_TORCH
from .classes import DROP, REQUIRED, ClassDef, literal

INDENT = "    "
# Names the generated code uses itself; no variable may take them.
_RESERVED = {"self", "x", "F", "nn", "torch", "super", "range", "None", "True", "False"}
_AMBIGUOUS = {"l", "I", "O"}  # pycodestyle E741


class Writer:
    def __init__(self, available: dict):
        self.uses = {"nn"}
        self.available = available  # name -> Copied: functions and classes to copy into the file
        self.helpers: dict = {}     # name -> source, of those used

    # -- values and constructions ----------------------------------------------------
    def arguments(self, cls: ClassDef, args, kept: dict | None = None) -> list:
        """Argument texts; in a forward (`kept` given) constructor arguments are read
        from the attributes __init__ keeps them in."""
        parts = []
        for label, is_keyword, _default, sid in args:
            text = cls.text[sid]
            if text is DROP:
                continue
            if kept is not None and sid in cls.uses:
                for name in cls.uses[sid]:
                    text = re.sub(rf"\b{re.escape(name)}\b", f"self.{kept[name]}", text)
            parts.append(f"{label}={text}" if is_keyword else text)
        return parts

    def construction(self, cls: ClassDef, structure, indent: str) -> str:
        kind = structure[0]
        if kind == "module":
            _, name, args, children, frozen = structure
            self._use(name)
            parts = [self.construction(cls, c, indent + INDENT) for c in children] + self.arguments(cls, args)
            text = f"{name}({', '.join(parts)})"
            if children and len(indent) + len(text) > 88:  # a container: one child a line
                text = f"{name}(" + "".join(f"\n{indent}{INDENT}{part}," for part in parts) + f"\n{indent})"
            return text + ".requires_grad_(False)" if frozen else text
        if kind == "new":
            return f"{structure[1]}({', '.join(self.arguments(cls, structure[2]))})"
        if kind == "sequential":
            items = [self.construction(cls, e, indent + INDENT) for e in structure[1]]
            lines, i = [], 0
            while i < len(items):  # three or more equal copies in a row are written once
                j = i
                while j < len(items) and items[j] == items[i]:
                    j += 1
                if j - i >= 3:
                    lines.append(f"*({items[i]} for _ in range({j - i}))")
                else:
                    lines.extend(items[i:j])
                i = j
            inner = "".join(f"\n{indent}{INDENT}{line}," for line in lines)
            return f"nn.Sequential({inner}\n{indent})"
        raise AssertionError(kind)

    def _use(self, name: str) -> None:
        if name in self.available and name not in self.helpers:
            copied = self.available[name]
            self.helpers[name] = copied.source
            self.uses |= set(copied.uses)
            for need in copied.needs:
                self._use(need)

    # -- a class -----------------------------------------------------------------------
    def class_text(self, cls: ClassDef, docstring: str) -> str:
        first = cls.first
        registered = [entry[1] for entry in first.init]
        dict_base = any(not _plain_attribute(entry[1]) for entry in first.init if entry[0] != "param")
        base = "nn.ModuleDict" if dict_base else "nn.Module"

        def attr(rel):
            return f'self["{rel}"]' if dict_base else f"self.{rel}"

        out = [f"class {cls.name}({base}):", _docstring(docstring, INDENT), ""]
        body = INDENT * 2
        # Constructor arguments the forward reads (a dropout probability) are kept as attributes.
        kept = {}
        for call in _calls(first.forward):
            for _label, _kw, _default, sid in call[3]:
                if sid in cls.uses and cls.text[sid] is not DROP:
                    for name in cls.uses[sid]:
                        clash = name in registered or name in TAKEN_BY_TORCH or name.startswith("_")
                        kept.setdefault(name, f"{name}_value" if clash else name)
        init = [f"self.{attr_name} = {name}" for name, attr_name in kept.items()]
        for entry in first.init:
            kind, rel = entry[0], entry[1]
            if kind == "set":
                init.append(f"{attr(rel)} = {self.construction(cls, entry[2], body)}")
            elif kind == "opt":
                presence = cls.presence.get(rel, "never")
                if presence == "never":
                    continue
                text = self.construction(cls, cls.optional[rel], body)
                if presence == "some":
                    text = f"{text} if {cls.flags[rel]} else None"
                init.append(f"{attr(rel)} = {text}")
            elif kind == "param":
                self.uses.add("torch")
                grad = "" if entry[2] else ", requires_grad=False"
                shape = cls.text[f"{rel}/shape"]
                start = entry[3]
                if start == "fill":
                    start = f"torch.full({shape}, {cls.text[f'{rel}/fill']})"
                elif start == "zeros":
                    start = f"torch.zeros({shape})"
                else:  # the op's declared draw, so the file takes the generator's numbers as archspec does
                    method, kwargs = start
                    start = f"torch.empty({shape}).{method}(" + ", ".join(f"{k}={v!r}" for k, v in kwargs.items()) + ")"
                value = f"nn.Parameter({start}{grad})"
                init.append(f"self.{rel} = {value}" if _plain_attribute(rel)
                            else f'self.register_parameter("{rel}", {value})')
        if init or cls.params:
            signature = ", ".join(["self"] + [p.name if p.default is REQUIRED else f"{p.name}={literal(_as_default(p.default))}"
                                              for p in cls.params])
            out.append(f"{INDENT}def __init__({signature}):")
            out.append(f"{body}super().__init__()")
            out += [body + line for line in init]
            out.append("")
        out += self.forward_text(cls, attr, dict_base, kept)
        return "\n".join(out)

    def forward_text(self, cls: ClassDef, attr, dict_base: bool, kept: dict) -> list:
        first = cls.first
        names = _Names(set(self.available))
        inputs = ["x"] if len(first.inputs) == 1 else [f"x{i}" for i in range(len(first.inputs))]
        var = {f"@{i}": name for i, name in enumerate(inputs)}
        alias = {}
        for stmt in first.forward:
            kind = stmt[0]
            if kind == "call":
                _, rel, _t, hint, _ins, outs = stmt
                if len(outs) == 1:
                    var[outs[0]] = names.new(rel, hint)
                else:
                    for out in outs:
                        var[out] = names.new(f"{rel}_{out[len(rel) + 1:]}", hint)
            elif kind == "opt":
                _, rel, _t, hint, fed = stmt
                if cls.presence.get(rel, "never") == "never":
                    alias[rel] = fed[0]
                else:
                    var[rel] = names.new(rel, hint)
            elif kind == "fn":
                var[stmt[1]] = names.new(stmt[1], stmt[3])

        def v(ref):
            while ref in alias:
                ref = alias[ref]
            return var[ref]

        lines_eval, lines_train = [], []
        returns = None
        for stmt in first.forward:
            kind = stmt[0]
            if kind in ("return", "return_root"):
                returns = stmt
                continue
            target = lines_train if stmt[2] else lines_eval
            if kind == "comment":
                target += [f"# {line}".rstrip() for line in stmt[1].strip().splitlines()]
            elif kind == "call":
                _, rel, _t, _h, ins, outs = stmt
                lhs = ", ".join(v(o) for o in outs)
                target.append(f"{lhs} = {attr(rel)}({', '.join(v(i) for i in ins)})")
            elif kind == "opt":
                _, rel, _t, _h, fed = stmt
                presence = cls.presence.get(rel, "never")
                if presence == "never":
                    continue
                call = f"{attr(rel)}({', '.join(v(f) for f in fed)})"
                if presence == "some":
                    call = f"{call} if {attr(rel)} is not None else {v(fed[0])}"
                target.append(f"{var[rel]} = {call}")
            elif kind == "fn":
                _, rel, _t, _h, fed, structure, param_rel = stmt
                args = [v(f) for f in fed]
                if param_rel is not None:
                    args.append(f"self.{param_rel}" if _plain_attribute(param_rel) else f'getattr(self, "{param_rel}")')
                target.append(f"{var[rel]} = {self.call_text(cls, structure, args, kept)}")

        body = INDENT * 2
        out = [f"{INDENT}def forward(self, {', '.join(inputs)}):"]
        out += [body + line for line in lines_eval]
        if returns[0] == "return":
            out.append(f"{body}return {', '.join(v(o) for o in returns[1])}")
            return out
        _, eval_outs, train_outs = returns
        if lines_train or eval_outs != train_outs:
            out.append(f"{body}if self.training:")
            out += [body + INDENT + line for line in lines_train]
            out.append(f"{body}{INDENT}return {', '.join(v(o) for o in train_outs)}")
        out.append(f"{body}return {', '.join(v(o) for o in eval_outs)}")
        return out

    def call_text(self, cls: ClassDef, structure, args: list, kept: dict) -> str:
        mode = structure[0]

        def one(call, extra=()):
            text, infix, takes_list, kwargs, helper, uses = call
            self.uses |= set(uses)
            if helper is not None:
                self._use(helper[0])
            if infix:
                return f" {text} ".join(args)
            keywords = self.arguments(cls, kwargs, kept) + list(extra)
            positional = [f"[{', '.join(args)}]"] if takes_list else list(args)
            return f"{text}({', '.join(positional + keywords)})"

        if mode == "same":
            return one(structure[1])
        if mode == "training_flag":
            return one(structure[1], ["training=self.training"])
        if mode == "train_else_pass":
            return f"{one(structure[1])} if self.training else {args[0]}"
        if mode == "eval_else_pass":
            return f"{args[0]} if self.training else {one(structure[1])}"
        return f"{one(structure[1])} if self.training else {one(structure[2])}"


def _calls(forward):
    for stmt in forward:
        if stmt[0] == "fn":
            yield from stmt[5][1:]


class _Names:
    """Readable, distinct variable names for one forward."""

    def __init__(self, taken):
        self.taken = set(_RESERVED) | set(taken)

    def new(self, rel: str, hint: str) -> str:
        name = re.sub(r"\W", "_", rel)
        if not name.isidentifier() or name[0].isdigit() or name in _AMBIGUOUS or name.startswith("_"):
            name = f"{re.sub(r'[^0-9A-Za-z_]', '_', hint)}_{name}".strip("_")
        if keyword.iskeyword(name) or name in self.taken:
            base, i = name, 2
            while f"{base}_{i}" in self.taken:
                i += 1
            name = f"{base}_{i}"
        self.taken.add(name)
        return name


def _as_default(value):
    """Lists as tuples: a list default would be shared between calls."""
    return tuple(_as_default(v) for v in value) if isinstance(value, (list, tuple)) else value


def _plain_attribute(rel: str) -> bool:
    return rel.isidentifier() and not keyword.iskeyword(rel) and not rel.startswith("_")


def _docstring(text: str, indent: str) -> str:
    text = text.strip().replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    lines = text.splitlines()
    if len(lines) == 1 and len(lines[0]) < 88:
        return f'{indent}"""{lines[0]}"""'
    return f'{indent}"""' + "\n".join((indent + line if line and i else line) for i, line in enumerate(lines)) + \
        f"\n{indent}\"\"\""


def wrap(text: str, width: int = 88) -> str:
    """Paragraphs wrapped to `width`, blank lines kept."""
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text.strip())]
    return "\n\n".join(textwrap.fill(p, width) for p in paragraphs if p)

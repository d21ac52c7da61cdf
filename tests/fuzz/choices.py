"""The generator's state and its elementary choices: integers, chances, picks and fresh
names drawn from Hypothesis (each shrinks towards the plainest option), expressions and
`when:` conditions over the names in scope, and trial runs of the model that tell whether
a candidate node is valid where it would go."""
from __future__ import annotations

from hypothesis import strategies as st

from .model import E, Run, Scope
from .rules import Invalid


class Choices:
    def __init__(self, draw, max_nodes: int):
        self.draw = draw
        self.counter = 0
        self.blocks: dict = {}
        self.budget = max_nodes
        self.file_env: dict = {}
        self.input_shape = None
        self.want_unit = False

    # -- choices (each shrinks towards the plainest option) ---------------------------
    def int(self, lo, hi):
        return self.draw(st.integers(lo, hi))

    def chance(self, p: float) -> bool:
        return self.draw(st.integers(0, 99)) >= 100 - round(p * 100)

    def pick(self, options):
        return options[self.draw(st.integers(0, len(options) - 1))]

    def weighted(self, options):
        """options: [(weight, value)], first = simplest."""
        total = sum(w for w, _ in options)
        r = self.draw(st.integers(0, total - 1))
        for w, v in options:
            if r < w:
                return v
            r -= w
        return options[-1][1]

    def fresh(self, stem: str, scope: Scope | None = None) -> str:
        """A new name: unique in its namespace (so names repeat across namespaces, as
        `conv1` and `layer1.0.conv1` do), or in the whole spec without a scope."""
        counter = scope.counter if scope is not None else [self.counter]
        counter[0] += 1
        if scope is None:
            self.counter = counter[0]
        return f"{stem}{counter[0]}"

    # -- expressions -------------------------------------------------------------------
    def int_vars(self, env):
        return sorted(k for k, v in env.items() if isinstance(v, int) and not isinstance(v, bool)
                      and k not in ("num_classes",) and v > 0)

    def bool_vars(self, env):
        return sorted(k for k, v in env.items() if isinstance(v, bool))

    def int_value(self, env, lo, hi, ok=lambda v: True, p_expr=0.35, prefer=None):
        """A literal in [lo, hi] passing `ok`, or an expression of the scope's names."""
        names = self.int_vars(env)
        if prefer in names and self.chance(0.6):
            names = [prefer]
        if names and self.chance(p_expr):
            n = self.pick(names)
            c = self.int(1, 3)
            forms = [
                (f"${n}", lambda e: e[n]),
                (f"${{{n} * {c + 1}}}", lambda e: e[n] * (c + 1)),
                (f"${{{n} + {c}}}", lambda e: e[n] + c),
                (f"${{max(1, {n} - {c})}}", lambda e: max(1, e[n] - c)),
                (f"${{{n} // {c + 1}}}", lambda e: e[n] // (c + 1)),
                (f"${{min({n}, {c + 3})}}", lambda e: min(e[n], c + 3)),
                (f"${{int({n} / 2) + 1}}", lambda e: int(e[n] / 2) + 1),
                (f"${{{n} * 2 if {n} < {c + 3} else {n}}}", lambda e: e[n] * 2 if e[n] < c + 3 else e[n]),
                (f"${{({n} + {c}) % 5 + 1}}", lambda e: (e[n] + c) % 5 + 1),
                (f"${{round({n} * 1.5)}}", lambda e: round(e[n] * 1.5)),
                (f"${{abs({n} - {c + 4})}}", lambda e: abs(e[n] - (c + 4))),
            ]
            if "i" in env:
                forms.append((f"${{{n} + i}}", lambda e: e[n] + e["i"]))
            text, fn = self.pick(forms)
            value = fn(env)
            if lo <= value <= hi and ok(value):
                return E(text, fn, quote=self.chance(0.5)), value
        value = self.int(lo, hi)
        tries = 0
        while not ok(value) and tries < 4:
            value = self.int(lo, hi)
            tries += 1
        if not ok(value):
            value = next(v for v in range(lo, hi + 1) if ok(v))
        return value, value

    def condition(self, env):
        """A `when:` condition: true, false, or an expression of the scope's names."""
        forms = [True]
        for b in self.bool_vars(env):
            forms += [E(f"${b}", lambda e, b=b: e[b]), E(f"${{not {b}}}", lambda e, b=b: not e[b])]
        for n in self.int_vars(env):
            c = self.int(1, 6)
            forms += [E(f"${{{n} > {c}}}", lambda e, n=n, c=c: e[n] > c),
                      E(f"${{{n} >= {c} or {n} == 1}}", lambda e, n=n, c=c: e[n] >= c or e[n] == 1)]
        forms.append(False)
        raw = self.pick(forms)
        if isinstance(raw, E):
            raw.quote = self.chance(0.5)
        return raw

    # -- trial interpretation -----------------------------------------------------------
    def trial(self, name, node, scope, cur):
        """The output shape of the node where it would go, or None where it is invalid;
        the scope is left as it was."""
        try:
            return self.commit(name, node, scope.clone(), cur)
        except Invalid:
            return None

    def commit(self, name, node, scope, cur):
        """Interprets the node in the scope, which records its name; its output shape."""
        return Run(self.blocks, self.input_shape, self.file_env).node(name, node, scope, cur)

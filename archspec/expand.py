"""Expansion: a spec document becomes a flat graph of primitive ops.

Blocks are instantiated with their arguments, `repeat:` is unrolled, `when:`
conditions are applied and every expression is evaluated, so what comes out
holds only ops, literal arguments and qualified names.

Naming follows the document: a node's mapping key (or list index) is one segment
of its qualified name; blocks, `seq:` and repeats open a namespace; the branches
of `concat:` and `add:` do not, so a branch's nodes are named as siblings of the
join (that is how torchvision names Inception's `branch5x5_1`).
"""
from __future__ import annotations

import keyword
import re
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from .diagnostics import Diagnostic, Position, SpecError, did_you_mean, error
from .expressions import ExpressionError, Function, Lazy
from .graph import INPUT, Graph, Node, Output, finish_graph, to_networkx
from .infer import node_facts
from .ops import REGISTRY, OpError
from .schema import COMMON_NODE_KEYS, node_kinds
from .spec import SHAPE_NAMES, Spec, resolve_written
from .yaml_source import SourceMap, make_map, position_of

MAX_NODES = 250_000
MAX_DEPTH = 64
MAX_ERRORS = 50
# Limits stop expansion outright; any other error is recorded and expansion goes on
# with the next node, so one run reports every independent mistake.
_FATAL = {"E0310", "E0311"}
# Stands for the output of a node that failed; what reads it is not reported again.
BROKEN = "<broken>"
_SELF_INPUT = "in"  # in `from:`, the input of the enclosing block or seq
_NAME = re.compile(r"[A-Za-z0-9_-]+")
# Attributes of torch.nn.Module and of the compiled network: a module path segment of
# one of these names cannot be placed (tests/test_language.py keeps the list complete).
# Names starting with `_` are left to torch's internals too.
TAKEN_BY_TORCH = frozenset("""
    T_destination add_module apply bfloat16 buffers call_super_init children code compile cpu
    cuda double dump_patches eval extra_repr float forward get_buffer get_extra_state
    get_parameter get_submodule half ipu load_state_dict modules mtia named_buffers
    named_children named_modules named_parameters output_names parameters
    register_backward_hook register_buffer register_forward_hook register_forward_pre_hook
    register_full_backward_hook register_full_backward_pre_hook register_load_state_dict_post_hook
    register_load_state_dict_pre_hook register_module register_parameter
    register_state_dict_post_hook register_state_dict_pre_hook requires_grad_ set_extra_state
    set_submodule share_memory spec_name state_dict to to_empty train training type xpu zero_grad
""".split())


@dataclass
class _Scope:
    prefix: str                     # "layer1.0." (empty at the top)
    env: dict                       # names visible to expressions
    input: str                      # node feeding this scope
    trace: tuple                    # instantiation chain, innermost first
    blocks_open: tuple              # block names being instantiated (recursion guard)
    depth: int
    names: dict = field(default_factory=dict)     # local name -> output node
    children: dict = field(default_factory=dict)  # local name -> _Scope (blocks, seqs, repeats)
    switched_off: dict = field(default_factory=dict)  # local name -> position of its `when:`
    frozen: bool = False            # weights below here do not train
    labels: tuple = ()              # (namespace, what made it): ("layer1.0", "bottleneck"), ...


@dataclass(frozen=True)
class Expansion:
    """What expansion found: the graph, or the errors and the part of the graph they
    left sound (so that shape checks can still report independent mistakes)."""

    graph: Graph | None
    errors: tuple = ()
    sound_part: Graph | None = None
    facts: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))  # for inference to reuse


def expand(spec: Spec) -> Expansion:
    try:
        return _Expander(spec).run()
    except SpecError as exc:  # a limit, or a cycle: nothing sound to go on with
        return Expansion(None, tuple(exc.diagnostics))


class _Expander:
    def __init__(self, spec: Spec):
        self.spec = spec
        # Keys that say what a node is or how it is wired, never an argument.
        self.kinds = node_kinds()
        self.reserved = set(COMMON_NODE_KEYS) | set(self.kinds)
        self.doc = spec.document
        self.blocks = self.doc.get("blocks") or {}
        self.nodes: dict[str, dict] = {}  # qualified name -> mutable node record
        # `from:` references wait until every name is known: (node, input index, _Ref)
        self.pending: list = []
        self.errors: list[Diagnostic] = []
        # Qualified names of blocks, seqs and repeats -> the node that is their output.
        self.aliases: dict = {}
        # Facts of nodes whose inputs were known when they were added (what shape
        # expressions read, and what inference then reuses); nodes whose rules failed.
        self.facts: dict = {}
        self.failed: set = set()

    def run(self) -> Expansion:
        root = self.root = _Scope("", {}, INPUT, (), (), 0)
        root.env = {**self.spec.args, **self.shape_names(root, INPUT)}
        last = self.body(self.doc["graph"], root, INPUT)
        self.resolve_pending()
        outputs = self.recorded(lambda: self.outputs(root, self.settle(last)))
        nodes = {name: Node(name, r["op"], MappingProxyType(r["args"]), tuple(r["inputs"]),
                            r["pos"], r["trace"], r["arg_pos"], r["frozen"], r["labels"])
                 for name, r in self.nodes.items()}
        if self.errors:
            return Expansion(None, tuple(self.errors), _sound_part(self.spec.input_shape, nodes))
        aliases = {k: self.settle(v) for k, v in self.aliases.items()}
        return Expansion(finish_graph(self.spec.input_shape, nodes, outputs, aliases),
                         facts=MappingProxyType(self.facts))

    # -- evaluation helpers ---------------------------------------------------
    value = staticmethod(resolve_written)

    def fail(self, code, message, pos, scope, hint=None):
        raise SpecError(Diagnostic(code, message, pos, hint, scope.trace))

    # -- bodies and nodes -----------------------------------------------------
    def body(self, body, scope: _Scope, current: str) -> str:
        if not isinstance(body, dict):
            return self.list_body(body, scope, current, [0])
        for key, node in body.items():
            pos = position_of(body, key)
            name = key
            if not (isinstance(name, str) and _NAME.fullmatch(name)):
                name = self.recorded(lambda: self.checked_name(key, body.key_pos.get(key, pos), scope))
                if name is None:
                    continue
            current = self.named_node(name, node, scope, current, pos)
        return current

    def named_node(self, name, node, scope, current, pos) -> str:
        result = self.recorded(lambda: self.node(str(name), node, scope, current, pos))
        if result is None:  # recorded an error: later nodes still get checked
            scope.names.setdefault(str(name), BROKEN)
            result = BROKEN
        return result

    def list_body(self, items, scope: _Scope, current: str, counter: list) -> str:
        """A list is numbered as nn.Sequential numbers what is appended to it: each item
        present takes the next number (`counter[0]`), one switched off by `when:` takes
        none, a `repeat:` spreads its copies over the next numbers, and `splice:` inserts
        its items here. An item with `name:` keeps that name and takes no number."""
        for index, node in enumerate(items):
            pos = position_of(items, index)
            if isinstance(node, dict):
                if "when" in node and not self.recorded(lambda: self.flag(node, "when", scope.env, scope)):
                    continue  # switched off (or its condition failed and was reported)
                if "splice" in node:
                    current = self.recorded(lambda: self.splice(node, scope, current, counter, pos)) or BROKEN
                    continue
                if "repeat" in node and "names" not in node and "name" not in node:
                    current = self.recorded(lambda: self.repeat(None, node, scope, current, pos, counter)) or BROKEN
                    continue
                if "name" in node:
                    name = self.recorded(lambda: self.checked_name(
                        self.value(node["name"], scope.env, node.where("name"), "name"), node.where("name"), scope))
                    if name is None:
                        continue
                    current = self.named_node(name, node, scope, current, pos)
                    continue
            current = self.named_node(str(counter[0]), node, scope, current, pos)
            counter[0] += 1
        return current

    def splice(self, node, scope: _Scope, current: str, counter: list, pos) -> str:
        """`splice: [items]` inserts its items in the enclosing list, `repeat:` times."""
        count, index = (self.repeat_count(node, scope), self.index_name(node, scope)) if "repeat" in node else (1, None)
        for copy in range(count):
            local = scope
            if index is not None:
                local = replace(scope, env={**scope.env, index: copy})
                local.env.update(self.shape_names(local, current))
            current = self.list_body(node["splice"], local, current, counter)
        return current

    def checked_name(self, name, pos, scope) -> str:
        if isinstance(name, bool) or not isinstance(name, (str, int)) or not _NAME.fullmatch(str(name)):
            self.fail("E0408", f"a node name must be letters, digits, _ and -, got {name!r}", pos, scope,
                      "dots separate namespaces and cannot be part of a name")
        return str(name)

    def recorded(self, step):
        """Run one step; record its errors (unless fatal) and return None for them."""
        try:
            return step()
        except SpecError as exc:
            if getattr(exc, "final", False):
                raise
            if any(d.code in _FATAL for d in exc.diagnostics) or len(self.errors) >= MAX_ERRORS:
                final = SpecError(self.errors + exc.diagnostics)
                final.final = True  # carries every error so far: passed up untouched
                raise final from None
            self.errors.extend(exc.diagnostics)
            return None

    def node(self, name: str, node, scope: _Scope, current: str, pos: Position) -> str:
        try:
            return self._node(name, node, scope, current, pos)
        except SpecError as exc:  # errors from expressions and lookups learn where they happened
            if not getattr(exc, "final", False):
                exc.diagnostics = [d if d.trace else replace(d, trace=scope.trace) for d in exc.diagnostics]
            raise

    def flag(self, node, key, env, scope) -> bool:
        """A boolean node key (`when:`, `frozen:`): true or false, not merely truthy."""
        value = self.value(node[key], env, node.where(key), key)
        if not isinstance(value, bool):
            self.fail("E0504", f"`{key}:` must be true or false, got {value!r}", node.where(key), scope,
                      "write a comparison, e.g. `${n > 0}`" if isinstance(value, (int, float)) else None)
        return value

    def _node(self, name: str, node, scope: _Scope, current: str, pos: Position) -> str:
        if isinstance(node, list):  # a list value is shorthand for `seq:`
            node = make_map({"seq": node}, getattr(node, "pos", pos))
        pos = getattr(node, "pos", pos)
        # A switched-off node takes no name, so alternatives may share one.
        if "when" in node and not self.flag(node, "when", scope.env, scope):
            scope.switched_off.setdefault(name, node.where("when"))
            return current
        if name in scope.names or name in scope.children:
            self.fail("E0306", f"duplicate name `{scope.prefix}{name}`", pos, scope,
                      "every node in one namespace needs its own name")
        if name in TAKEN_BY_TORCH or name.startswith("_"):
            self.fail("E0408", f"`{name}` cannot name a node: torch.nn.Module uses that name itself",
                      pos, scope, f"rename it, e.g. `{name.strip('_')}_`")
        if keyword.iskeyword(name):
            self.fail("E0408", f"`{name}` cannot name a node: it is a Python keyword, which the generated "
                      "forward could not use as an attribute", pos, scope, f"rename it, e.g. `{name}_`")
        if "frozen" in node and self.flag(node, "frozen", scope.env, scope):
            scope = replace(scope, frozen=True)  # shares the name tables; only this node is frozen
        if "splice" in node:
            self.fail("E0408", "`splice:` inserts items into a list: it goes in a list body", node.where("splice"),
                      scope, "write the items in the list itself, or make this node a `seq:`")
        for key in ("at", "names", "as"):
            if key in node and "repeat" not in node:
                self.fail("E0408", f"`{key}:` only applies to a node with `repeat:`", node.key_pos[key], scope)
        if "repeat" in node:
            return self.repeat(name, node, scope, current, pos)
        source = self.inputs_of(node, scope, current)
        if "op" in node:
            out = self.op(name, node, scope, source, pos)
        elif "block" in node:
            out = self.block(name, node, scope, source, pos)
        elif "seq" in node:
            child = self.child_scope(scope, name, source[0], scope.env, (f"seq `{scope.prefix}{name}`", pos),
                                     "seq")
            out = self.body(node["seq"], child, source[0])
        else:
            out = self.join(name, node, scope, source, pos)
        scope.names[name] = out
        if "op" not in node:
            self.aliases[scope.prefix + name] = out
        return out

    def inputs_of(self, node, scope, current) -> list:
        """Input references of a node: resolved later, so `from:` may name later nodes."""
        if "from" not in node:
            return [current]
        raw = node["from"]
        refs = raw if isinstance(raw, list) else [raw]
        where = node.where("from")
        return [_Ref(self.value(r, scope.env, where, "from"), where, scope) for r in refs]

    def child_scope(self, scope, name, source, env, frame, label) -> _Scope:
        """A namespace fed by `source`; its expressions see `env` and the shape names."""
        if scope.depth + 1 > MAX_DEPTH:
            self.fail("E0311", f"nesting deeper than {MAX_DEPTH} levels at `{scope.prefix}{name}`",
                      frame[1], scope)
        child = _Scope(f"{scope.prefix}{name}.", {}, source, (frame,) + scope.trace,
                       scope.blocks_open, scope.depth + 1, frozen=scope.frozen,
                       labels=scope.labels + ((scope.prefix + name, label),))
        child.env = {**env, **self.shape_names(child, source)}
        scope.children[name] = child
        return child

    # -- shapes in expressions ------------------------------------------------
    def shape_names(self, scope: _Scope, source) -> dict:
        """`in_shape`, `in_channels` (of what feeds the scope) and `shape(name)` (of a
        node in scope), worked out only if an expression reads them."""
        in_shape = Lazy(lambda: list(self.shape_of(source, "the input")))
        return {
            "in_shape": in_shape,
            "in_channels": Lazy(lambda: in_shape.get()[0]),
            "shape": Function(lambda ref: list(self.shape_of(self.named(scope, ref), f"`{ref}`"))),
        }

    def named(self, scope: _Scope, ref) -> str:
        """The node a name in `shape(name)` means, seen from `scope`."""
        if not isinstance(ref, str):
            raise ExpressionError("E0504", f"shape() takes a node name in quotes, got {ref!r}")
        try:
            return self.settle(self.lookup(scope, ref, None))
        except SpecError as exc:
            raise ExpressionError("E0315", f"shape('{ref}') is not known yet: no `{ref}` is written before "
                                  "this expression in its scope",
                                  exc.diagnostics[0].hint or "shapes can be read from nodes written earlier") from None

    def shape_of(self, target, what: str) -> tuple:
        """The per-sample shape of a node (or of what a `from:` names), inferring it and
        its inputs now if need be; ExpressionError when it cannot be known yet."""
        name = self.now(target, what)
        stack = [name]
        # Nodes whose inputs were pushed and are not all inferred yet: every entry above
        # one in the stack descends from it, so an input among them closes a cycle. A node
        # merely waiting in the stack is no ancestor: a shortcut and the body it skips
        # (a diamond) both wait for the body's last node.
        opened = set()
        while stack:  # depth first over inputs not inferred yet, without recursion
            current = stack[-1]
            if current == INPUT or current in self.facts:
                stack.pop()
                continue
            if current in self.failed or current == BROKEN:
                raise ExpressionError("E0315", f"the shape of {what} is not known: `{current}` has an error "
                                      "of its own (reported separately)")
            record = self.nodes[current]
            inputs = [self.now(record["refs"][i], what) if src is None else src
                      for i, src in enumerate(record["inputs"])]
            waiting = [src for src in inputs if src != INPUT and src not in self.facts]
            if waiting:
                if current in opened or any(src in opened for src in waiting):
                    raise ExpressionError("E0315", f"the shape of {what} depends on itself")
                opened.add(current)
                stack.extend(waiting)
                continue
            if not self.infer_now(current, inputs):
                raise ExpressionError("E0315", f"the shape of {what} is not known: `{current}` has an error "
                                      "of its own (reported separately)")
            stack.pop()
        return self.spec.input_shape if name == INPUT else self.facts[name].shape

    def now(self, target, what: str) -> str:
        """A node name for what may be a `from:` still to be resolved."""
        if not isinstance(target, _Ref):
            return target
        try:
            return self.settle(target)
        except SpecError:
            raise ExpressionError(
                "E0315", f"the shape of {what} is not known yet: it comes from `{target.name}`, which is "
                "not written before this expression", "shapes can be read from nodes written earlier") from None

    def infer_now(self, name: str, inputs: list) -> bool:
        record = self.nodes[name]
        shapes = [self.spec.input_shape if src == INPUT else self.facts[src].shape for src in inputs]
        try:
            self.facts[name] = node_facts(record["op"], record["args"], shapes)
        except OpError:
            self.failed.add(name)  # inference reports it, with its position
            return False
        return True

    def repeat_count(self, node, scope) -> int:
        count = self.value(node["repeat"], scope.env, node.where("repeat"), "repeat")
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            self.fail("E0408", f"`repeat` must be a non-negative integer, got {count!r}",
                      node.where("repeat"), scope)
        if count > MAX_NODES:
            self.fail("E0310", f"`repeat: {count}` would exceed {MAX_NODES:,} nodes", node.where("repeat"), scope)
        return count

    def index_name(self, node, scope) -> str:
        """The variable holding the copy's index: `i`, or what `as:` names (so that a
        repeat inside another keeps the outer one's visible)."""
        if "as" not in node:
            return "i"
        index = node["as"]
        if not (isinstance(index, str) and index.isidentifier()) or index in SHAPE_NAMES:
            self.fail("E0408", f"`as:` names the copy's index variable: an identifier, got {index!r}",
                      node.where("as"), scope)
        return index

    def repeat(self, name, node, scope, current, pos, counter=None) -> str:
        """Copies of `node`: in a namespace `name.0`, `name.1`, ... by default; beside the
        repeat node under the `names:` template; or, in a list (`counter`), at the list's
        next numbers."""
        count = self.repeat_count(node, scope)
        index = self.index_name(node, scope)
        raw_at = node.get("at") or {}
        overrides = {}  # repeat index -> argument overrides; negative keys count from the end
        for key, extra in raw_at.items():
            if not -count <= int(key) < count:
                self.fail("E0408", f"`at: {key}` is outside repeat 0..{count - 1}", raw_at.where(key), scope)
            if int(key) % count in overrides:
                self.fail("E0408", f"`at: {key}` names copy {int(key) % count} a second time",
                          raw_at.where(key), scope, "merge the two overrides into one")
            overrides[int(key) % count] = extra
        out = self.inputs_of(node, scope, current)[0]
        # With `names:` the copies are named by the template and sit beside this node
        # (timm's `block4` .. `block11`), in a list at its next numbers; otherwise they
        # are `name.0` .. `name.N-1`.
        flat = "names" in node or counter is not None
        group = scope if flat else self.child_scope(scope, name, out, scope.env,
                                                    (f"repeat `{scope.prefix}{name}`", pos), f"repeat x{count}")
        # One copy of the node serves every index without overrides (nothing mutates it).
        # `when:` and `frozen:` were applied to the repeat node itself.
        common = _with_keys(node, {k: v for k, v in node.items()
                                   if k not in ("repeat", "at", "from", "names", "when", "frozen", "as")})
        for i in range(count):
            item = common
            if i in overrides:
                item = _with_keys(common, {**common, **overrides[i]}, overrides[i])
            env = {**group.env, index: i}
            local = replace(group, env=env, frozen=scope.frozen or group.frozen)
            env.update(self.shape_names(local, out))
            copy_name = str(i)
            if counter is not None and "names" not in node:
                copy_name = str(counter[0])
                counter[0] += 1
            elif flat:
                copy_name = self.checked_name(self.value(node["names"], env, node.where("names"), "names"),
                                              node.where("names"), scope)
                if copy_name in group.names or copy_name in group.children:
                    self.fail("E0306", f"`names:` gives copy {i} the name `{scope.prefix}{copy_name}`, "
                              "already taken", node.where("names"), scope, "use the index, as in `block${i + 4}`")
            out = self.node(copy_name, item, local, out, pos)
        if name is not None and (not flat or name not in scope.names):
            scope.names[name] = out
            self.aliases[scope.prefix + name] = out
        return out

    def op(self, name, node, scope, source, pos) -> str:
        op = REGISTRY.get(node["op"])
        if op is None:  # the schema stops this for files; kept for documents built in code
            self.fail("E0301", f"unknown op `{node['op']}`", node.where("op"), scope,
                      did_you_mean(node["op"], REGISTRY))
        given = {}
        for key, raw in node.items():
            if key in self.reserved:
                continue
            if key not in op.args:
                self.fail("E0303", f"op `{op.name}` has no argument `{key}`", node.key_pos.get(key, pos),
                          scope, did_you_mean(key, op.args) or f"it takes: {', '.join(op.args) or 'none'}")
            given[key] = self.value(raw, scope.env, node.where(key), f"`{key}`")
        try:
            args = op.normalise(given)
        except OpError as exc:
            where = node.where(exc.arg) if exc.arg in node else pos
            self.fail(exc.code, f"{scope.prefix}{name}: {exc.message}", where, scope, exc.hint)
        least, most = op.input_range()
        wanted = op.input_words()
        if len(source) < least or (most is not None and len(source) > most):
            self.fail("E0305", f"op `{op.name}` takes {wanted} input(s), `{scope.prefix}{name}` has {len(source)}",
                      node.where("from") if "from" in node else pos, scope,
                      "list them: `from: [a, b]`" if least > 1 else None)
        # The node mapping's own table of value positions, shared rather than copied.
        return self.add_node(scope, name, op.name, args, source, pos, node.value_pos)

    def add_node(self, scope, name, op_name, args, source, pos, arg_pos=None) -> str:
        qualified = scope.prefix + name
        if qualified in self.nodes:
            self.fail("E0306", f"duplicate name `{qualified}`", pos, scope)
        if len(self.nodes) >= MAX_NODES:
            self.fail("E0310", f"the expanded graph exceeds {MAX_NODES:,} nodes", pos, scope)
        record = {"op": op_name, "args": args, "inputs": [], "refs": {}, "pos": pos, "trace": scope.trace,
                  "arg_pos": arg_pos or {}, "frozen": scope.frozen, "labels": scope.labels}
        self.nodes[qualified] = record
        for index, src in enumerate(source):
            if isinstance(src, _Ref):
                record["inputs"].append(None)
                record["refs"][index] = src
                self.pending.append((qualified, index, src))
            else:
                record["inputs"].append(src)
        if not record["refs"] and all(src == INPUT or src in self.facts for src in record["inputs"]):
            self.infer_now(qualified, record["inputs"])
        return qualified

    def block(self, name, node, scope, source, pos) -> str:
        block_name = self.value(node["block"], scope.env, node.where("block"), "block")
        if not isinstance(block_name, str):
            self.fail("E0302", f"`block:` must name a block, got {block_name!r}", node.where("block"), scope)
        definition = self.blocks.get(block_name)
        if definition is None:
            self.fail("E0302", f"unknown block `{block_name}`", node.where("block"), scope,
                      did_you_mean(block_name, self.blocks) or
                      f"blocks in this spec: {', '.join(self.blocks) or 'none'}")
        if block_name in scope.blocks_open:
            chain = " -> ".join(scope.blocks_open + (block_name,))
            self.fail("E0309", f"block `{block_name}` instantiates itself ({chain})", node.where("block"), scope)
        declared = definition.get("args") or {}
        for key in declared:
            if key in self.reserved:
                self.fail("E0408", f"block `{block_name}` declares argument `{key}`, a node key, which "
                          "could never be passed", position_of(declared, key), scope, "rename the argument")
        for key in SHAPE_NAMES:
            if key in declared:
                self.fail("E0408", f"block `{block_name}` declares argument `{key}`, a name every block "
                          "already has", position_of(declared, key), scope, "rename the argument")
        given = {}
        for key, raw in node.items():
            if key in self.reserved:
                continue
            if key not in declared:
                self.fail("E0303", f"block `{block_name}` has no argument `{key}`", node.key_pos.get(key, pos),
                          scope, did_you_mean(key, declared) or f"it takes: {', '.join(declared) or 'none'}")
            given[key] = self.value(raw, scope.env, node.where(key), f"`{key}`")
            if given[key] is None and declared[key] is None:
                self.fail("E0304", f"block `{block_name}` needs a value for `{key}`, got ~", node.where(key), scope)
        frame = (f"block `{block_name}` as `{scope.prefix}{name}`", pos)
        child = self.child_scope(scope, name, source[0], {**self.spec.args, **given}, frame, block_name)
        child.blocks_open = scope.blocks_open + (block_name,)
        env = child.env
        # Defaults are worked out after the given arguments, in order, so a default
        # may use any argument given, any declared before it, and the input's shape.
        for key, default in declared.items():
            if key not in node:
                if default is None:
                    self.fail("E0304", f"block `{block_name}` needs argument `{key}`", pos, scope,
                              f"declared at {position_of(declared, key)}")
                env[key] = self.value(default, env, position_of(declared, key), f"default of `{key}`")
        out = self.body(definition["body"], child, source[0])
        if "output" in definition:
            ref = self.value(definition["output"], env, definition.where("output"), "output")
            out = self.lookup(child, ref, definition.where("output"))
        return out

    def join(self, name, node, scope, source, pos) -> str:
        kind = next(k for k in self.kinds if k in node)
        start = source[0]
        branches = node[kind]
        if len(branches) < 2:
            self.fail("E0305", f"`{kind}:` joins two or more branches, `{scope.prefix}{name}` has {len(branches)}",
                      node.where(kind), scope, "a single branch needs no join: write its nodes in the chain")
        ends = []
        for branch in branches:
            if not branch:  # an empty branch is the identity: the shortcut of a residual
                ends.append(start)
                continue
            end = self.body(branch, scope, start)
            if end != start:  # a branch whose every node is switched off by `when:` drops out
                ends.append(end)
        if not ends:
            self.fail("E0305", f"every branch of `{scope.prefix}{name}` is switched off by its `when:`",
                      node.where(kind), scope, "keep one branch on, or switch the join itself off")
        if len(ends) == 1:  # one branch left: it is the join's value (MobileNet's optional shortcut)
            return ends[0]
        op = REGISTRY[kind]
        args = {}
        for key, raw in node.items():
            if key in self.reserved:
                continue
            if key not in op.args:
                self.fail("E0303", f"`{kind}:` has no argument `{key}`", node.key_pos.get(key, pos), scope,
                          did_you_mean(key, op.args) or f"it takes: {', '.join(op.args) or 'none'}")
            args[key] = self.value(raw, scope.env, node.where(key), f"`{key}`")
        try:
            normalised = op.normalise(args)
        except OpError as exc:
            self.fail(exc.code, exc.message, node.where(exc.arg) if exc.arg in node else pos, scope, exc.hint)
        return self.add_node(scope, name, kind, normalised, ends, pos, node.value_pos)

    # -- references -----------------------------------------------------------
    def lookup(self, scope: _Scope, ref: str, pos) -> str:
        """The node a `from:` reference names. The rule: first a name of the scope that
        writes the reference (or a dotted path into one of its blocks and seqs:
        `AuxLogits.fc`), then a fully qualified name from the top of the graph
        (`layer1.0.relu`, `Mixed_6e`). Errors name the whole reference and are reported
        in the scope that wrote it."""
        if not isinstance(ref, str):
            self.fail("E0305", f"`from:` needs a node name, got {ref!r}", pos, scope)
        if ref == _SELF_INPUT:
            return scope.input
        if ref == INPUT:
            return ref
        parts = ref.split(".")
        found, missed = self._walk(scope, parts)
        if found is None and scope is not self.root:
            found, _ = self._walk(self.root, parts)
        if found is not None:
            return found
        here, part = missed
        if part in here.switched_off:
            self.fail("E0305", f"`{ref}` is switched off by its `when:`", pos, scope,
                      f"its condition is at {here.switched_off[part]}")
        candidates = list(here.names) + ([_SELF_INPUT] if here is scope else [])
        inside = f" (no `{part}` in `{here.prefix.rstrip('.')}`)" if here is not scope else ""
        hint = did_you_mean(part, candidates) or f"names there: {', '.join(_first(candidates)) or 'none'}"
        if scope is not self.root:
            hint += "; a node of another block is named in full from the top, as in `layer1.0.relu`"
        self.fail("E0305", f"unknown input `{ref}`{inside}", pos, scope, hint)

    @staticmethod
    def _walk(scope: _Scope, parts: list):
        """(the node `parts` names from `scope`, None), or (None, (scope, part) where the walk stopped)."""
        here = scope
        for index, part in enumerate(parts):
            if index == len(parts) - 1 and part in here.names:
                return here.names[part], None
            if index < len(parts) - 1 and part in here.children:
                here = here.children[part]
                continue
            return None, (here, part)
        return None, (here, parts[-1])

    def settle(self, target):
        """A node name for what may still be a reference (to a reference...)."""
        seen = 0
        while isinstance(target, _Ref):
            seen += 1
            if seen > MAX_NODES:
                raise error("E0307", f"`from: {target.name}` refers to itself", target.pos)
            target = self.lookup(target.scope, target.name, target.pos)
        return target

    def resolve_pending(self) -> None:
        for qualified, index, ref in self.pending:
            self.nodes[qualified]["inputs"][index] = self.recorded(lambda: self.settle(ref)) or BROKEN
        self.pending.clear()

    def outputs(self, root, last) -> list:
        declared = self.doc.get("outputs")
        if not declared:
            return [Output("output", last, False, self.doc.get("graph").pos if hasattr(self.doc.get("graph"), "pos") else None)]
        outputs = []
        for name, raw in declared.items():
            pos = position_of(declared, name)
            spec = raw if isinstance(raw, dict) else make_map({"from": raw}, pos)
            if "when" in spec and not self.flag(spec, "when", root.env, root):
                continue
            ref = self.value(spec["from"], root.env, spec.where("from"), "from")
            train_only = "train_only" in spec and self.flag(spec, "train_only", root.env, root)
            outputs.append(Output(name, self.settle(self.lookup(root, ref, spec.where("from"))), train_only, pos))
        if not any(not o.train_only for o in outputs):
            what = "is switched off or train_only" if outputs else "is switched off by its `when:`"
            raise error("E0314", f"no output is left for eval mode: every output {what}",
                        position_of(self.doc, "outputs"), "keep at least one output on in eval mode")
        return outputs


@dataclass(frozen=True)
class _Ref:
    name: str
    pos: Position
    scope: _Scope


def _first(names: list, count: int = 12) -> list:
    """At most `count` names, for a hint that stays one line however large the scope."""
    return names if len(names) <= count else names[:count] + [f"... ({len(names) - count} more)"]


def _sound_part(input_shape, nodes: dict) -> Graph | None:
    """The nodes untouched by an expansion error, so shape checks can still run on them."""
    import networkx as nx

    dag = to_networkx(nodes)
    if not nx.is_directed_acyclic_graph(dag):
        return None
    sound = {}
    for name in nx.topological_sort(dag):
        node = nodes.get(name)
        if node is not None and all(src == INPUT or src in sound for src in node.inputs):
            sound[name] = node
    return Graph(tuple(input_shape), MappingProxyType(sound), ())


def _with_keys(source: SourceMap, items: dict, extra: SourceMap | None = None) -> SourceMap:
    """A node mapping holding `items`, with the positions of `source` (and `extra`)."""
    out = make_map(items, source.pos)
    out.key_pos.update(source.key_pos)
    out.value_pos.update(source.value_pos)
    if extra is not None:
        out.key_pos.update(extra.key_pos)
        out.value_pos.update(extra.value_pos)
    return out

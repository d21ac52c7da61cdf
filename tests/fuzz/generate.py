"""Generating the graph of a valid spec: bodies of nodes (primitive ops come from
`primitives`), joins (concatenations, residual and plain additions, `from:` skips) whose
branches are fitted to one another, and namespaces (`seq`, blocks with arguments,
`repeat` with `at:` and `names:`). Every node is tried on the model before it is kept;
what the model refuses is replaced by something plainer."""
from __future__ import annotations

from .model import E, BlockDef, Body, Node, Scope, ev, name_ref, visible
from .primitives import Primitives


def node_stem(node: Node) -> str:
    """How the generator names a node of this kind: `conv3`, `res2`, `b1`..."""
    if node.kind == "op":
        return {"conv": "conv", "bn": "bn", "linear": "fc", "project": "downsample"}.get(node.op, node.op[:4])
    return {"block": "b", "seq": "s", "concat": "cat", "add": "res"}[node.kind]


class Gen(Primitives):
    # -- bodies ------------------------------------------------------------------------
    def body(self, scope: Scope, cur, start_ref, n_items, depth, style=None, name_items=False,
             template=None, start_cond=False):
        """A body of about n_items nodes; returns (Body, out shape, last ref, last conditional)."""
        body = Body([], style or self.weighted([(4, "map"), (1, "list")]))
        ref, conditional = start_ref, start_cond
        for index in range(n_items):
            if self.budget <= 0:
                break
            node = self.item(scope, cur, ref, conditional, depth, template)
            if body.style == "map":
                key = name = self.fresh(node_stem(node), scope)
            else:
                key = None
                if name_items:
                    name = self.fresh(node_stem(node), scope)
                    node.name = name
                else:
                    name = str(index)
                    if name in scope.names or name in scope.children or name in scope.switched:
                        name = self.fresh(node_stem(node), scope)
                        node.name = name
            if body.style == "list" and node.name is not None:
                node.shorthand = False  # a list value has no room for `name:`
            when_off = node.when is not None and not ev(node.when, scope.env)
            if self.trial(name, node, scope, cur) is None:  # the model refuses: an activation instead
                fallback = Node("op", op="relu", flow=True)
                fallback.name = node.name
                node, when_off = fallback, False
            cur = self.commit(name, node, scope, cur)
            body.items.append((key, node))
            if not when_off:
                ref, conditional = name, node.when is not None
            self.budget -= 1
        if not body.items:
            cur, ref = self.append(body, scope, cur, Node("op", op="identity", flow=True), stem="id")
            conditional = False
        return body, cur, ref, conditional

    def item(self, scope, cur, ref, conditional, depth, template):
        if len(cur) == 1:
            return self.item1d(scope, cur, ref, conditional, depth)
        options = [(6, "conv"), (3, "bn"), (3, "act"), (3, "pool"), (1, "adaptive"), (1, "dropout"),
                   (1, "identity")]
        if depth < 3 and self.budget > 3:
            options += [(3, "concat"), (3, "residual"), (1, "add"), (2, "seq"), (3, "block"), (2, "repeat")]
        options += [(1, "skip")]
        kind = self.weighted(options)
        env = scope.env
        if kind == "conv":
            node = self.conv(env, cur, template)
        elif kind == "pool":
            node = self.pool(env, cur, template)
        elif kind == "adaptive":
            out = self.pick([1, 2, 3, [1, 2], [cur[1], cur[2]]])
            node = Node("op", op=self.pick(["adaptive_avgpool", "adaptive_maxpool"]), flow=True,
                        args={"out": out} if out != 1 or self.chance(0.5) else {})
        elif kind == "residual":
            node = self.residual(scope, cur, ref, conditional, depth)
        elif kind == "seq":
            node = self.seq(scope, cur, depth)
        elif kind == "block":
            node = self.block_call(scope, cur, depth)
        elif kind == "repeat":
            node = self.repeated(scope, cur, depth, template)
        elif kind == "skip":
            node = self.skip(scope, cur, ref, conditional)
        else:
            node = self.either_rank(kind, scope, cur, ref, conditional, depth)
        if node is None:
            node = self.activation()
        if node.when is None and not node.shorthand and self.chance(0.12):
            node.when = self.condition(env)
        if node.src is None and not node.shorthand and not conditional and self.chance(0.08):
            node.src = ref  # `from:` naming the previous node: the default, written out
        if not node.shorthand and self.chance(0.05):
            node.doc = "fuzz: " + node.kind
        if not node.shorthand and node.kind != "concat" and self.chance(0.06):
            node.frozen = self.condition(env) if self.chance(0.3) else True
        return node

    def item1d(self, scope, cur, ref, conditional, depth):
        options = [(5, "linear"), (2, "bn"), (3, "act"), (2, "dropout"), (1, "identity"), (1, "flatten")]
        if depth < 3 and self.budget > 3:
            options += [(2, "concat"), (2, "add")]
        kind = self.weighted(options)
        if kind == "linear":
            node = self.linear(scope.env)
        elif kind == "flatten":
            node = Node("op", op="flatten", flow=True)
        else:
            node = self.either_rank(kind, scope, cur, ref, conditional, depth)
        if node.when is None and self.chance(0.1):
            node.when = self.condition(scope.env)
        return node

    def either_rank(self, kind, scope, cur, ref, conditional, depth):
        """The kinds of node that take a (C, H, W) input and a flat one alike."""
        if kind == "bn":
            return self.bn()
        if kind == "act":
            return self.activation(p_flow=0.8)
        if kind == "dropout":
            return self.dropout(scope.env)
        if kind == "identity":
            return Node("op", op="identity", flow=True)
        if kind == "concat":
            return self.concat(scope, cur, ref, depth, conditional)
        return self.add_many(scope, cur, ref, depth, conditional)

    # -- joins ---------------------------------------------------------------------------
    # Branch nodes are siblings of the join, so each branch is generated in a copy of the
    # join's scope (it sees the names before the join, not those of discarded attempts).
    def _branch(self, scope, cur, start_ref, depth, n_max=3, start_cond=False):
        bscope = scope.clone()
        style = "list" if self.chance(0.25) else "map"
        body, end, last, last_cond = self.body(bscope, cur, start_ref, self.int(1, n_max), depth + 1,
                                               style=style, name_items=True, start_cond=start_cond)
        return bscope, body, end, last, last_cond

    def append(self, body: Body, scope, cur, node, stem=None):
        """Adds a node at the end of a body; (its output shape, its name)."""
        name = self.fresh(stem or node_stem(node), scope)
        if body.style == "list":
            node.name = name
        cur = self.commit(name, node, scope, cur)
        body.items.append((name if body.style == "map" else None, node))
        return cur, name

    def _fits(self, end, size, channels=None) -> list:
        """The nodes that bring a (C, H, W) branch end to the spatial `size` (H, W), then
        to `channels` (None: any)."""
        fixes = []
        if end[1:] != tuple(size):
            fixes.append(self.fix_spatial(*size))
        if channels is not None and end[0] != channels:
            fixes.append(Node("op", op="conv", flow=True, args={"out": channels, "k": 1}))
        return fixes

    def concat(self, scope, cur, ref, depth, conditional=False):
        branches, ends = [], []
        n = self.int(2, 3)
        if len(cur) == 1:
            dim, flatten_all = 1, False
        else:
            flatten_all = self.chance(0.15)
            dim = 1 if flatten_all else self.weighted([(8, 1), (1, 2), (1, 3)])
        target = None
        for _ in range(n):
            if self.chance(0.15):  # the identity branch (DenseNet's)
                bscope, body, end = scope.clone(), None, cur
            else:
                bscope, body, end, _, _ = self._branch(scope, cur, ref, depth, start_cond=conditional)
                if len(cur) == 3 and len(end) == 1 and not flatten_all:
                    bscope, body, end = scope.clone(), None, cur  # cannot join (C, H, W) ones
            if flatten_all:
                if body is None:
                    body = Body([], "map")
                if len(end) == 3:
                    end = self.append(body, bscope, end, Node("op", op="flatten", flow=True))[0]
                if self.chance(0.5):  # an activation right after the flatten
                    end = self.append(body, bscope, end, self.activation())[0]
            elif target is not None and len(target) == 3:
                if dim == 1:  # the channels add up; the rest must match
                    fixes = self._fits(end, target[1:])
                elif dim == 2:
                    fixes = self._fits(end, (end[1], target[2]), target[0])
                else:
                    fixes = self._fits(end, (target[1], end[2]), target[0])
                if fixes and body is None:
                    body = Body([], "map")
                for fix in fixes:
                    end = self.append(body, bscope, end, fix)[0]
            branches.append(body)
            ends.append(end)
            if target is None:
                target = end
        node = Node("concat", branches=branches, empty=self.pick(["{}", "~"]), flow=False)
        if dim != 1 or self.chance(0.15):
            node.dim = dim
        return node

    def residual(self, scope, cur, ref, conditional, depth):
        """add: [body, {} or project]; the README's residual block."""
        bscope, body, end, last, last_cond = self._branch(scope, cur, ref, depth, n_max=4,
                                                          start_cond=conditional)
        C, H, W = cur
        if len(end) != 3:
            return None
        projectable = (H % end[1] == 0 and W % end[2] == 0 and H // end[1] == W // end[2])
        if not projectable:
            s = self.pick([d for d in (1, 2, 3, 4) if H % d == 0 and W % d == 0])
            end, last = self.append(body, bscope, end, self.fix_spatial(H // s, W // s))
            last_cond = False
        if end == cur and self.chance(0.7):
            shortcut = None
        elif conditional or last_cond:
            # the `from:` of a projection must not name a switched-off node: fit the body instead
            for fix in self._fits(end, (H, W), C):
                end, last = self.append(body, bscope, end, fix)
            shortcut = None
        else:
            args = {}
            if self.chance(0.2):
                args["eps"] = 0.001
            if self.chance(0.2):
                args["bias"] = self.chance(0.5)
            proj = Node("op", op="project", args=args, src=[ref, last], flow=self.chance(0.7))
            shortcut = Body([(self.fresh("downsample", scope), proj)], "map", late=True)
        branches = [body, shortcut]
        if self.chance(0.3):
            branches.reverse()
        return Node("add", branches=branches, empty=self.pick(["{}", "~"]))

    def add_many(self, scope, cur, ref, depth, conditional=False):
        """add: [b1, b2, ...] whose ends are fitted to the first branch's shape."""
        n = self.int(2, 3)
        branches, target = [], None
        for _ in range(n):
            bscope, body, end, _, _ = self._branch(scope, cur, ref, depth, n_max=2, start_cond=conditional)
            if len(end) != len(cur):
                return None
            if target is None:
                target = end
            elif len(end) == 3:
                for fix in self._fits(end, target[1:], target[0]):
                    end = self.append(body, bscope, end, fix)[0]
            elif end != target:
                end = self.append(body, bscope, end, Node("op", op="linear", flow=True,
                                                           args={"out": target[0]}))[0]
            branches.append(body)
        if target == cur and self.chance(0.3):
            branches.insert(self.int(0, len(branches)), None)
        return Node("add", branches=branches, empty=self.pick(["{}", "~"]))

    def skip(self, scope, cur, ref, conditional):
        """A primitive `op: add` or `op: concat` with `from:` naming earlier nodes."""
        if ref is None or conditional:
            return None
        known = dict(visible(scope))
        if len(scope.input) == 3 and ref != "in":
            known["in"] = scope.input
        candidates = sorted(n for n, s in known.items() if n != ref and len(s) == 3 and s[1:] == cur[1:])
        if not candidates:
            return None
        other = self.pick(candidates)
        other_shape = known[other]
        srcs = [ref, other] if self.chance(0.5) else [other, ref]
        if other_shape == cur and self.chance(0.5):
            return Node("op", op="add", src=srcs, flow=True)
        return Node("op", op="concat", src=srcs, flow=True)

    # -- namespaces: seq, blocks, repeat ------------------------------------------------
    def seq(self, scope, cur, depth):
        child = Scope("?", scope.env, cur)
        body, _, _, _ = self.body(child, cur, "in", self.int(1, 3), depth + 1)
        node = Node("seq", body=body)
        if body.style == "list" and self.chance(0.5) and all(n.name is None for _, n in body.items):
            node.shorthand = True
        return node

    def new_block(self, scope, cur, depth):
        name = self.fresh("blk")
        decl, values = {"out": None}, {}
        raw_out, values["out"] = self.int_value(scope.env, 1, 16)
        call_args = {"out": raw_out}
        if self.chance(0.5):
            decl["stride"] = 1
            values["stride"] = self.pick([1, 2])
            if values["stride"] != 1 or self.chance(0.3):
                call_args["stride"] = values["stride"]
        if self.chance(0.4):
            decl["k"] = self.pick([3, 1, 5])
            values["k"] = self.pick([1, 3, 5])
            if values["k"] != decl["k"] or self.chance(0.3):
                call_args["k"] = values["k"]
        if self.chance(0.4):
            decl["act"] = True
            values["act"] = self.chance(0.7)
            if not values["act"] or self.chance(0.3):
                call_args["act"] = values["act"]
        env = {**self.file_env, **values}
        child = Scope("?", env, cur)
        body, _, _, _ = self.body(child, cur, "in", self.int(1, 4), depth + 1, template=True)
        self.blocks[name] = BlockDef(decl, body)
        return Node("block", block=name, args=call_args, flow=self.chance(0.6))

    def reuse_block_args(self, name, scope):
        definition = self.blocks[name]
        args = {}
        for key, default in definition.args.items():
            if default is None or self.chance(0.5):
                if key == "out":
                    args[key] = self.int_value(scope.env, 1, 16)[0]
                elif key == "stride":
                    args[key] = self.pick([1, 2])
                elif key == "k":
                    args[key] = self.pick([1, 3, 5])
                else:
                    args[key] = self.condition(scope.env) if self.chance(0.3) else self.chance(0.5)
        return args

    def block_call(self, scope, cur, depth):
        usable = sorted(self.blocks)
        if usable and self.chance(0.5):
            name = self.pick(usable)
            node = Node("block", block=name, args=self.reuse_block_args(name, scope), flow=self.chance(0.6))
            if self.trial("probe", node, scope, cur) is None:
                return None
        else:
            node = self.new_block(scope, cur, depth)
        if self.want_unit and "unit" not in self.file_env and isinstance(node.block, str):
            self.file_env["unit"] = node.block  # a file argument naming a block: `block: $unit`
        unit = [k for k, v in self.file_env.items() if v == node.block]
        if unit and self.chance(0.5):
            node.block = name_ref(unit[0], quote=self.chance(0.5))
        return node

    def repeated(self, scope, cur, depth, template):
        env = scope.env
        choice = self.weighted([(3, "op"), (3, "block"), (1, "seq")])
        if choice == "op":
            node = self.conv(env, cur, template) if self.chance(0.6) else self.bn()
        elif choice == "block":
            node = self.block_call(scope, cur, depth)
            if node is None:
                return None
            if "out" in node.args and self.chance(0.3):  # widths that grow with the copy index
                c = self.int(0, 2)
                node.args["out"] = E(f"${{{ev(node.args['out'], env)} + i * {c}}}",
                                     lambda e, v=ev(node.args["out"], env), c=c: v + e["i"] * c)
        else:
            node = self.seq(scope, cur, depth)
            node.shorthand = False
        counts = [self.int(0, 3)]
        if "depth" in env:
            counts.append(name_ref("depth", quote=self.chance(0.5)))
        if "layers" in env:
            j = self.int(0, len(env["layers"]) - 1)
            counts.append(E(f"${{layers[{j}]}}", lambda e, j=j: e["layers"][j]))
        raw = self.pick(counts)
        count = ev(raw, env)
        node.repeat = raw
        node.flow = node.flow and self.chance(0.5)
        if count > 0 and node.kind in ("op", "block") and self.chance(0.5):
            overrides = {}
            keys = [0, -1, count - 1] if count > 1 else [0, -1]
            key = self.pick(keys)
            if node.kind == "op" and node.op == "conv":
                overrides[key] = {"stride": 2} if self.chance(0.5) else {"out": self.int(1, 12)}
            elif node.kind == "op":
                overrides[key] = {"eps": 0.001}
            else:
                decl = self.blocks[ev(node.block, self.file_env)].args
                if "stride" in decl:
                    overrides[key] = {"stride": 2}
                else:
                    overrides[key] = {"out": self.int_value({**env, "i": 0}, 1, 12)[0]}
            node.at = overrides
        if self.chance(0.1) and count > 0:
            stem = self.fresh("u", scope) + "_"
            node.names = E(f"{stem}${{i}}", lambda e, s=stem: f"{s}{e['i']}", quote=self.chance(0.5))
        if self.trial("probe", node, scope, cur) is None:
            node.at = None
            if self.trial("probe", node, scope, cur) is None:
                node.repeat, node.names = None, None
        return node


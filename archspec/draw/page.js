// archspec draw: the interactive page. Draws the network top-down from the JSON that
// archspec wrote into this page; blocks fold and unfold on click, one level at a time.
// Each open block is laid out on its own as a layered graph (longest-path layers,
// barycentre ordering, compacted x), so a block's children stay inside its box and
// the edges that enter and leave it meet its border where its parent's edges do.
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("archspec-data").textContent);
  const items = data.items;
  const SVG = "http://www.w3.org/2000/svg";
  const FONT = '12px system-ui, -apple-system, "Segoe UI", "DejaVu Sans", Helvetica, Arial, sans-serif';
  const LINE = 15, PAD_X = 9, PAD_Y = 6, GAP_X = 16, GAP_Y = 28, INSET = 12, HEAD = 2 * LINE + 10;
  const ROOT = 0;
  const open = new Set([ROOT]);
  const notes = document.getElementById("notes");
  const measure = document.createElement("canvas").getContext("2d");

  const fmt = (n) => n.toLocaleString("en-US");
  function width(text, bold) {
    measure.font = (bold ? "bold " : "") + FONT;
    return measure.measureText(text).width;
  }

  // ---- what each box says --------------------------------------------------------
  function figures(it) {
    const parts = [];
    if (it.params || it.children) parts.push(fmt(it.params) + " params" + (it.frozen && it.params ? " (frozen)" : ""));
    if (it.macs || it.children) parts.push(fmt(it.macs) + " MACs");
    return parts.join(" · ");
  }
  function titleParts(it) {  // [bold part, plain part]
    if (it.kind === "input") return ["input", ""];
    if (it.kind === "output") return [it.label === "output" ? "output" : "output " + it.label, ""];
    return [it.label, it.label === it.kind ? "" : ": " + it.kind];
  }
  function boxLines(it) {
    const lines = [it.shape];
    const f = figures(it);
    if (f) lines.push(f);
    if (it.train) lines.push("training only");
    return lines;
  }
  function tooltip(it) {
    const where = it.kind === "output" ? "output " + it.label : it.name;
    const what = it.children ? it.kind + ", " + countLeaves(it) + " nodes" : it.detail || it.kind;
    return where + " (" + what + ")\n" + it.shape + (figures(it) ? "\n" + figures(it) : "")
      + (it.train ? "\ncomputed in training only" : "");
  }
  function countLeaves(it) {
    return it.children ? it.children.reduce((n, c) => n + countLeaves(items[c]), 0) : 1;
  }

  // ---- edges, lifted to each block: between its children, in at its top, out at its bottom
  function chain(id) {
    const ids = [];
    for (let i = id; i !== -1; i = items[i].parent) ids.push(i);
    return ids.reverse();
  }
  const levels = new Map();
  function level(id) {
    if (!levels.has(id)) levels.set(id, { inner: new Map(), entry: new Set(), exit: new Set() });
    return levels.get(id);
  }
  for (const [s, d] of data.edges) {
    const cs = chain(s), cd = chain(d);
    let k = 0;
    while (cs[k] === cd[k]) k++;
    level(cs[k - 1]).inner.set(cs[k] + ">" + cd[k], [cs[k], cd[k]]);
    for (let j = k; j < cs.length - 1; j++) level(cs[j]).exit.add(cs[j + 1]);
    for (let j = k; j < cd.length - 1; j++) level(cd[j]).entry.add(cd[j + 1]);
  }

  // ---- layout ----------------------------------------------------------------------
  function unit(id) {
    const it = items[id];
    if (it.children && open.has(id)) return openBlock(id);
    const [bold, plain] = titleParts(it);
    const lines = boxLines(it);
    const stack = it.children ? 4 : 0;  // a folded block is drawn as a small stack of cards
    const w = Math.ceil(Math.max(width(bold, true) + width(plain), ...lines.map((l) => width(l)))) + 2 * PAD_X + stack;
    const h = (lines.length + 1) * LINE + 2 * PAD_Y + stack;
    return { id, w, h, inX: w / 2, outX: w / 2, open: false };
  }

  function openBlock(id) {
    const it = items[id], lv = levels.get(id) || { inner: new Map(), entry: new Set(), exit: new Set() };
    const g = layered(it.children.map(unit), [...lv.inner.values()], lv.entry, lv.exit);
    if (id === ROOT) return { id, w: g.w, h: g.h, dx: 0, dy: 0, g, open: true, inX: 0, outX: 0 };
    const [bold, plain] = titleParts(it);
    const headW = Math.max(width("▾ " + bold, true) + width(plain), width(headFigures(it))) + 2 * INSET;
    const w = Math.ceil(Math.max(g.w + 2 * INSET, headW));
    const dx = (w - g.w) / 2;
    return { id, w, h: HEAD + g.h + INSET, dx, dy: HEAD, g, open: true,
             inX: dx + g.inX, outX: dx + g.outX };
  }
  function headFigures(it) {
    return it.shape + " · " + figures(it) + (it.train ? " · training only" : "");
  }

  // Lays out units (child boxes) with edges between them; `entry`/`exit` name the
  // children fed from outside the block / feeding it, joined to ports IN and OUT.
  function layered(units, inner, entry, exit) {
    const nodes = units.map((u, i) => ({ ...u, kind: "unit", key: i }));
    const at = new Map(units.map((u, i) => [u.id, i]));
    const IN = entry.size ? nodes.push({ kind: "in", w: 0, h: 0, inX: 0, outX: 0, key: -1 }) - 1 : -1;
    const OUT = exit.size ? nodes.push({ kind: "out", w: 0, h: 0, inX: 0, outX: 0, key: 1e9 }) - 1 : -1;
    const edges = [];
    for (const [a, b] of inner) edges.push({ s: at.get(a), t: at.get(b), from: items[a].name, to: items[b].name, train: items[b].train });
    const self = units.length ? items[items[units[0].id].parent].name : "";
    for (const c of entry) edges.push({ s: IN, t: at.get(c), from: self + ":in", to: items[c].name, train: items[c].train });
    for (const c of exit) edges.push({ s: at.get(c), t: OUT, from: items[c].name, to: self + ":out", train: items[c].train });

    // Order the nodes so every edge goes forward; an edge closing a cycle (possible
    // after lifting) is drawn but does not constrain the layers.
    const outs = nodes.map(() => []);
    edges.forEach((e) => outs[e.s].push(e));
    const state = nodes.map(() => 0), post = [];
    function visit(v) {
      state[v] = 1;
      for (const e of outs[v]) {
        if (state[e.t] === 1) { e.back = true; continue; }
        if (!state[e.t]) visit(e.t);
      }
      state[v] = 2;
      post.push(v);
    }
    if (IN >= 0) visit(IN);
    nodes.forEach((_, v) => { if (!state[v]) visit(v); });
    const topo = post.reverse();
    const fwd = edges.filter((e) => !e.back);
    const preds = nodes.map(() => []), succs = nodes.map(() => []);
    fwd.forEach((e) => { succs[e.s].push(e.t); preds[e.t].push(e.s); });

    // Layers: longest path from the top; then the chains that start at the block's
    // input move down to end just above their reader (a shortcut beside the body it
    // skips, Inception's short branches beside the long ones, as the papers draw them).
    const layer = nodes.map(() => 0);
    for (const v of topo) for (const t of succs[v]) layer[t] = Math.max(layer[t], layer[v] + 1);
    const fromIn = nodes.map(() => false);
    for (const v of topo) {
      fromIn[v] = nodes[v].kind === "unit" && preds[v].length > 0 && preds[v].every((p) => p === IN || fromIn[p]);
    }
    for (const v of [...topo].reverse()) {
      if (!fromIn[v]) continue;
      const below = Math.min(...succs[v].filter((t) => t !== OUT).map((t) => layer[t])) - 1;
      if (Number.isFinite(below) && below > layer[v]) layer[v] = below;
    }
    if (OUT >= 0) layer[OUT] = Math.max(0, ...nodes.map((n, v) => (v === OUT ? 0 : layer[v] + 1)));

    // Long edges pass through one zero-width dummy per layer they cross.
    const up = nodes.map(() => []), down = nodes.map(() => []);
    for (const e of edges) {
      e.path = [e.s];
      if (!e.back) {
        for (let l = layer[e.s] + 1; l < layer[e.t]; l++) {
          layer.push(l);
          // Start each layer in the written order: a dummy sits by the unit it serves.
          const key = e.s === IN ? nodes[e.t].key : nodes[e.s].key + 0.5;
          e.path.push(nodes.push({ kind: "dummy", w: 0, h: 0, inX: 0, outX: 0, key }) - 1);
          up.push([]); down.push([]);
        }
      }
      e.path.push(e.t);
      if (!e.back) for (let i = 1; i < e.path.length; i++) { down[e.path[i - 1]].push(e.path[i]); up[e.path[i]].push(e.path[i - 1]); }
    }
    const depth = Math.max(0, ...layer) + 1;
    let rows = Array.from({ length: depth }, () => []);
    nodes.forEach((n, v) => rows[layer[v]].push(v));
    rows.forEach((r) => r.sort((a, b) => nodes[a].key - nodes[b].key));

    // Order within layers: barycentre sweeps, keeping the order with fewest crossings.
    const rank = new Array(nodes.length);
    const setRanks = () => rows.forEach((r) => r.forEach((v, i) => { rank[v] = i; }));
    setRanks();
    let best = rows.map((r) => r.slice()), fewest = crossings(rows, down, rank);
    for (let pass = 0; pass < 8 && fewest > 0; pass++) {
      const goingDown = pass % 2 === 0;
      for (let k = 1; k < depth; k++) {
        const l = goingDown ? k : depth - 1 - k;
        const near = goingDown ? up : down;
        const bary = new Map(rows[l].map((v) => [v, near[v].length
          ? near[v].reduce((s, u) => s + rank[u], 0) / near[v].length : rank[v]]));
        rows[l].sort((a, b) => bary.get(a) - bary.get(b));
        rows[l].forEach((v, i) => { rank[v] = i; });
      }
      const count = crossings(rows, down, rank);
      if (count < fewest) { fewest = count; best = rows.map((r) => r.slice()); }
    }
    rows = best;
    setRanks();

    // y: layers top to bottom, boxes top-aligned; x: centres pulled towards their
    // neighbours' ports, never closer than a gap (the mean of a left-to-right and a
    // right-to-left placement keeps every gap of both).
    const top = [], tall = [];
    let y = 0;
    rows.forEach((r, l) => { top[l] = y; tall[l] = Math.max(0, ...r.map((v) => nodes[v].h)); y += tall[l] + GAP_Y; });
    const x = new Array(nodes.length);
    rows.forEach((r) => {
      let cx = 0;
      r.forEach((v, i) => { if (i) cx += gap(r[i - 1], v); x[v] = cx; });
      r.forEach((v) => { x[v] -= cx / 2; });
    });
    function gap(a, b) {  // edges passing a layer need less room than boxes
      const dummies = (nodes[a].kind === "dummy") + (nodes[b].kind === "dummy");
      return nodes[a].w / 2 + nodes[b].w / 2 + [GAP_X, 12, 7][dummies];
    }
    const bottomPort = (v) => x[v] - nodes[v].w / 2 + nodes[v].outX;
    const topPort = (v) => x[v] - nodes[v].w / 2 + nodes[v].inX;
    for (let pass = 0; pass < 16; pass++) {
      const goingDown = pass % 2 === 0;
      for (let k = 0; k < depth; k++) {
        const r = rows[goingDown ? k : depth - 1 - k];
        const want = r.map((v) => {
          const near = goingDown ? up[v] : down[v];
          if (!near.length) return x[v];
          const ports = near.map((u) => (goingDown ? bottomPort(u) : topPort(u)));
          const own = goingDown ? topPort(v) - x[v] : bottomPort(v) - x[v];
          return ports.reduce((s, p) => s + p, 0) / ports.length - own;
        });
        const a = want.slice(), b = want.slice();
        for (let i = 1; i < r.length; i++) a[i] = Math.max(a[i], a[i - 1] + gap(r[i - 1], r[i]));
        for (let i = r.length - 2; i >= 0; i--) b[i] = Math.min(b[i], b[i + 1] - gap(r[i], r[i + 1]));
        r.forEach((v, i) => { x[v] = (a[i] + b[i]) / 2; });
      }
    }
    const left = Math.min(0, ...nodes.map((n, v) => x[v] - n.w / 2));
    const right = Math.max(0, ...nodes.map((n, v) => x[v] + n.w / 2));
    const placed = units.map((u, i) => ({ unit: u, x: x[i] - u.w / 2 - left, y: top[layer[i]] }));
    const paths = edges.map((e) => {
      const pts = [];
      e.path.forEach((v, i) => {
        const n = nodes[v], l = layer[v];
        if (i === 0) pts.push([bottomPort(v) - left, top[l] + n.h]);
        else if (i === e.path.length - 1) pts.push([topPort(v) - left, top[l]]);
        else pts.push([x[v] - left, top[l]], [x[v] - left, top[l] + tall[l]]);
      });
      return { points: pts, from: e.from, to: e.to, train: e.train, enters: e.s === IN, leaves: e.t === OUT };
    });
    return { w: right - left, h: Math.max(0, y - GAP_Y), placed, paths,
             inX: IN >= 0 ? x[IN] - left : (right - left) / 2, outX: OUT >= 0 ? x[OUT] - left : (right - left) / 2 };
  }

  function crossings(rows, down, rank) {
    let count = 0;
    for (const r of rows) {
      const segs = [];
      for (const v of r) for (const t of down[v]) segs.push([rank[v], rank[t]]);
      for (let i = 0; i < segs.length; i++) for (let j = i + 1; j < segs.length; j++) {
        if ((segs[i][0] - segs[j][0]) * (segs[i][1] - segs[j][1]) < 0) count++;
      }
    }
    return count;
  }

  // ---- drawing -----------------------------------------------------------------------
  function el(name, attrs, parent) {
    const e = document.createElementNS(SVG, name);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }
  function text(parent, x, y, cls, parts) {
    const t = el("text", { x, y, class: cls }, parent);
    for (const [s, bold] of parts) {
      if (!s) continue;
      const span = el("tspan", bold ? { class: "b" } : {}, t);
      span.textContent = s;
    }
    return t;
  }
  function curve(points) {
    let d = "M" + points[0][0].toFixed(1) + "," + points[0][1].toFixed(1);
    for (let i = 1; i < points.length; i++) {
      const [px, py] = points[i - 1], [qx, qy] = points[i], m = (qy - py) / 2;
      d += " C" + px.toFixed(1) + "," + (py + m).toFixed(1) + " " + qx.toFixed(1) + "," + (qy - m).toFixed(1)
        + " " + qx.toFixed(1) + "," + qy.toFixed(1);
    }
    return d;
  }
  function classes(it, extra) {
    return extra + (it.train ? " train" : "") + (it.frozen ? " frozen" : "");
  }

  function drawUnit(u, parent, x, y) {
    const it = items[u.id];
    const g = el("g", { transform: "translate(" + x + "," + y + ")", "data-name": it.name || "(network)" }, parent);
    el("title", {}, g).textContent = tooltip(it);
    if (u.open) {
      g.setAttribute("class", classes(it, "block open depth" + Math.min(it.depth, 4)));
      if (u.id !== ROOT) el("rect", { class: "frame", width: u.w, height: u.h, rx: 8 }, g);
      const inner = el("g", { transform: "translate(" + u.dx + "," + u.dy + ")" }, g);
      for (const p of u.g.paths) {
        const pts = p.points.map((q) => q.slice());
        // What enters at the top border fans out below the title (the border's arrow
        // and the fan share one x); what leaves runs on to the bottom border.
        if (p.leaves) pts.push([pts[pts.length - 1][0], u.g.h + INSET]);
        el("path", { d: curve(pts), class: "edge" + (p.train ? " train" : ""), "data-from": p.from,
                     "data-to": p.to, "marker-end": p.leaves ? "" : "url(#arrow)" }, inner);
      }
      for (const c of u.g.placed) drawUnit(c.unit, inner, c.x, c.y);
      if (u.id !== ROOT) {  // after the edges, so its text stays legible over them
        const head = el("g", { class: "head", "data-toggle": it.name, role: "button", tabindex: 0 }, g);
        el("rect", { class: "hit", width: u.w, height: HEAD - 4 }, head);
        const [bold, plain] = titleParts(it);
        text(head, INSET, LINE + 2, "title", [["▾ " + bold, true], [plain, false]]);
        text(head, INSET, 2 * LINE + 3, "figures", [[headFigures(it), false]]);
      }
      return;
    }
    const kind = it.children ? "block closed" : it.kind === "input" || it.kind === "output" ? "io" : "node";
    g.setAttribute("class", classes(it, kind));
    if (it.children) {
      g.setAttribute("data-toggle", it.name);
      g.setAttribute("role", "button");
      g.setAttribute("tabindex", 0);
      el("rect", { class: "card", x: 4, y: 4, width: u.w - 4, height: u.h - 4, rx: 6 }, g);
    }
    const w = u.w - (it.children ? 4 : 0), h = u.h - (it.children ? 4 : 0);
    el("rect", { class: "box", width: w, height: h, rx: it.children ? 6 : 4 }, g);
    const [bold, plain] = titleParts(it);
    text(g, PAD_X, PAD_Y + LINE - 3, "title", [[(it.children ? "▸ " : "") + bold, true], [plain, false]]);
    boxLines(it).forEach((line, i) => text(g, PAD_X, PAD_Y + (i + 2) * LINE - 3, i ? "figures" : "shape", [[line, false]]));
  }

  const host = document.getElementById("drawing");
  function render() {
    const root = unit(ROOT);
    const margin = 16;
    const svg = el("svg", { width: root.w + 2 * margin, height: root.h + 2 * margin, id: "network",
                            viewBox: -margin + " " + -margin + " " + (root.w + 2 * margin) + " " + (root.h + 2 * margin) });
    const defs = el("defs", {}, svg);
    const marker = el("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7,
                                  markerHeight: 7, orient: "auto-start-reverse" }, defs);
    el("path", { d: "M0,0 L10,5 L0,10 z", class: "arrowhead" }, marker);
    drawUnit(root, svg, 0, 0);
    host.replaceChildren(svg);
  }

  // ---- folding -------------------------------------------------------------------------
  function find(name) {
    return items.findIndex((it) => it.children && it.name === name);
  }
  function toggle(name) {
    const id = find(name);
    if (id <= 0) return false;
    if (open.has(id)) {  // folding forgets what was open inside
      for (const o of [...open]) if (chain(o).includes(id)) open.delete(o);
    } else {
      for (const a of chain(id)) if (items[a].children) open.add(a);
    }
    return true;
  }
  // Re-render keeping the clicked block where it was on screen.
  function toggleInPlace(name) {
    const before = host.querySelector('[data-name="' + CSS.escape(name) + '"]');
    const was = before ? before.getBoundingClientRect() : null;
    if (!toggle(name)) return;
    render();
    const after = host.querySelector('[data-name="' + CSS.escape(name) + '"]');
    if (was && after) {
      const now = after.getBoundingClientRect();
      window.scrollBy(now.left - was.left, now.top - was.top);
    }
  }
  function openToDepth(depth) {
    open.clear();
    items.forEach((it, id) => { if (it.children && it.depth < depth) open.add(id); });
  }
  host.addEventListener("click", (event) => {
    const target = event.target.closest("[data-toggle]");
    if (target) toggleInPlace(target.getAttribute("data-toggle"));
  });
  host.addEventListener("keydown", (event) => {
    const target = event.target.closest("[data-toggle]");
    if (target && (event.key === "Enter" || event.key === " ")) {
      event.preventDefault();
      toggleInPlace(target.getAttribute("data-toggle"));
    }
  });
  document.getElementById("fold-all").addEventListener("click", () => { openToDepth(1); render(); });
  document.getElementById("unfold-level").addEventListener("click", () => {
    const shown = items.map((it, id) => id).filter((id) => items[id].children && !open.has(id) && open.has(items[id].parent));
    shown.forEach((id) => open.add(id));
    render();
  });

  // The address may ask for a starting state, as clicks would make it:
  // page.html#depth=2&expand=Mixed_5b,Mixed_5b.branch1x1 (each name is clicked in turn).
  function fromAddress() {
    const asked = new URLSearchParams(location.hash.slice(1));
    openToDepth(asked.has("depth") ? Number(asked.get("depth")) || 1 : data.depth);
    render();
    const missing = [];
    for (const name of (asked.get("expand") || "").split(",").filter(Boolean)) {
      const target = host.querySelector('[data-toggle="' + CSS.escape(name) + '"]');
      if (target) target.dispatchEvent(new MouseEvent("click", { bubbles: true }));
      else missing.push(name);
    }
    notes.textContent = missing.length ? "No block to click named " + missing.join(", ") + "." : "";
  }
  try {
    fromAddress();
    window.addEventListener("hashchange", fromAddress);
    document.body.setAttribute("data-ready", "1");
  } catch (err) {
    notes.textContent = "The page failed to draw: " + err;
    document.body.setAttribute("data-error", String(err));
    throw err;
  }
})();

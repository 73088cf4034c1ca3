"""The compact form of a Graph, for the bundle and the page: strings interned, shapes as small arrays,
and each distinct block (a group's content) stored once, with its instances naming only themselves.

A 720-block GPT stack is one block type used 720 times. Ids are not stored: an item's id is its
group's id prefix (`transform.id_prefix`) plus its local name, the way `transform.canonical` names them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from nnreport.graph.ir import DataEdge, Graph, Group, NodeKind, OpNode
from nnreport.graph.transform import id_prefix

NONE = -1


@dataclass(frozen=True)
class PackedGraph:
    """`strings`, `shapes` are the interning tables; `records` the distinct ops; `types` the distinct blocks.

    record: (op, kind, label, module, module_type, source, params, mult_adds, n_shapes, *shapes,
             n_dtypes, *dtypes, n_param_names, *param_names, *aux) — strings as indices; `module` is
             relative to the op's group module and param names to the op's module (see `_rel`).
    type:   (type, hash, params, mult_adds, ops, series, n_items, *items, *edges) — an item is
             (is_group, local name, record or type, name, relative module) (the last two only for
             groups, else -1); an edge is (slot, shape, n_source, *source path, n_target, *target path),
             paths of item indices from this block down to the op; `slot` orders a target's inputs.
    """

    strings: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    records: tuple[tuple[int, ...], ...]
    types: tuple[tuple[int, ...], ...]
    root: int
    capture: str
    capture_note: str
    batch: int


def _rel(path: str, base: str) -> str:
    """`path` relative to `base`: "." when equal, the rest after "base.", else "/" + path."""
    if not base:
        return path
    if path == base:
        return "."
    return path[len(base) + 1:] if path.startswith(base + ".") else "/" + path


def _unrel(rel: str, base: str) -> str:
    if not base:
        return rel
    if rel == ".":
        return base
    return rel[1:] if rel.startswith("/") else f"{base}.{rel}"


class _Packer:
    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.groups = {g.id: g for g in graph.groups}
        self.nodes = {n.id: n for n in graph.nodes}
        self.strings: dict[str, int] = {}
        self.shapes: dict[tuple[int, ...], int] = {}
        self.records: dict[tuple[int, ...], int] = {}
        self.types: dict[tuple[int, ...], int] = {}
        self.path: dict[str, tuple[str, tuple[int, ...]]] = {}  # node -> (group, item indices below it)
        self.slot: dict[int, int] = {}
        inputs: dict[str, int] = {}
        for k, e in enumerate(graph.edges):
            self.slot[k] = inputs.get(e.target, 0)
            inputs[e.target] = self.slot[k] + 1
        self.lca_edges: dict[str, list[int]] = {}

    def s(self, text: str) -> int:
        return self.strings.setdefault(text, len(self.strings))

    def shape(self, shape: tuple[int, ...]) -> int:
        return self.shapes.setdefault(tuple(shape), len(self.shapes))

    def record(self, n: OpNode, group_module: str) -> int:
        row = (self.s(n.op), self.s(n.kind), self.s(n.label), self.s(_rel(n.module, group_module)),
               self.s(n.module_type), self.s(n.source), n.params, n.mult_adds,
               len(n.shapes), *(self.shape(x) for x in n.shapes), len(n.dtypes), *(self.s(d) for d in n.dtypes),
               len(n.param_names), *(self.s(_rel(p, n.module)) for p in n.param_names), *(self.s(a) for a in n.aux))
        return self.records.setdefault(row, len(self.records))

    def local(self, item: str, parent: str) -> str:
        prefix = id_prefix(self.groups, parent)
        if not prefix:
            return item
        return item[len(prefix) + 1:] if item.startswith(prefix + ".") else "/" + item

    def locate(self) -> None:
        """Each edge goes to the block of the lowest group holding both ends."""
        chain: dict[str, list[str]] = {}
        for n in self.graph.nodes:
            gs, g = [], n.group
            while True:
                gs.append(g)
                if not g:
                    break
                g = self.groups[g].parent
            chain[n.id] = gs[::-1]
        for k, e in enumerate(self.graph.edges):
            a, b = chain[e.source], chain[e.target]
            common = 0
            while common < min(len(a), len(b)) and a[common] == b[common]:
                common += 1
            self.lca_edges.setdefault(a[common - 1], []).append(k)

    def block(self, gid: str) -> int:
        g = self.groups[gid]
        items: list[int] = []
        for i, child in enumerate(g.children):
            if child in self.groups:
                sub = self.groups[child]
                t = self.block(child)
                items += [1, self.s(self.local(child, gid)), t, self.s(sub.name), self.s(_rel(sub.module, g.module))]
            else:
                items += [0, self.s(self.local(child, gid)), self.record(self.nodes[child], g.module), NONE, NONE]
            self.path[child] = (gid, (i,))
        edges: list[int] = []
        for k in self.lca_edges.get(gid, []):
            e = self.graph.edges[k]
            src, dst = self.below(e.source, gid), self.below(e.target, gid)
            edges += [self.slot[k], self.shape(e.shape), len(src), *src, len(dst), *dst]
        row = (self.s(g.type), self.s(g.hash), g.params, g.mult_adds, g.ops, g.series, len(g.children), *items, *edges)
        return self.types.setdefault(row, len(self.types))

    def below(self, item: str, gid: str) -> list[int]:
        out: list[int] = []
        while True:
            parent, idx = self.path[item]
            out[:0] = idx
            if parent == gid:
                return out
            item = parent


def pack(graph: Graph) -> PackedGraph:
    """The compact form; `unpack(pack(g)) == g` for graphs named by `transform.canonical`."""
    p = _Packer(graph)
    p.locate()
    root = p.block("")
    return PackedGraph(tuple(p.strings), tuple(p.shapes), tuple(p.records), tuple(p.types), root,
                       graph.capture, graph.capture_note, graph.batch)


def _split(row: tuple[int, ...], at: int) -> tuple[tuple[int, ...], int]:
    n = row[at]
    return row[at + 1:at + 1 + n], at + 1 + n


def unpack(packed: PackedGraph) -> Graph:
    """The Graph back: groups in walk order (keys g0, g1, ...), ops in walk order, edges by target."""
    S, types = packed.strings, packed.types
    nodes: list[OpNode] = []
    groups: list[Group | None] = []  # in walk order: a group's slot is taken before its children's
    edges: list[tuple[int, DataEdge]] = []
    rank: dict[str, int] = {}
    kids: dict[str, list[str]] = {}

    def visit(t: int, gid: str, parent: str, name: str, module: str, prefix: str) -> list[str]:
        row = types[t]
        kind, count = S[row[0]], row[6]
        series = row[5]
        at = len(groups)
        groups.append(None)
        own = prefix if series else gid
        children: list[str] = []
        kids[gid] = children
        for i in range(count):
            is_group, local, ref, sub_name, sub_module = row[7 + 5 * i:12 + 5 * i]
            text = S[local]
            cid = text[1:] if text.startswith("/") else (f"{own}.{text}" if own else text)
            children.append(cid)
            if is_group:
                visit(ref, cid, gid, S[sub_name], _unrel(S[sub_module], module), own)
            else:
                rank[cid] = len(nodes)
                nodes.append(_op(packed, ref, cid, gid, module))
        groups[at] = Group(gid, f"g{at}", parent, name, kind, module, tuple(children), S[row[1]], row[2], row[3],
                           row[4], series)
        pos = 7 + 5 * count
        while pos < len(row):
            slot, shape = row[pos], packed.shapes[row[pos + 1]]
            src, pos = _split(row, pos + 2)
            dst, pos = _split(row, pos)
            a, b = _resolve(kids, gid, src), _resolve(kids, gid, dst)
            edges.append((slot, DataEdge(a, b, shape, _numel(shape))))
        return children

    visit(packed.root, "", "", S[types[packed.root][0]], "", "")
    order = sorted(edges, key=lambda e: (rank[e[1].target], e[0]))
    return Graph(tuple(nodes), tuple(e[1] for e in order), tuple(g for g in groups if g is not None),
                 "export" if packed.capture == "export" else "eager", packed.capture_note, packed.batch)


def _resolve(kids: dict[str, list[str]], gid: str, path: tuple[int, ...]) -> str:
    """The id of the op at `path` (item indices) below group `gid`."""
    item = gid
    for i in path:
        item = kids[item][i]
    return item


def _numel(shape: tuple[int, ...]) -> int:
    out = 1
    for d in shape:
        out *= d
    return out


def _op(packed: PackedGraph, ref: int, nid: str, group: str, group_module: str) -> OpNode:
    S, row = packed.strings, packed.records[ref]
    shapes, at = _split(row, 8)
    dtypes, at = _split(row, at)
    names, at = _split(row, at)
    module = _unrel(S[row[3]], group_module)
    return OpNode(nid, S[row[0]], cast(NodeKind, S[row[1]]), S[row[2]], group, module, S[row[4]],
                  tuple(packed.shapes[x] for x in shapes), tuple(S[d] for d in dtypes), S[row[5]], row[6],
                  tuple(_unrel(S[p], module) for p in names), row[7], tuple(S[a] for a in row[at:]))

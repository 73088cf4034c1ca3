"""From raw op records to a `Graph`: fold plumbing ops, build the module-call hierarchy, count
parameters and mult-adds, hash structure (Weisfeiler-Lehman) and collapse repeated siblings into series."""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from nnreport.graph.ir import DataEdge, Graph, Group, OpNode

if TYPE_CHECKING:
    from nnreport.graph.capture import RawGraph, RawOp

# Plumbing: shape, view, selection, copy, dtype and constant ops. They become annotations on their
# neighbour. Data ops with many inputs (cat, add) are never folded: they are the structure.
AUX_OPS = frozenset({
    "view", "reshape", "_unsafe_view", "flatten", "unflatten", "permute", "transpose", "t", "contiguous",
    "getitem", "unsqueeze", "squeeze", "expand", "expand_as", "clone", "detach", "to", "type", "type_as",
    "alias", "getattr", "select", "slice", "size", "view_as", "_assert_tensor_metadata", "lift_fresh_copy",
    "zeros", "ones", "full", "arange", "empty", "zeros_like", "ones_like", "full_like", "scalar_tensor",
    "tensor", "float", "int", "long", "bool", "_to_copy", "item",
})


@dataclass
class _Tree:
    parent: dict[str, str] = field(default_factory=dict)
    info: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (module path, type)
    children: dict[str, list[str]] = field(default_factory=lambda: {"": []})


def build_graph(raw: RawGraph, model_type: str) -> Graph:
    """Fold plumbing, build groups, compute statistics, hashes and series."""
    ops, edges, aux = _fold_aux(raw.ops)
    tree = _tree(ops)
    labels = _dissolve_single_op_groups(ops, tree)
    node_groups = {op.id: _innermost(op) for op in ops}
    for op in ops:
        node_groups[op.id] = labels.get(op.id, (node_groups[op.id],))[0]
    nodes = [_node(op, node_groups[op.id], tree, labels.get(op.id), aux.get(op.id, ()), raw.param_sizes) for op in ops]
    data_edges = [DataEdge(s, t, shape, math.prod(shape) if shape else 1) for s, t, shape in edges]
    groups = _groups(nodes, data_edges, tree, model_type, raw.param_sizes)
    nodes, data_edges, groups = canonical(nodes, data_edges, groups)
    return Graph(tuple(nodes), tuple(data_edges), tuple(groups), "export" if raw.capture == "export" else "eager",
                 raw.note, raw.batch)


def id_prefix(groups: dict[str, Group], gid: str) -> str:
    """The path that ids inside group `gid` start with: its id, or its parent's for a series group."""
    while gid and groups[gid].series:
        gid = groups[gid].parent
    return gid


def canonical(nodes: list[OpNode], edges: list[DataEdge], groups: list[Group]) -> tuple[
        list[OpNode], list[DataEdge], list[Group]]:
    """Name every op `<group path>.<name>` (so an op of `blocks.3` has an id starting `blocks.3.`), list
    the ops in the order a walk of the group tree meets them and the edges by target in that order.
    Repeated blocks then have equal relative ids and orders, which the page's compact format relies on."""
    by_group = {g.id: g for g in groups}
    by_node = {n.id: n for n in nodes}
    taken = set(by_group)
    rename: dict[str, str] = {}
    order: list[str] = []

    def walk(gid: str) -> None:
        prefix = id_prefix(by_group, gid)
        for child in by_group[gid].children:
            if child in by_group:
                walk(child)
                continue
            local = by_node[child].label.replace(",", "_") or by_node[child].op
            new, k = f"{prefix}.{local}" if prefix else local, 0
            while new in taken:
                k += 1
                new = f"{prefix}.{local}_{k}" if prefix else f"{local}_{k}"
            taken.add(new)
            rename[child] = new
            order.append(child)

    walk("")
    order += [n.id for n in nodes if n.id not in rename]  # unreachable: keep, named as they were
    rename.update({n: n for n in order if n not in rename})
    rank = {n: i for i, n in enumerate(order)}
    new_nodes = [replace(by_node[n], id=rename[n]) for n in order]
    ranked = sorted(range(len(edges)), key=lambda k: (rank[edges[k].target], k))
    new_edges = [replace(edges[k], source=rename[edges[k].source], target=rename[edges[k].target]) for k in ranked]
    new_groups = [replace(g, children=tuple(rename.get(c, c) for c in g.children)) for g in groups]
    return new_nodes, new_edges, new_groups


def _fold_aux(ops: list[RawOp]) -> tuple[list[RawOp], list[tuple[str, str, tuple[int, ...]]], dict[str, tuple[str, ...]]]:
    """Drop plumbing ops with at most one producer; their consumers link to the producer and list
    the dropped ops as an annotation (a sink's annotation goes to its producer)."""
    redirect: dict[str, str | None] = {}
    pending: dict[str, list[str]] = {}
    aux: dict[str, list[str]] = {}
    kept: list[RawOp] = []
    edges: list[tuple[str, str, tuple[int, ...]]] = []
    consumers: Counter[str] = Counter(src for op in ops for src, _ in op.inputs)
    for op in ops:
        sources = [(redirect.get(s, s), shape) for s, shape in op.inputs]
        inherited = [name for s, _ in op.inputs for name in pending.get(s, [])]
        producers = {s for s, _ in sources if s is not None}
        if op.kind == "op" and op.op in AUX_OPS and len(producers) <= 1:
            src = next(iter(producers), None)
            redirect[op.id] = src
            pending[op.id] = inherited + [op.op]
            if not consumers[op.id] and src is not None:
                aux.setdefault(src, []).extend(pending[op.id])
            continue
        kept.append(op)
        aux.setdefault(op.id, []).extend(inherited)
        seen: set[tuple[str, tuple[int, ...]]] = set()
        for s, shape in sources:
            if s is not None and (s, shape) not in seen:
                seen.add((s, shape))
                edges.append((s, op.id, shape))
    return kept, edges, {k: tuple(dict.fromkeys(v)) for k, v in aux.items() if v}


def _innermost(op: RawOp) -> str:
    return op.chain[-1][0] if op.chain else ""


def _tree(ops: list[RawOp]) -> _Tree:
    tree = _Tree()
    for op in ops:
        parent = ""
        for gid, path, kind in op.chain:
            if gid not in tree.parent:
                tree.parent[gid] = parent
                tree.info[gid] = (path, kind)
                tree.children[gid] = []
                tree.children[parent].append(gid)
            parent = gid
        tree.children[parent].append(op.id)
    return tree


def _dissolve_single_op_groups(ops: list[RawOp], tree: _Tree) -> dict[str, tuple[str, str, str, str]]:
    """A module call that holds a single op (a Conv2d) is drawn as that op, labelled by the module;
    empty calls vanish. Returns node id -> (group, name, module path, module type)."""
    labels: dict[str, tuple[str, str, str, str]] = {}
    is_node = {op.id for op in ops}
    for gid in sorted(tree.parent, key=lambda g: -_depth(tree, g)):
        kids = tree.children[gid]
        parent = tree.parent[gid]
        if len(kids) > 1:
            continue
        siblings = tree.children[parent]
        at = siblings.index(gid)
        siblings[at:at + 1] = kids
        if kids and kids[0] in is_node:
            path, kind = tree.info[gid]
            old = labels.get(kids[0])
            labels[kids[0]] = (parent, old[1] if old else _short(gid), old[2] if old else path, old[3] if old else kind)
        elif kids:
            tree.parent[kids[0]] = parent
        del tree.parent[gid], tree.children[gid]
    return labels


def _depth(tree: _Tree, gid: str) -> int:
    d = 0
    while gid:
        gid = tree.parent[gid]
        d += 1
    return d


def _short(gid: str) -> str:
    path, _, call = gid.partition("@")
    name = path.rsplit(".", 1)[-1]
    return f"{name} (call {int(call) + 1})" if call else name


def _node(op: RawOp, group: str, tree: _Tree, label: tuple[str, str, str, str] | None, aux: tuple[str, ...],
          sizes: dict[str, int]) -> OpNode:
    path, kind = (label[2], label[3]) if label else (op.chain[-1][1], op.chain[-1][2]) if op.chain else ("", "")
    name = label[1] if label else (op.label or op.op)
    params = sum(sizes[name] for name in op.params if name in sizes)  # buffers are listed, not counted
    return OpNode(op.id, op.op, op.kind, name, group, path, kind, op.shapes, op.dtypes, op.source, params,
                  tuple(op.params), mult_adds(op), aux)


def mult_adds(op: RawOp) -> int:
    """Multiply-accumulates of one op call from its shapes (the common layer ops; else 0)."""
    out = math.prod(op.shapes[0]) if op.shapes else 0
    weights = [s for s in op.params.values() if len(s) >= 2]
    name = op.op
    if name.startswith("conv") and weights:
        w = weights[0]
        return out * math.prod(w) // max(w[0], 1)
    if name in ("linear", "addmm") and weights:
        return out * weights[0][-1]
    if name in ("matmul", "mm", "bmm", "baddbmm", "addmm", "linear", "einsum") and op.inputs:
        first = op.inputs[0][1]
        return out * (first[-1] if first else 1)
    if name in ("lstm", "gru", "rnn_tanh", "rnn_relu") and op.shapes:
        tokens = out // max(op.shapes[0][-1], 1)
        return tokens * sum(math.prod(w) for w in weights)
    if name == "scaled_dot_product_attention" and len(op.inputs) >= 2:
        q, k = op.inputs[0][1], op.inputs[1][1]
        return 2 * math.prod(q) * (k[-2] if len(k) >= 2 else 1)
    if name == "multi_head_attention_forward" and op.inputs:
        q = op.inputs[0][1]
        tokens = math.prod(q[:-1]) if q else 0
        return tokens * sum(math.prod(w) for w in weights) + 2 * tokens * (q[0] if q else 0) * (q[-1] if q else 0)
    if "norm" in name and op.params:
        return out
    return 0


def _groups(nodes: list[OpNode], edges: list[DataEdge], tree: _Tree, model_type: str,
            sizes: dict[str, int]) -> list[Group]:
    by_id = {n.id: n for n in nodes}
    hashes = _wl_hashes(nodes, edges, tree)
    _series(tree, hashes, edges, by_id)
    order = ["", *(g for g in _walk(tree, "") if g in tree.parent)]
    groups = []
    for i, gid in enumerate(order):
        leaves = [by_id[n] for n in _leaves(tree, gid, by_id)]
        names = {p for n in leaves for p in n.param_names}
        path, kind = tree.info.get(gid, ("", model_type))
        series = len(tree.children[gid]) if kind == "series" else 0
        name = model_type if gid == "" else (f"{tree.info[tree.children[gid][0]][1]} ×{series}" if series else _short(gid))
        groups.append(Group(gid, f"g{i}", tree.parent.get(gid, ""), name, kind, path, tuple(tree.children[gid]),
                            hashes.get(gid, ""), sum(sizes.get(p, 0) for p in names),
                            sum(n.mult_adds for n in leaves), sum(1 for n in leaves if n.kind == "op"), series))
    return groups


def _walk(tree: _Tree, gid: str) -> list[str]:
    out = []
    for child in tree.children.get(gid, []):
        if child in tree.children:
            out.append(child)
            out.extend(_walk(tree, child))
    return out


def _leaves(tree: _Tree, gid: str, by_id: dict[str, OpNode]) -> list[str]:
    out = []
    for child in tree.children.get(gid, []):
        out.extend([child] if child in by_id else _leaves(tree, child, by_id))
    return out


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:10]


def _wl_hashes(nodes: list[OpNode], edges: list[DataEdge], tree: _Tree, rounds: int = 3) -> dict[str, str]:
    """Weisfeiler-Lehman hash of each group's subgraph over op names and output ranks."""
    by_id = {n.id: n for n in nodes}
    members_of = {gid: _leaves(tree, gid, by_id) for gid in tree.parent}
    holders: dict[str, set[str]] = {}  # leaf -> the groups that hold it
    for gid, leaves in members_of.items():
        for leaf in leaves:
            holders.setdefault(leaf, set()).add(gid)
    inner_of: dict[str, list[tuple[str, str]]] = {gid: [] for gid in tree.parent}
    for e in edges:  # an edge is inside every group that holds both its ends (one pass, not one per group)
        for gid in holders.get(e.source, set()) & holders.get(e.target, set()):
            inner_of[gid].append((e.source, e.target))
    out: dict[str, str] = {}
    for gid in tree.parent:
        members = members_of[gid]
        label = {n: f"{by_id[n].op}/{len(by_id[n].shapes[0]) if by_id[n].shapes else 0}" for n in members}
        for _ in range(rounds):
            ins: dict[str, list[str]] = {n: [] for n in members}
            outs: dict[str, list[str]] = {n: [] for n in members}
            for s, t in inner_of[gid]:
                outs[s].append(label[t])
                ins[t].append(label[s])
            label = {n: _digest(label[n] + "<" + ",".join(sorted(ins[n])) + ">" + ",".join(sorted(outs[n])))
                     for n in members}
        out[gid] = _digest(tree.info[gid][1] + ":" + ",".join(sorted(label.values())))
    return out


def _series(tree: _Tree, hashes: dict[str, str], edges: list[DataEdge], by_id: dict[str, OpNode]) -> None:
    """Runs of consecutive sibling groups with equal hashes, each feeding only the next one, become a
    series group ("BasicBlock ×4") whose members are the original calls."""
    for parent in list(tree.children):
        kids = tree.children[parent]
        links: _Links | None = None
        k = 0
        while k < len(kids):
            j, run = k, {kids[k]}
            while (j + 1 < len(kids) and kids[j] in tree.parent and kids[j + 1] in tree.parent
                   and hashes.get(kids[j]) == hashes.get(kids[j + 1])):
                links = links or _sibling_links(tree, kids, edges, by_id)
                if not links.extends(run, kids[j], kids[j + 1]):
                    break
                run.add(kids[j + 1])
                j += 1
            if j > k and ((j - k + 1) < len(kids) or j - k + 1 >= 3):
                members = kids[k:j + 1]
                sid = f"{members[0]}~{len(members)}"
                tree.parent[sid], tree.children[sid] = parent, members
                tree.info[sid] = (tree.info[members[0]][0], "series")
                hashes[sid] = _digest("series:" + hashes[members[0]])
                for member in members:
                    tree.parent[member] = sid
                kids[k:j + 1] = [sid]
            k += 1


@dataclass
class _Links:
    """Which sibling groups feed which (data edges between their ops), found in one pass over the edges."""

    ins: dict[str, set[str]]
    outs: dict[str, set[str]]

    def extends(self, run: set[str], last: str, new: str) -> bool:
        """A run whose members each feed only the next one stays so with `new` after `last`: `new` is fed
        by `last` and by no other member, and feeds none of them."""
        return self.ins.get(new, set()) & run == {last} and not self.outs.get(new, set()) & run


def _sibling_links(tree: _Tree, kids: list[str], edges: list[DataEdge], by_id: dict[str, OpNode]) -> _Links:
    owner = {leaf: kid for kid in kids if kid in tree.children for leaf in _leaves(tree, kid, by_id)}
    links = _Links({}, {})
    for e in edges:
        a, b = owner.get(e.source), owner.get(e.target)
        if a is not None and b is not None and a != b:
            links.ins.setdefault(b, set()).add(a)
            links.outs.setdefault(a, set()).add(b)
    return links

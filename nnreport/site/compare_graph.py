"""The compare page's graph section: model B's dataflow graph, once, with the groups and ops added or
changed since model A highlighted and A's removed ones listed (torch-free).

Items are matched by what they are, never by where they are: a group by its id (module path, plus "@k"
for later calls and "~n" for series), an op by (group, module path, op, k-th such op in that group),
inputs and outputs by label. A group is changed when its type, parameter count or structural (WL) hash
differs, or when anything inside it was added, changed or removed."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from nnreport.graph.drawing import all_groups, draw_view, shape_label

if TYPE_CHECKING:
    from nnreport.graph.ir import Graph, Group, OpNode, View
    from nnreport.graph.results import GraphResult

Status = Literal["same", "changed", "added"]
# Most boxes drawn: past this, only the outermost changed groups are opened.
MAX_BOXES = 400
MAX_REMOVED_SHOWN = 200


@dataclass(frozen=True)
class Mark:
    """How one drawn box of B's graph compares with A."""

    status: Status
    detail: str  # what changed, for the hover title ("" when unchanged)


@dataclass(frozen=True)
class Removed:
    """A group or op of A that B no longer has (so it is not in the drawing)."""

    kind: Literal["group", "op", "input", "output"]
    path: str  # module path (group id for groups)
    type: str
    detail: str
    outer: bool = True  # False inside a removed group (listed through that group)


@dataclass(frozen=True)
class GraphComparison:
    """The section's context. With `reason` set, nothing is drawn and the reason is the one-line note."""

    reason: str = ""
    view: View | None = None
    marks: dict[str, Mark] | None = None  # B's box id -> mark
    removed: tuple[Removed, ...] = ()  # the outermost removed items (a removed group stands for its contents)
    removed_total: int = 0
    groups: tuple[int, int, int] = (0, 0, 0)  # changed, added, removed groups (the model itself not counted)
    ops: tuple[int, int, int] = (0, 0, 0)  # changed, added, removed ops (inputs and outputs included)
    expanded: int = 0  # groups opened in the drawing because they contain changes
    capped: bool = False  # more changed groups than could be opened in one drawing

    @property
    def identical(self) -> bool:
        return not any(self.groups) and not any(self.ops)


def _node_keys(graph: Graph) -> dict[tuple[str, ...], OpNode]:
    """Each node under a key that names it by its place in the module tree, not by its position."""
    seen: dict[tuple[str, ...], int] = {}
    out: dict[tuple[str, ...], OpNode] = {}
    for n in graph.nodes:
        base = (n.kind, n.label) if n.kind != "op" else (n.kind, n.group, n.module, n.op)
        k = seen.get(base, 0)
        seen[base] = k + 1
        out[base + (str(k),)] = n
    return out


def _shapes(n: OpNode, batch: int) -> str:
    return ", ".join(shape_label(s, batch) for s in n.shapes)


def _node_detail(a: OpNode, b: OpNode, batch_a: int, batch_b: int) -> str:
    parts = []
    if a.module_type != b.module_type:
        parts.append(f"type {a.module_type or '–'} → {b.module_type or '–'}")
    if a.params != b.params:
        parts.append(f"params {a.params:,} → {b.params:,}")
    sa, sb = _shapes(a, batch_a), _shapes(b, batch_b)
    if sa != sb:
        parts.append(f"output {sa} → {sb}")
    if a.dtypes != b.dtypes:
        parts.append(f"dtype {', '.join(a.dtypes)} → {', '.join(b.dtypes)}")
    return "; ".join(parts)


def _group_detail(a: Group, b: Group) -> str:
    parts = []
    if a.type != b.type:
        parts.append(f"type {a.type} → {b.type}")
    if a.params != b.params:
        parts.append(f"params {a.params:,} → {b.params:,}")
    if a.hash != b.hash:
        parts.append("structure differs")
    return "; ".join(parts)


def _ancestors(graph: Graph, item_parent: str) -> Iterable[str]:
    parent = {g.id: g.parent for g in graph.groups}
    gid = item_parent
    while gid:
        yield gid
        gid = parent.get(gid, "")


def _depth(graph: Graph, gid: str) -> int:
    return sum(1 for _ in _ancestors(graph, gid))


def mark_graph(a: Graph, b: Graph) -> tuple[dict[str, Mark], tuple[Removed, ...], set[str]]:
    """Marks for every group and node of B, A's removed items, and B's groups that contain a change."""
    marks: dict[str, Mark] = {}
    removed: list[Removed] = []
    inner: set[str] = set()  # B's groups with a change inside
    groups_a = {g.id: g for g in a.groups}
    groups_b = {g.id: g for g in b.groups}
    nodes_a, nodes_b = _node_keys(a), _node_keys(b)
    for key, nb in nodes_b.items():
        na = nodes_a.get(key)
        detail = "added in B" if na is None else _node_detail(na, nb, a.batch, b.batch)
        marks[nb.id] = Mark("added" if na is None else ("changed" if detail else "same"), detail)
        if detail:
            inner.update(_ancestors(b, nb.group))
    for key, na in nodes_a.items():
        if key not in nodes_b:
            removed.append(Removed(na.kind, na.module or na.label, na.module_type or na.op,
                                   f"{na.op} · {_shapes(na, a.batch)}" + (f" · {na.params:,} params" if na.params else ""),
                                   na.group in groups_b))
            inner.update(g for g in _ancestors(b, na.group) if g in groups_b)
    for gid, gb in groups_b.items():
        ga = groups_a.get(gid)
        if ga is None:
            marks[gid] = Mark("added", "added in B")
            inner.update(_ancestors(b, gb.parent))
    for gid, ga in groups_a.items():
        if gid not in groups_b:
            removed.append(Removed("group", gid, ga.type, f"{ga.ops} ops · {ga.params:,} params", ga.parent in groups_b))
            inner.update(g for g in _ancestors(b, ga.parent) if g in groups_b)
    for gid, gb in groups_b.items():
        ga = groups_a.get(gid)
        if ga is not None:
            own = _group_detail(ga, gb)
            if own:
                inner.update(_ancestors(b, gb.parent))
            detail = own or ("contains changes" if gid in inner else "")
            marks[gid] = Mark("changed" if detail else "same", detail)
    removed.sort(key=lambda r: (r.path, r.kind != "group"))
    inner.discard("")
    for gid in inner:  # a group whose only change is inside it
        if marks[gid].status == "same":
            marks[gid] = Mark("changed", "contains changes")
    return marks, tuple(removed), inner


def _visible_boxes(graph: Graph, expanded: set[str]) -> int:
    groups = {g.id: g for g in graph.groups}
    return sum(len(groups[g].children) for g in expanded | {""} if g in groups)


def _expansion(graph: Graph, changed: set[str]) -> tuple[set[str], bool]:
    """The changed groups to open: all of them, or the outermost levels that stay under MAX_BOXES."""
    if _visible_boxes(graph, changed) <= MAX_BOXES:
        return changed, False
    depths = {g: _depth(graph, g) for g in changed}
    for limit in range(max(depths.values(), default=0), 0, -1):
        chosen = {g for g, d in depths.items() if d <= limit}
        if _visible_boxes(graph, chosen) <= MAX_BOXES:
            return chosen, True
    return set(), True


def _counts(marks: dict[str, Mark], ids: set[str], removed: int) -> tuple[int, int, int]:
    statuses = [marks[i].status for i in ids if i in marks]
    return statuses.count("changed"), statuses.count("added"), removed


def compare_graphs(a: GraphResult | None, b: GraphResult | None, names: tuple[str, str] = ("A", "B"),
                   restarts: int = 2, draw: bool = True) -> GraphComparison | None:
    """The section's context: None when neither report has a graph, a reason when only one has.
    `draw=False` skips the layout (for the summary line)."""
    if a is None and b is None:
        return None
    if a is None or b is None:
        return GraphComparison(reason=f"{names[0] if a is None else names[1]} has no graph")
    marks, removed, inner = mark_graph(a.graph, b.graph)
    expand, capped = _expansion(b.graph, inner)
    view = _view(b, expand, restarts) if draw else None
    group_ids = all_groups(b.graph) - {""}
    node_ids = {n.id for n in b.graph.nodes}
    removed_groups = sum(1 for r in removed if r.kind == "group")
    outer = tuple(r for r in removed if r.outer)  # the others are listed through their group
    return GraphComparison(
        view=view, marks=marks, removed=outer[:MAX_REMOVED_SHOWN], removed_total=len(outer),
        groups=_counts(marks, group_ids, removed_groups), ops=_counts(marks, node_ids, len(removed) - removed_groups),
        expanded=len(expand), capped=capped,
    )


def _view(b: GraphResult, expand: set[str], restarts: int) -> View:
    """B's overview when nothing needs opening (already laid out), else a view with `expand` open."""
    if not expand and b.views:
        return b.views[0]
    for v in b.views:  # a precomputed view with exactly these groups open
        if set(v.expanded) == expand | {g for e in expand for g in _ancestors(b.graph, e)}:
            return v
    return draw_view(b.graph, sorted(expand), key="compare", restarts=restarts)


def graph_markdown(a: GraphResult | None, b: GraphResult | None, names: tuple[str, str] = ("A", "B"),
                   comparison: GraphComparison | None = None) -> str:
    """One line for summary.md (empty when neither report has a graph)."""
    if comparison is None:
        comparison = compare_graphs(a, b, names, draw=False)
    if comparison is None:
        return ""
    if comparison.reason:
        return f"**Graph:** not compared: {comparison.reason}."
    if comparison.identical:
        return "**Graph:** no group or op added, changed or removed."
    g, o = comparison.groups, comparison.ops
    return (f"**Graph:** {g[0]} group{'s' * (g[0] != 1)} changed, {g[1]} added, {g[2]} removed; "
            f"{o[0]} op{'s' * (o[0] != 1)} changed, {o[1]} added, {o[2]} removed (matched by module path).")



"""The captured dataflow graph and its drawings as plain typed data (torch-free, codec-ready)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

NodeKind = Literal["op", "input", "output"]
BoxKind = Literal["op", "input", "output", "group", "expanded"]
Point = tuple[float, float]


@dataclass(frozen=True)
class OpNode:
    """One op call. Parameters and buffers are folded in as attributes; plumbing ops become `aux`."""

    id: str
    op: str
    kind: NodeKind
    label: str
    group: str  # id of the innermost group (module call) it ran in; "" is the model itself
    module: str  # module path of that call, for the reader
    module_type: str
    shapes: tuple[tuple[int, ...], ...]
    dtypes: tuple[str, ...]
    source: str
    params: int
    param_names: tuple[str, ...]
    mult_adds: int
    aux: tuple[str, ...] = ()  # folded plumbing ops (view, getitem, ...) shown as an annotation


@dataclass(frozen=True)
class DataEdge:
    source: str
    target: str
    shape: tuple[int, ...]
    numel: int


@dataclass(frozen=True)
class Group:
    """A module call (a module called twice gives two groups) or a series of identical siblings."""

    id: str  # "" is the model; calls after the first carry "@k"; series are "<first>~<n>"
    key: str  # short DOM-safe key: "g0", "g1", ...
    parent: str
    name: str
    type: str
    module: str
    children: tuple[str, ...]  # child group ids and node ids, in execution order
    hash: str  # structural (Weisfeiler-Lehman) hash: equal hash, equal colour
    params: int
    mult_adds: int
    ops: int
    series: int = 0  # number of members when this is a series group


@dataclass(frozen=True)
class Graph:
    nodes: tuple[OpNode, ...]
    edges: tuple[DataEdge, ...]
    groups: tuple[Group, ...]
    capture: Literal["export", "eager"]
    capture_note: str
    batch: int


@dataclass(frozen=True)
class Box:
    """A drawn node: an op, an input/output, a collapsed group or an expanded group's frame.
    (x, y) is the top-left corner."""

    id: str
    x: float
    y: float
    width: float
    height: float
    label: str
    sublabel: str
    kind: BoxKind
    group: str  # the expanded group it is drawn inside ("" at the top level)
    hue: int  # colour class from the structural hash; -1 for none
    depth: int


@dataclass(frozen=True)
class DrawnEdge:
    """An edge at the level of the lowest common ancestor of its ends: `count` bundled data edges."""

    source: str
    target: str
    points: tuple[Point, ...]
    count: int
    numel: int
    label: str
    width: float
    label_at: Point | None = None


@dataclass(frozen=True)
class View:
    """One expansion state, laid out: the page switches between precomputed views."""

    key: str  # "" for the overview, else the expanded group id it focuses
    expanded: tuple[str, ...]
    width: float
    height: float
    boxes: tuple[Box, ...]
    edges: tuple[DrawnEdge, ...]
    crossings: int  # crossings between adjacent layers, summed over the compound levels

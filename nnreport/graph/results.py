"""The graph analysis's config and result: plain frozen dataclasses, torch-free (the codec stores them)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar, Literal

from nnreport.graph.ir import Graph, View
from nnreport.graph.packed import PackedGraph, unpack


@dataclass(frozen=True)
class GraphConfig:
    # "auto": torch.export (non-strict) first, the eager recorder when export fails.
    capture: Literal["auto", "export", "eager"] = "auto"
    # Expansion states laid out in advance in Python (the overview, then one per group, outermost first).
    # The page lays out any other state itself, so only the overview is needed for the first draw.
    max_views: int = 1
    # Also lay out the fully expanded graph when it has at most this many ops.
    full_view_max_ops: int = 0
    # Stop adding views once they hold this many boxes and edges in all (keeps big models' pages light).
    max_items: int = 6000
    # Crossing-reduction restarts per compound level.
    restarts: int = 4

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": {"restarts": 2},
        "thorough": {"restarts": 8},
    }


@dataclass(frozen=True)
class GraphResult:
    packed: PackedGraph  # the graph, compact (repeated blocks once): `graph` unpacks it
    # views[0] is the overview (only the model's direct children); a view's key is the group it opens.
    views: tuple[View, ...]
    # Groups that can be opened but were not laid out in advance (over max_views).
    unlaid: tuple[str, ...] = ()
    restarts: int = 4  # crossing-reduction restarts the views were laid out with (the page uses the same)

    @cached_property
    def graph(self) -> Graph:
        return unpack(self.packed)

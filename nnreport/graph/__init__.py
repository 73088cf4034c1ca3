"""Dataflow graphs of PyTorch models: capture, hierarchy transformations, layered layout, drawing.

`draw_graph(model, example_inputs, expand=...)` is the scripting entry point.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from nnreport.graph.drawing import Drawing, all_groups, draw_view
from nnreport.graph.ir import Box, DrawnEdge, Graph, OpNode, View

if TYPE_CHECKING:
    from torch import nn

__all__ = ["Box", "Drawing", "DrawnEdge", "Graph", "OpNode", "View", "capture_graph", "draw_graph"]


def capture_graph(model: nn.Module, example_inputs: Any, method: str = "auto", device: str | None = None) -> Graph:
    """Capture `model`'s dataflow graph (torch.export first, the eager recorder as fallback), on `device`
    (None: where the model is; a model elsewhere is copied there)."""
    import torch

    from nnreport.graph.capture import capture
    from nnreport.graph.transform import build_graph
    from nnreport.landscape.api import on_device

    inputs = (example_inputs,) if isinstance(example_inputs, torch.Tensor) else tuple(example_inputs)
    model, inputs = on_device(model, inputs, device)
    return build_graph(capture(model, inputs, method), type(model).__name__)


def draw_graph(model: nn.Module | Graph, example_inputs: Any = None,
               expand: str | Iterable[str] = "top", method: str = "auto", device: str | None = None) -> Drawing:
    """Capture and lay out a model's graph. `expand`: "top" (the model's direct children collapsed),
    "all" (every group open, drawn nested), "flat" (every op, no group frames) or group ids to open.
    `device`: where the model runs while it is captured (auto, cpu, cuda, cuda:N, mps; None: where it is)."""
    graph = model if isinstance(model, Graph) else capture_graph(model, example_inputs, method, device)
    if expand == "flat":
        return Drawing(graph, draw_view(graph, flat=True, key="flat"))
    if expand == "all":
        return Drawing(graph, draw_view(graph, all_groups(graph), key="all"))
    if expand in ("top", "none", None):
        return Drawing(graph, draw_view(graph, ()))
    groups = [expand] if isinstance(expand, str) else list(expand)
    return Drawing(graph, draw_view(graph, groups, key=groups[0] if len(groups) == 1 else "custom"))

"""nnreport: turn a PyTorch model into a self-contained, offline HTML report that explains it.

Public API (torch is imported only when a function that needs it is called):

    report = nnreport.Report(model, data="digits")
    report.save("out/")                     # multi-page site
    html = report.to_html()                 # one self-contained HTML string
    insp = nnreport.inspect(model, data)    # -> Inspection (results as numpy data)
    nnreport.render(insp, "out/", theme="dark")
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "Report": "nnreport.api",
    "inspect": "nnreport.api",
    "render": "nnreport.api",
    "Subject": "nnreport.subject",
    "ReportConfig": "nnreport.config",
    "Inspection": "nnreport.inspection",
    "Dataset": "nnreport.datasets",
    "load_builtin": "nnreport.datasets",
    "draw_graph": "nnreport.graph",
    "attribute": "nnreport.relevance",
    "loss_landscape": "nnreport.landscape",
    "compare": "nnreport.api",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str) -> Any:
    """Import public names on first use, so that `import nnreport` stays fast and torch-free."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'nnreport' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value

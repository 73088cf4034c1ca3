"""The Python API: Report, inspect and render."""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnreport.config import ReportConfig
from nnreport.inspection import Inspection
from nnreport.progress import ProgressFn, silent

if TYPE_CHECKING:
    import torch


def inspect(
    model: Any,
    data: Any = None,
    config: ReportConfig | None = None,
    *,
    example_inputs: Any = None,
    input_shape: str | None = None,
    progress: ProgressFn = silent,
    model_spec: str = "",
    on_plan: Any = None,
) -> Inspection:
    """Run every analysis on `model` (an nn.Module, a Subject or a model spec string) and return the results.

    `data` is a Dataset, a data spec string (e.g. "digits"), arrays/tensors `(x, y)` or a torch Dataset.
    """
    from nnreport import inspector
    from nnreport.loading import example_inputs as default_inputs
    from nnreport.loading import load_data, load_model

    config = config or ReportConfig()
    subject = load_model(model, seed=config.seed)
    dataset = load_data(data, config.seed) if data is not None else (
        load_data(subject.data, config.seed) if subject.data is not None else None)
    if example_inputs is not None:
        inputs: tuple[torch.Tensor, ...] = tuple(example_inputs) if isinstance(example_inputs, (tuple, list)) else (example_inputs,)
    else:
        inputs = default_inputs(subject, dataset, input_shape, config.seed)
    return inspector.inspect(subject, dataset, config, example_inputs=inputs, progress=progress,
                             model_spec=model_spec or (model if isinstance(model, str) else ""), on_plan=on_plan)


def render(inspection: Inspection | str | Path, out: str | Path, theme: str = "light", single_file: bool = False,
           timings: bool = True) -> Path:
    """Write the site for an Inspection (or a saved bundle folder) into `out`. Needs no torch."""
    from nnreport.site.build import render as build

    insp = inspection if isinstance(inspection, Inspection) else Inspection.load(inspection)
    return build(insp, out, theme=theme, single_file=single_file, timings=timings)


class Report:
    """A report on one model: `Report(model, data).save("out/")`, or `.to_html()` for one self-contained page.

    In Jupyter (and VS Code notebooks) the object displays itself as the single-file report in an iframe.
    """

    def __init__(self, model: Any, data: Any = None, config: ReportConfig | None = None, *,
                 device: str | None = None, precision: str | None = None, **options: Any) -> None:
        """`device`: auto, cpu, cuda, cuda:N or mps; `precision`: fp32, bf16 or fp16 (both override `config`)."""
        from dataclasses import replace

        self.model = model
        self.data = data
        self.config = config or ReportConfig()
        if device is not None:
            self.config = replace(self.config, device=device)
        if precision is not None:
            self.config = replace(self.config, precision=precision)  # type: ignore[arg-type]
        self.options = options
        self._inspection: Inspection | None = None

    def inspect(self) -> Inspection:
        """Compute (once) and return the Inspection."""
        if self._inspection is None:
            self._inspection = inspect(self.model, self.data, self.config, **self.options)
        return self._inspection

    def save(self, out: str | Path, theme: str | None = None, single_file: bool | None = None) -> Path:
        """Write the multi-page site (or the single-file report) into the folder `out`."""
        return render(self.inspect(), out, theme=theme or self.config.theme,
                      single_file=self.config.single_file if single_file is None else single_file,
                      timings=self.config.timings)

    def to_html(self, theme: str | None = None) -> str:
        """The whole report as one self-contained HTML string."""
        from nnreport.site.build import SINGLE_FILE_NAME, render_files

        insp = self.inspect() if self.config.timings else self.inspect().without_timings()
        return render_files(insp, theme or self.config.theme, single_file=True)[SINGLE_FILE_NAME].decode("utf-8")

    def _repr_html_(self) -> str:
        doc = html.escape(self.to_html(), quote=True)
        return f'<iframe srcdoc="{doc}" style="width:100%;height:720px;border:1px solid #ccc" sandbox="allow-scripts"></iframe>'

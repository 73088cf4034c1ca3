"""The Python API: Report, inspect and render; ComparisonReport and compare for two models."""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nnreport.compare import Comparison, compare_inspections
from nnreport.config import ReportConfig
from nnreport.inspection import Inspection
from nnreport.progress import ProgressFn, silent

if TYPE_CHECKING:
    pass


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
    eval_data: Any = None,
    transform: Any = None,
) -> Inspection:
    """Run every analysis on `model` (an nn.Module, a Subject or a model spec string) and return the results.

    `data` is a Dataset, a data spec string (e.g. "digits"), arrays/tensors `(x, y)` or a torch Dataset.
    `eval_data` is a separate test set (then `data` is used whole for training); `transform` is the model's
    own image preprocessing ("imagenet" or a callable PIL image -> tensor). Both default to the Subject's.
    """
    from nnreport import inspector
    from nnreport.loading import DataOptions, resolve

    config = config or ReportConfig()
    options = DataOptions(transform=transform, eval_data=eval_data)
    subject = resolve(model, data, inputs=example_inputs, input_shape=input_shape, seed=config.seed, options=options)
    return inspector.inspect(subject, config, progress=progress,
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


@dataclass
class ComparisonReport:
    """Two inspections and what differs between them; `.save(out)` writes the compare site."""

    a: Inspection
    b: Inspection
    result: Comparison

    def save(self, out: str | Path, theme: str = "light", single_file: bool = False, timings: bool = True) -> Path:
        from nnreport.site.compare import render_comparison

        return render_comparison(self.a, self.b, self.result, out, theme=theme, single_file=single_file, timings=timings)

    def markdown(self) -> str:
        from nnreport.site.compare import comparison_markdown

        return comparison_markdown(self.a, self.b, self.result)


def compare(a: Any, b: Any, data: Any = None, config: ReportConfig | None = None, names: tuple[str, str] = ("A", "B"),
            progress: ProgressFn = silent, input_shape: str | None = None) -> ComparisonReport:
    """Compare two models (nn.Module, Subject, model spec or Report) or two saved inspections (Inspection
    or bundle folder). Models are inspected with the same config, data and seed, so that every analysis
    sees the same inputs, grid and directions (`input_shape`: synthetic inputs where there is no data)."""
    from nnreport.loading import load_data

    config = config or ReportConfig()
    dataset = load_data(data, config.seed) if data is not None else None
    insp_a, subj_a = _as_inspection(a, dataset, config, progress, names[0], input_shape)
    insp_b, subj_b = _as_inspection(b, dataset, config, progress, names[1], input_shape)
    if dataset is None:
        dataset = _builtin_data(insp_a, config.seed)
    details = _flip_details(subj_a, subj_b, dataset) if subj_a is not None and subj_b is not None else None
    if details is None and dataset is not None:
        details = _images_only(dataset)
    return ComparisonReport(insp_a, insp_b, compare_inspections(insp_a, insp_b, names, details))


def _as_inspection(item: Any, data: Any, config: ReportConfig, progress: ProgressFn, label: str,
                   input_shape: str | None = None) -> tuple[Inspection, Any]:
    from nnreport.loading import load_model

    if isinstance(item, Inspection):
        return item, None
    if isinstance(item, Report):
        return item.inspect(), load_model(item.model, seed=config.seed)
    if isinstance(item, (str, Path)) and Path(item).is_dir():
        return Inspection.load(item), None
    subject = load_model(item, seed=config.seed)
    return inspect(subject, data, config, input_shape=input_shape, progress=progress,
                   model_spec=str(item) if isinstance(item, str) else label), subject


def _flip_details(subject_a: Any, subject_b: Any, data: Any) -> Any:
    """Pictures for flipped samples: the input and each model's LRP map for its own prediction."""

    def details(indices: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None, str]:
        import torch

        if data is None or data.kind != "image":
            return None, None, None, ""
        x = torch.from_numpy(np.ascontiguousarray(data.x_test[indices]))
        images = data.to_display(data.x_test[indices]).astype(np.float32)
        maps = []
        for subject in (subject_a, subject_b):
            try:
                from nnreport.relevance import attribute

                maps.append(attribute(subject.model, x, None, method="lrp").sum(axis=1).astype(np.float32))
            except Exception:  # a model LRP cannot explain: show the inputs without maps
                return images, None, None, ""
        return images, maps[0], maps[1], "LRP (epsilon_plus_flat), each model for its own prediction"

    return details


def _builtin_data(insp: Inspection, seed: int) -> Any:
    """Built-in data named in a bundle can be rebuilt exactly, so flips get their pictures from bundles too."""
    from nnreport.datasets import builtin_names, load_builtin

    name = insp.manifest.model.data_name
    return load_builtin(name, insp.manifest.provenance.seed) if name in builtin_names() else None


def _images_only(data: Any) -> Any:
    def details(indices: np.ndarray) -> tuple[np.ndarray | None, None, None, str]:
        if data.kind != "image":
            return None, None, None, ""
        return data.to_display(data.x_test[indices]).astype(np.float32), None, None, ""

    return details

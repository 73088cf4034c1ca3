"""Runs the analyses in dependency order, reuses cached results, and reports progress."""

from __future__ import annotations

import dataclasses
import json
import platform
import time
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from nnreport import __version__
from nnreport.analyses import Analysis, get_analysis, ordered
from nnreport.cache import (
    ResultCache,
    code_fingerprint,
    dataset_fingerprint,
    digest,
    model_fingerprint,
    tensors_fingerprint,
)
from nnreport.config import ReportConfig
from nnreport.context import Context
from nnreport.datasets import Dataset
from nnreport.device import default_budget, deterministic_algorithms, parse_bytes, resolve_device
from nnreport.distributed import broadcast_floats
from nnreport.errors import Skipped, UsageError
from nnreport.inspection import (
    FORMAT_VERSION,
    AnalysisRecord,
    Inspection,
    Manifest,
    ModelInfo,
    Provenance,
    TensorSpec,
)
from nnreport.planning import BudgetPlan, Timing, time_plan
from nnreport.progress import ProgressEvent, ProgressFn, silent
from nnreport.subject import Subject

if TYPE_CHECKING:
    import torch
    from torch import nn


def plan(config: ReportConfig) -> list[Analysis]:
    """The analyses this config asks for, with their requirements, in dependency order."""
    try:
        names = [get_analysis(n).name for n in (config.only or ())] or None
        skip = {get_analysis(n).name for n in config.skip}
    except KeyError as exc:
        raise UsageError(str(exc.args[0])) from None
    return [a for a in ordered(names) if a.name not in skip]


def on_device(subject: Subject, device: str) -> Subject:
    """The subject with its model on `device`: the model itself when it is already there, else a deep copy
    moved once (the user's model is left exactly where it was)."""
    import copy

    from nnreport.device import model_device, same_device

    if same_device(model_device(subject.model), device):
        return subject
    try:
        moved = copy.deepcopy(subject.model).to(device)
    except Exception as exc:
        raise UsageError(f"the model cannot be moved to {device}: {_first_line(exc)}") from None
    return dataclasses.replace(subject, model=moved)


def describe_model(subject: Subject, inputs: tuple[torch.Tensor, ...], data: Dataset | None, model_spec: str) -> ModelInfo:
    """The model card's facts: parameter counts and sizes, input and output specs, the data."""
    import torch

    from nnreport import scoped

    model = subject.model
    params = list(model.parameters())
    with scoped.eval_mode(model), torch.no_grad():
        out = model(*inputs)
    return ModelInfo(
        name=subject.name or type(model).__name__,
        class_name=f"{type(model).__module__}.{type(model).__qualname__}",
        num_params=sum(p.numel() for p in params),
        trainable_params=sum(p.numel() for p in params if p.requires_grad),
        param_bytes=sum(p.numel() * p.element_size() for p in params),
        buffer_bytes=sum(b.numel() * b.element_size() for b in model.buffers()),
        inputs=tuple(TensorSpec(f"input {i}", tuple(t.shape), str(t.dtype).replace("torch.", "")) for i, t in enumerate(inputs)),
        outputs=tuple(_output_specs(out, "output")),
        model_spec=model_spec,
        data_name=data.name if data else None,
        data_description=data.description if data else "",
        data_kind=data.kind if data else None,
        num_train=len(data.x_train) if data else 0,
        num_test=len(data.x_test) if data else 0,
        class_names=_class_names(subject, data),
    )


def check_data(model: nn.Module, data: Dataset, inputs: tuple[torch.Tensor, ...]) -> None:
    """Fail early, in one line, when the model cannot run on the data (wrong shape or dtype)."""
    import torch

    from nnreport import scoped

    if len(inputs) != 1:
        return  # data feeds single-input models only; analyses that need it say so
    x = torch.from_numpy(np.ascontiguousarray(data.x_test[:2])).to(inputs[0].device)
    try:
        with scoped.eval_mode(model), torch.no_grad():
            model(x)
    except Exception as exc:
        raise UsageError(f"the model cannot run on the data {data.name!r} (inputs {tuple(x.shape)} {x.dtype}): "
                         f"{_first_line(exc)}") from None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _output_specs(out: Any, name: str) -> list[TensorSpec]:
    import torch

    if isinstance(out, torch.Tensor):
        return [TensorSpec(name, tuple(out.shape), str(out.dtype).replace("torch.", ""))]
    if isinstance(out, dict):
        return [s for k, v in out.items() for s in _output_specs(v, f"{name}[{k!r}]")]
    if isinstance(out, (tuple, list)):
        return [s for i, v in enumerate(out) for s in _output_specs(v, f"{name}[{i}]")]
    return []


def _class_names(subject: Subject, data: Dataset | None) -> tuple[str, ...] | None:
    if subject.class_names is not None:
        return tuple(str(c) for c in subject.class_names)
    return data.class_names if data is not None else None


def _config_json(config: Any) -> str:
    return json.dumps(dataclasses.asdict(config), sort_keys=True, default=str)


def inspect(
    subject: Subject | nn.Module,
    data: Dataset | None = None,
    config: ReportConfig | None = None,
    *,
    example_inputs: tuple[torch.Tensor, ...] | None = None,
    progress: ProgressFn = silent,
    model_spec: str = "",
    cache: ResultCache | None = None,
    on_plan: Callable[[BudgetPlan], None] | None = None,
) -> Inspection:
    """Run every planned analysis on the subject and return the Inspection. The time plan (see
    nnreport.planning) is handed to `on_plan` before any analysis runs (the CLI prints it)."""
    import torch

    from nnreport.loading import example_inputs as default_inputs
    from nnreport.loading import load_data, load_model

    config = config or ReportConfig()
    subject = load_model(subject)
    device = resolve_device(config.device)
    subject = on_device(subject, device)
    if data is None and subject.data is not None:
        data = load_data(subject.data, config.seed)
    inputs = tuple(t.to(device) for t in (example_inputs or default_inputs(subject, data, None, config.seed)))
    if data is not None:
        check_data(subject.model, data, inputs)
    try:
        info = describe_model(subject, inputs, data, model_spec)
    except Exception as exc:
        shapes = ", ".join(f"{tuple(t.shape)} {t.dtype}" for t in inputs)
        raise UsageError(f"the model cannot run on its example inputs ({shapes}): {_first_line(exc)}") from None
    checkpoints = tuple({k: v.to(device) for k, v in c.items()} for c in subject.checkpoints)
    budget = parse_bytes(config.memory_budget) if config.memory_budget is not None else default_budget(device)
    budget = int(broadcast_floats([budget])[0])  # under torchrun every process batches alike (same bytes)
    ctx = Context(subject.model, inputs, data, info.class_names, config, progress,
                  checkpoints=checkpoints, history=tuple(float(h) for h in subject.history),
                  device=device, precision=config.precision, memory_budget=budget)
    store = cache or ResultCache()
    versions = [__version__, code_fingerprint(), torch.__version__, np.__version__]
    subject_fp = digest([model_fingerprint(subject.model), tensors_fingerprint(inputs), dataset_fingerprint(data),
                         json.dumps(info.class_names), str(config.seed), str(config.max_samples),
                         tensors_fingerprint(t for c in checkpoints for _, t in sorted(c.items())),
                         json.dumps(list(subject.history)), device.split(":")[0], config.precision] + versions)
    specs = plan(config)
    # The measured timing is cached with the results, so a rebuild makes the same plan (and hits the cache).
    timing_fp = digest(["time-plan", subject_fp, device])
    hit = store.get(timing_fp, Timing) if config.cache else None
    budget_plan = time_plan(ctx, specs, hit[0] if hit else None)
    if config.cache and hit is None and budget_plan.timing is not None:
        store.put(timing_fp, budget_plan.timing, 0.0)
    if on_plan is not None:
        on_plan(budget_plan)
    records: list[AnalysisRecord] = []
    fingerprints: dict[str, str] = {}
    for spec in specs:
        chosen = budget_plan.choices.get(spec.name)
        analysis_config = config.analysis_config(spec.name, spec.config_type, chosen.values if chosen else None)
        fp = digest([spec.name, _config_json(analysis_config), subject_fp] + [fingerprints.get(d, "") for d in spec.requires])
        fingerprints[spec.name] = fp
        record = _run_one(spec, analysis_config, ctx, fp, store if config.cache else None, progress)
        records.append(dataclasses.replace(record, plan=chosen.reason) if chosen and chosen.reason else record)
    provenance = Provenance(__version__, torch.__version__, np.__version__, platform.python_version(), config.seed,
                            config.preset, device=device, precision=config.precision,
                            deterministic=deterministic_algorithms() if device != "cpu" else None)
    title = config.title or f"{info.name} — nnreport"
    return Inspection(Manifest(FORMAT_VERSION, title, info, provenance, tuple(records)), dict(ctx.results))


def _run_one(spec: Analysis, config: Any, ctx: Context, fp: str, store: ResultCache | None,
             progress: ProgressFn) -> AnalysisRecord:
    from nnreport import scoped

    missing = [d for d in spec.requires if d not in ctx.results]
    if missing:
        return AnalysisRecord(spec.name, spec.title, "skipped", f"it needs the {', '.join(missing)} analysis, which did not run", None, fp)
    if store is not None:
        hit = store.get(fp, spec.result_type)
        if hit is not None:
            ctx.results[spec.name] = hit[0]
            progress(ProgressEvent(spec.title, 1, 1, "cached", final=True))
            return AnalysisRecord(spec.name, spec.title, "ok", "", hit[1], fp)
    progress(ProgressEvent(spec.title, 0, 1))
    ctx.stage_name = spec.title
    ctx.scratch = store.scratch(fp) if store is not None else None
    start = time.perf_counter()
    try:
        with scoped.untouched(ctx.model), scoped.small_model_threads(ctx.model):
            result = spec.run(ctx, config)
    except Skipped as exc:
        progress(ProgressEvent(spec.title, 1, 1, "skipped", final=True))
        return AnalysisRecord(spec.name, spec.title, "skipped", str(exc), None, fp)
    except Exception as exc:  # one failing analysis must not kill the report
        progress(ProgressEvent(spec.title, 1, 1, "failed", final=True))
        message = f"{type(exc).__name__}: {exc}".strip()
        return AnalysisRecord(spec.name, spec.title, "failed", message, None, fp, traceback.format_exc())
    seconds = round(time.perf_counter() - start, 3)
    if not isinstance(result, spec.result_type):
        raise TypeError(f"analysis {spec.name} returned {type(result).__name__}, not {spec.result_type.__name__}")
    ctx.results[spec.name] = result
    if store is not None:
        store.put(fp, result, seconds)
    progress(ProgressEvent(spec.title, 1, 1, final=True))
    return AnalysisRecord(spec.name, spec.title, "ok", "", seconds, fp)

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
from nnreport.analyses import Analysis, get_analysis, load_all, ordered
from nnreport.cache import (
    ResultCache,
    code_fingerprint,
    dataset_fingerprint,
    digest,
    model_fingerprint,
    tensors_fingerprint,
)
from nnreport.checks import SCORE_ANALYSES, check_output_width
from nnreport.config import ReportConfig, check_tables
from nnreport.context import Context
from nnreport.device import default_budget, deterministic_algorithms, on_device, parse_bytes, resolve_device
from nnreport.distributed import broadcast_floats
from nnreport.errors import Skipped, UsageError, first_line
from nnreport.inspection import (
    FORMAT_VERSION,
    AnalysisRecord,
    Inspection,
    Manifest,
    Provenance,
)
from nnreport.modelcard import describe_model
from nnreport.planning import BudgetPlan, Timing, time_plan
from nnreport.progress import ProgressEvent, ProgressFn, silent
from nnreport.subject import Subject

if TYPE_CHECKING:
    pass


def plan(config: ReportConfig) -> list[Analysis]:
    """The analyses this config asks for, with their requirements, in dependency order."""
    try:
        names = [get_analysis(n).name for n in (config.only or ())] or None
        skip = {get_analysis(n).name for n in config.skip}
    except KeyError as exc:
        raise UsageError(str(exc.args[0])) from None
    check_tables(config.analyses, load_all(), "config")
    return [a for a in ordered(names) if a.name not in skip]


def _config_json(config: Any) -> str:
    return json.dumps(dataclasses.asdict(config), sort_keys=True, default=str)


def inspect(
    subject: Subject,
    config: ReportConfig | None = None,
    *,
    progress: ProgressFn = silent,
    model_spec: str = "",
    cache: ResultCache | None = None,
    on_plan: Callable[[BudgetPlan], None] | None = None,
) -> Inspection:
    """Run every planned analysis on a resolved subject (nnreport.loading.resolve) and return the Inspection.
    The time plan (see nnreport.planning) is handed to `on_plan` before any analysis runs (the CLI prints it)."""
    import torch

    config = config or ReportConfig()
    device = resolve_device(config.device)
    subject = on_device(subject, device)  # the model moved once (a copy); the caller's model stays where it was
    data, inputs = subject.data, tuple(t.to(device) for t in subject.example_inputs)
    try:
        info = describe_model(subject, inputs, data, model_spec)
    except (Exception, SystemExit) as exc:  # SystemExit: a model that calls sys.exit() in forward
        shapes = ", ".join(f"{tuple(t.shape)} {t.dtype}" for t in inputs)
        raise UsageError(f"the model cannot run on its example inputs ({shapes}): {first_line(exc)}") from None
    if subject.class_names is not None and info.outputs and len(info.outputs[0].shape) == 2:
        check_output_width(info.outputs[0].shape[1], None, info.class_names, "the model spec")
    checkpoints = tuple({k: v.to(device) for k, v in c.items()} for c in subject.checkpoints)
    budget = parse_bytes(config.memory_budget) if config.memory_budget is not None else default_budget(device)
    budget = int(broadcast_floats([budget])[0])  # under torchrun every process batches alike (same bytes)
    ctx = Context(subject.model, inputs, data, info.class_names, config, progress,
                  checkpoints=checkpoints, history=tuple(float(h) for h in subject.history),
                  device=device, precision=config.precision, memory_budget=budget)
    store = cache or ResultCache()
    problem = store.probe() if config.cache else ""
    if problem:  # e.g. a read-only cache folder: compute everything, store nothing
        progress(ProgressEvent("Result cache", 1, 1, f"warning: {problem}; running without a cache", final=True))
    versions = [__version__, code_fingerprint(), torch.__version__, np.__version__]
    subject_fp = digest([model_fingerprint(subject.model), tensors_fingerprint(inputs), dataset_fingerprint(data),
                         json.dumps(info.class_names), str(config.seed), str(config.max_samples),
                         tensors_fingerprint(t for c in checkpoints for _, t in sorted(c.items())),
                         json.dumps(list(subject.history)), device.split(":")[0], config.precision] + versions)
    specs = plan(config)
    # The measured timing is cached with the results, so a rebuild makes the same plan (and hits the cache).
    timing_fp = digest(["time-plan", subject_fp, device])
    hit = store.get(timing_fp, Timing) if config.cache and not problem else None
    budget_plan = time_plan(ctx, specs, hit[0] if hit else None)
    if config.cache and not problem and hit is None and budget_plan.timing is not None:
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
        if info.nonfinite and spec.name in SCORE_ANALYSES:
            progress(ProgressEvent(spec.title, 1, 1, "failed", final=True))
            records.append(AnalysisRecord(spec.name, spec.title, "failed", f"not computed: {info.nonfinite}", None, fp))
            continue
        record = _run_one(spec, analysis_config, ctx, fp, store if config.cache and not problem else None, progress)
        records.append(dataclasses.replace(record, plan=chosen.reason) if chosen and chosen.reason else record)
    provenance = Provenance(__version__, torch.__version__, np.__version__, platform.python_version(), config.seed,
                            config.preset, device=device, precision=config.precision,
                            deterministic=deterministic_algorithms() if device != "cpu" else None)
    title = config.title or f"{info.name} — nnreport"
    return Inspection(Manifest(FORMAT_VERSION, title, info, provenance, tuple(records)), dict(ctx.results))


def _hand_back_memory() -> None:
    """Before each analysis: collect what the last one left in reference cycles and hand the freed heap back
    to the system. Freed blocks under the 32 MB mmap threshold (reuse_freed_memory) otherwise stay resident,
    so each analysis started where the last one peaked (ViT-B/16's quick report: 4.2 GB resident when the
    landscape began)."""
    import gc

    from nnreport import memory

    gc.collect()
    memory.release_freed_memory()


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
    _hand_back_memory()
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
    except (Exception, SystemExit) as exc:  # one failing analysis must not kill the report
        progress(ProgressEvent(spec.title, 1, 1, "failed", final=True))
        message = first_line(exc) if isinstance(exc, SystemExit) else f"{type(exc).__name__}: {exc}".strip()
        return AnalysisRecord(spec.name, spec.title, "failed", message, None, fp, traceback.format_exc())
    seconds = round(time.perf_counter() - start, 3)
    if not isinstance(result, spec.result_type):
        raise TypeError(f"analysis {spec.name} returned {type(result).__name__}, not {spec.result_type.__name__}")
    ctx.results[spec.name] = result
    if store is not None:
        store.put(fp, result, seconds)
    progress(ProgressEvent(spec.title, 1, 1, final=True))
    return AnalysisRecord(spec.name, spec.title, "ok", "", seconds, fp)

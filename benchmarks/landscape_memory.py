"""Benchmark: peak resident memory of the loss-landscape analysis alone, per stage, on torchvision models at
224 px (random weights, 4 classes), against the model's parameter bytes (the baseline: "peak ÷ params").

    /work/venv-tv/bin/python benchmarks/landscape_memory.py [--models vit_b_16,resnet50] [--images 64]
        [--steps 2] [--slice-steps 0] [--hessian-samples 2] [--lanczos 8] [--memory-budget 512MB]

Runs `nnreport.inspect(model, data, ReportConfig(preset="quick", only=("landscape",), cache=False))` with
the quick settings, made shorter through the options (fewer grid points and Hessian samples keep a ViT-B/16
run to a few minutes on 2 cores; the peaks depend on the batch sizes, which the memory budget sets, not on
the number of points). Each model runs in its own subprocess, so that its peak is its own. Per stage
(the output check, the copies of the weights, the directions and their summary, the plane and slice
sweeps, the Hessian with the peak inside its Hessian-vector products, and what ran between them) it prints
the resident size on entry and the peak (Linux VmHWM, reset at the start of each stage).
Goal: the ViT-B/16 landscape peak well under the 7.3 GB measured with benchmarks/scale.py (≤ 4 GB).
Measured with the defaults on the shared 2-core machine (torch 2.14.1): ViT-B/16 6.28 GB before (its
Hessian failing at the first product), 4.00 GB after with the Hessian computed; ResNet-50 3.83 → 2.08 GB.
Needs torchvision (kept out of nnreport's dependencies: install it in a separate environment).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.scale import CLASSES, _high_water, _reset_high_water, images, proc_status_bytes  # noqa: E402

GB = 2**30


def _resident() -> int:
    """Current resident bytes (Linux VmRSS)."""
    return proc_status_bytes("VmRSS")


class Stages:
    """Peak resident memory per stage: each wrapped call resets the high-water mark on entry and records
    it on exit (a stage called several times keeps its largest peak)."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, float]] = {}
        self.depth = 0

    def wrap(self, fn: Any, name: Any) -> Any:
        @functools.wraps(fn)
        def inner(*args: Any, **kwargs: Any) -> Any:
            label = name(*args, **kwargs) if callable(name) else name
            if self.depth == 1:  # the peak since the last stage (in the analysis, between stages)
                gap = self.rows.setdefault("between stages", {"entry_gb": 0.0, "peak_gb": 0.0, "seconds": 0.0,
                                                              "calls": 0})
                gap["peak_gb"] = max(gap["peak_gb"], round(_high_water() / GB, 2))
            if self.depth <= 1:  # nested stages (the HVPs in the Hessian stage) must not reset their stage's peak
                _reset_high_water()
            entry = _resident()
            self.depth += 1
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.depth -= 1
                row = self.rows.setdefault(label, {"entry_gb": 0.0, "peak_gb": 0.0, "seconds": 0.0, "calls": 0})
                row["entry_gb"] = max(row["entry_gb"], round(entry / GB, 2))
                peak = round(_high_water() / GB, 2)
                if self.depth == 0:  # the inner stages reset the high-water mark: the largest of theirs
                    peak = max([peak] + [r["peak_gb"] for r in self.rows.values()])
                row["peak_gb"] = max(row["peak_gb"], peak)
                row["seconds"] = round(row["seconds"] + time.perf_counter() - start, 1)
                row["calls"] += 1
                if self.depth == 1:  # what follows until the next stage is "between stages"
                    _reset_high_water()

        return inner


def one(model_name: str, args: argparse.Namespace) -> dict[str, object]:
    """Run the landscape analysis on one model in this process; the measurements as a dict."""
    import torch
    import torchvision

    import nnreport
    from nnreport.config import ReportConfig
    from nnreport.datasets import Dataset
    from nnreport.landscape import analysis, hessian
    from nnreport.memory import reuse_freed_memory

    reuse_freed_memory()  # as the command line does
    torch.manual_seed(0)
    model = getattr(torchvision.models, model_name)(weights=None, num_classes=CLASSES).eval()
    x, y = images(args.images)
    data = Dataset("random-224", "image", x, y, x, y, tuple(f"class {i}" for i in range(CLASSES)),
                   mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), description="smooth random images")
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    stages = Stages()
    # The stages, wrapped where analysis.run calls them (module globals, so run picks the wrappers up).
    analysis.run = stages.wrap(analysis.run, "whole analysis")  # the outermost: its peak is the analysis's
    analysis._check_output = stages.wrap(analysis._check_output, "check output")
    analysis.parameter_space = stages.wrap(analysis.parameter_space, "parameter copy")
    analysis.state_space = stages.wrap(analysis.state_space, "home copy")
    analysis.random_direction = stages.wrap(analysis.random_direction, "directions")
    analysis.sweep = stages.wrap(analysis.sweep, lambda ev, coords, scratch=None, key="", progress=None:
                                 f"sweep {key.split('-')[0]}")
    analysis._sharpness = stages.wrap(analysis._sharpness, "hessian")
    analysis._directions = stages.wrap(analysis._directions, "directions summary")
    operator = hessian.hvp_operator
    hessian.hvp_operator = lambda *a, **k: stages.wrap(operator(*a, **k), "hessian: inside HVPs")

    options = {"steps": args.steps, "slice_steps": args.slice_steps, "samples": args.images,
               "hessian_samples": args.hessian_samples, "lanczos_iterations": args.lanczos}
    config = ReportConfig(preset="quick", only=("landscape",), cache=False, max_samples=args.images,
                          analyses={"landscape": options}, memory_budget=args.memory_budget)
    _reset_high_water()
    start_rss = _resident()
    start = time.perf_counter()
    insp = nnreport.inspect(model, data, config)
    seconds = time.perf_counter() - start
    record = next(r for r in insp.manifest.records if r.name == "landscape")
    result = insp.result("landscape") if record.status == "ok" else None
    sharp = getattr(result, "sharpness", None)
    return {
        "model": model_name, "param_gb": round(params / GB, 3), "start_gb": round(start_rss / GB, 2),
        "seconds": round(seconds, 1), "status": record.status, "message": record.message[:300],
        "stages": stages.rows, "lanczos_iterations": getattr(sharp, "iterations", None),
        "hessian_top": getattr(sharp, "top", None), "notes": list(getattr(result, "notes", ())),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="vit_b_16,resnet50")
    ap.add_argument("--images", type=int, default=64, help="samples on the grid")
    ap.add_argument("--steps", type=int, default=2, help="plane points per axis (quick: 9)")
    ap.add_argument("--slice-steps", type=int, default=0, help="1-D slice points (quick: 17)")
    ap.add_argument("--hessian-samples", type=int, default=2, help="samples the HVPs average over (quick: 64)")
    ap.add_argument("--lanczos", type=int, default=8, help="Lanczos iterations asked for (quick: 8)")
    ap.add_argument("--memory-budget", default=None, help="e.g. 512MB (default: nnreport's own)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print("RESULT " + json.dumps(one(args.child, args)), flush=True)
        return
    for name in args.models.split(","):
        cmd = [sys.executable, __file__, "--child", name] + [
            a for k, v in vars(args).items() if k not in ("models", "child") and v is not None
            for a in (f"--{k.replace('_', '-')}", str(v))]
        env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_WAIT_POLICY": "PASSIVE"}
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
        result = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
        if done.returncode != 0 or not result:
            print(f"{name}: failed\n{done.stderr[-2000:]}", flush=True)
            continue
        row = json.loads(result[0][7:])
        params = row["param_gb"]
        peak = max(s["peak_gb"] for s in row["stages"].values()) if row["stages"] else float("nan")
        entry = row["stages"].get("whole analysis", {}).get("entry_gb")
        print(f"{name}: {params:.3f} GB of parameters, {row['seconds']} s, landscape {row['status']}, "
              f"peak {peak:.2f} GB = {peak / params:.1f}× the parameters (resident before inspect: "
              f"{row['start_gb']} GB, at the analysis's start: {entry} GB); Lanczos iterations {row['lanczos_iterations']}, top {row['hessian_top']}",
              flush=True)
        if row["status"] != "ok":
            print(f"  {row['message']}")
        print("  | stage | calls | s | resident on entry GB | peak GB | peak ÷ params |")
        print("  |---|---|---|---|---|---|")
        for stage, s in row["stages"].items():
            print(f"  | {stage} | {s['calls']} | {s['seconds']} | {s['entry_gb']} | {s['peak_gb']} | "
                  f"{s['peak_gb'] / params:.1f} |")
        for note in row["notes"]:
            print(f"  note: {note}")


if __name__ == "__main__":
    main()

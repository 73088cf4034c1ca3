"""Benchmark: full reports of torchvision models at 224 px (random weights) on 256 in-memory images, per
preset: seconds per analysis, peak resident memory, and the whole report against one forward pass over the
same 256 images (the baseline, measured in the same process just before the report).

    /work/venv-tv/bin/python benchmarks/scale.py [--models resnet18,resnet50,vit_b_16] [--presets quick,standard]
        [--device auto] [--images 256] [--threads 0]

Any torchvision classifier name works in --models (e.g. densenet121, squeezenet1_1, mobilenet_v3_large,
efficientnet_b0, convnext_tiny, swin_t, vgg11_bn): the analyses that did not run are listed with the reason.

Needs torchvision (kept out of nnreport's dependencies: install it in a separate environment). Each
(model, preset) runs in its own subprocess, so that its peak memory (ru_maxrss) is its own. Goals from
issue 11 on a quiet 2-core machine: quick ResNet-18 ≤ 150 s and ≤ 3 GB peak; quick ViT-B/16 ≤ 10 min.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CLASSES = 4


def images(n: int, seed: int = 0) -> tuple[object, object]:
    """Smooth random images (8×8 noise upsampled to 224×224), normalised per channel, and 4 labels."""
    import numpy as np

    rng = np.random.default_rng(seed)
    coarse = rng.normal(size=(n, 3, 8, 8)).astype(np.float32)
    x = np.repeat(np.repeat(coarse, 28, axis=2), 28, axis=3)
    return np.ascontiguousarray(x), rng.integers(0, CLASSES, n).astype(np.int64)


def one(model_name: str, preset: str, device: str, n: int) -> dict[str, object]:
    """Build one report in this process; the measurements as a dict."""
    import torch
    import torchvision

    import nnreport
    from nnreport.config import ReportConfig
    from nnreport.datasets import Dataset
    from nnreport.device import resolve_device
    from nnreport.memory import reuse_freed_memory
    from nnreport.progress import ProgressEvent

    reuse_freed_memory()  # as the command line does
    torch.manual_seed(0)
    model = getattr(torchvision.models, model_name)(weights=None, num_classes=CLASSES).eval()
    x, y = images(n)
    data = Dataset("random-224", "image", x, y, x, y, tuple(f"class {i}" for i in range(CLASSES)),
                   mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), description="smooth random images")
    dev = resolve_device(device)
    moved = model.to(dev)
    with torch.inference_mode():
        xt = torch.from_numpy(x)
        moved(xt[:8].to(dev))  # warm-up
        start = time.perf_counter()
        for s in range(0, n, 32):
            moved(xt[s:s + 32].to(dev))
        if dev.startswith("cuda"):
            torch.cuda.synchronize()
        forward = time.perf_counter() - start
    model = model.cpu()
    config = ReportConfig(preset=preset, cache=False, device=device, max_samples=n)  # type: ignore[arg-type]
    lines: list[str] = []
    peaks: dict[str, float] = {}

    def progress(event: ProgressEvent) -> None:
        """Peak resident memory of each analysis: the high-water mark is reset when one starts."""
        if event.final:
            peaks[event.stage] = round(_high_water() / 2**30, 2)
        elif event.done == 0 and event.message == "":
            _reset_high_water()

    start = time.perf_counter()
    insp = nnreport.inspect(model, data, config, on_plan=lambda p: lines.extend(p.lines()), progress=progress)
    with tempfile.TemporaryDirectory() as out:
        nnreport.render(insp, out)
    total = time.perf_counter() - start
    return {
        "model": model_name, "preset": preset, "device": dev, "images": n, "seconds": round(total, 1),
        "forward_seconds": round(forward, 2), "ratio": round(total / forward, 1),
        # Resetting the high-water mark per analysis also resets what ru_maxrss reports: take the largest.
        "peak_gb": max([round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)]
                       + [v for v in peaks.values() if v is not None]),
        "analyses": {r.name: (r.seconds if r.status == "ok" else r.status) for r in insp.manifest.records},
        "not_ok": [f"{r.name} {r.status}: {r.message[:300]}" for r in insp.manifest.records if r.status != "ok"],
        "analysis_peak_gb": {r.name: peaks.get(r.title) for r in insp.manifest.records},
        "plan": lines,
    }


def _high_water() -> int:
    """Peak resident bytes since the last reset (Linux VmHWM)."""
    return proc_status_bytes("VmHWM")


def proc_status_bytes(field: str) -> int:
    """A size from /proc/self/status in bytes (VmHWM: peak resident, VmRSS: resident now); 0 if absent."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def _reset_high_water() -> None:
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")  # resets VmHWM to the current resident size
    except OSError:
        pass


def table(rows: list[dict[str, object]]) -> str:
    names = sorted({a for r in rows for a in r["analyses"]})  # type: ignore[attr-defined]
    head = "| model | preset | device | report s | peak GB | × forward | " + " | ".join(names) + " |"
    lines = [head, "|" + "---|" * (6 + len(names))]
    for r in rows:
        cells = [r["analyses"].get(a, "–") for a in names]  # type: ignore[attr-defined]
        fmt = [f"{c:.1f}" if isinstance(c, float) else str(c) for c in cells]
        lines.append(f"| {r['model']} | {r['preset']} | {r['device']} | {r['seconds']} | {r['peak_gb']} | "
                     f"{r['ratio']} | " + " | ".join(fmt) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="resnet18,resnet50,vit_b_16")
    ap.add_argument("--presets", default="quick,standard")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--child", nargs=2, metavar=("MODEL", "PRESET"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print("RESULT " + json.dumps(one(args.child[0], args.child[1], args.device, args.images)), flush=True)
        return
    rows = []
    for preset in args.presets.split(","):
        for name in args.models.split(","):
            cmd = [sys.executable, __file__, "--child", name, preset, "--device", args.device,
                   "--images", str(args.images)]
            env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_WAIT_POLICY": "PASSIVE"}
            done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
            result = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
            if done.returncode != 0 or not result:
                print(f"{name} {preset}: failed\n{done.stderr[-2000:]}", flush=True)
                continue
            row = json.loads(result[0][7:])
            rows.append(row)
            print("\n".join(row["plan"]), flush=True)
            print(f"{name} {preset}: {row['seconds']} s, peak {row['peak_gb']} GB, "
                  f"{row['ratio']}× one forward pass over {row['images']} images ({row['forward_seconds']} s)",
                  flush=True)
            print("  peak GB per analysis: " + ", ".join(f"{k} {v}" for k, v in row["analysis_peak_gb"].items()),
                  flush=True)
            print("  seconds per analysis: " + ", ".join(f"{k} {v}" for k, v in row["analyses"].items()), flush=True)
            for line in row["not_ok"]:
                print(f"  {line}", flush=True)
    print(table(rows))


if __name__ == "__main__":
    main()

"""Benchmark: the evaluation analysis against the one thing any evaluation must do, a plain batched
forward pass over the same test split (eval mode, no_grad), with peak memory of each in a fresh process.

Run from the repository root:  python3 benchmarks/evaluation.py [--samples 4000] [--tsne-max 5000]
Prints CPU times (time.process_time, so that other work on a shared machine disturbs the ratios less) and
ratios measured in this run (no absolute numbers are asserted), and each case's peak resident memory next to
the baseline's. Every case runs in its own process on one torch thread.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

CASES = {
    "forward": None,  # the baseline
    "metrics": {"gallery": 0, "embedding_samples": 0},
    "metrics+gallery (LRP)": {"gallery": 8, "embedding_samples": 0},
    "metrics+gallery+embedding 1000 (t-SNE)": {"gallery": 8, "embedding_samples": 1000},
}


def _data(samples: int) -> object:
    import numpy as np

    from nnreport.datasets import Dataset

    rng = np.random.default_rng(0)
    x = rng.normal(size=(samples, 3, 32, 32)).astype(np.float32)
    y = rng.integers(0, 10, samples)
    return Dataset("noise", "image", x[:256], y[:256], x, y, class_names=tuple(str(i) for i in range(10)))


def run_case(name: str, samples: int) -> dict[str, float]:
    import numpy as np
    import torch

    from nnreport import scoped
    from nnreport.config import ReportConfig
    from nnreport.context import Context
    from nnreport.evaluation.analysis import run
    from nnreport.evaluation.config import EvaluationConfig

    from models import ResNetLike

    imported = time.process_time()
    import sklearn.decomposition  # noqa: F401 - a one-time cost, reported apart from the cases
    import sklearn.manifold  # noqa: F401
    import sklearn.metrics  # noqa: F401

    imported = time.process_time() - imported
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = ResNetLike(width=16, classes=10)
    data: object = _data(samples)
    x_test = data.x_test  # type: ignore[attr-defined]
    options = CASES[name]
    start = time.process_time()
    if options is None:
        with scoped.eval_mode(model), torch.no_grad():
            for i in range(0, samples, 256):
                model(torch.from_numpy(np.ascontiguousarray(x_test[i:i + 256])))
    else:
        ctx = Context(model, (torch.from_numpy(x_test[:2]),), data, None, ReportConfig())  # type: ignore[arg-type]
        run(ctx, EvaluationConfig(**options))  # type: ignore[arg-type]
    seconds = time.process_time() - start
    return {"seconds": seconds, "import": imported, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=4000)
    parser.add_argument("--tsne-max", action="store_true", help="also embed 5,000 points (needs --samples >= 5000)")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.samples)))
        return
    if args.tsne_max:
        CASES["metrics+gallery+embedding 5000 (t-SNE)"] = {"gallery": 8, "embedding_samples": 5000}
    results = {}
    for name in CASES:
        proc = subprocess.run([sys.executable, __file__, "--case", name, "--samples", str(args.samples)],
                              capture_output=True, text=True, check=True)
        results[name] = json.loads(proc.stdout.strip().splitlines()[-1])
    base = results["forward"]
    print(f"(importing scikit-learn, once per process and outside the times below: {base['import']:.2f} CPU s)")
    print(f"ResNet-like (2 stages, width 16) on {args.samples:,} 3x32x32 test samples, 10 classes, one torch thread")
    print(f"{'case':42s} {'CPU s':>8s} {'x forward':>10s} {'peak MB':>8s} {'x forward':>10s}")
    for name, r in results.items():
        print(f"{name:42s} {r['seconds']:8.2f} {r['seconds'] / base['seconds']:10.2f} {r['peak_mb']:8.0f} "
              f"{r['peak_mb'] / base['peak_mb']:10.2f}")


if __name__ == "__main__":
    main()

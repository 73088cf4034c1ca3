"""Benchmark: cost of one loss-landscape grid point relative to one plain forward pass (+ loss) over the
same data, for nnreport and, when installed, the `loss-landscapes` package (pip install loss-landscapes).

    python3 benchmarks/landscape.py [--steps 11] [--samples 256] [--threads 1]

Goal: nnreport ≤ 1.1× a forward pass per point. Both tools get the same model (the trained demo CNN),
data and grid; the baseline is measured in the same run, interleaved, and medians are reported.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=11)
    ap.add_argument("--samples", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 gives stable numbers on a busy box)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    import torch
    import torch.nn.functional as F

    import nnreport
    from nnreport.datasets import load_builtin
    from nnreport.zoo import trained_digits_cnn

    torch.set_num_threads(args.threads)
    model = trained_digits_cnn().model.eval()
    data = load_builtin("digits")
    x = torch.from_numpy(data.x_test[:args.samples])
    y = torch.from_numpy(data.y_test[:args.samples])
    points = args.steps ** 2

    def forward() -> float:
        """One plain forward pass + loss, averaged over as many passes as the grid has points (so that
        both sides run for about as long, under the same load)."""
        with torch.inference_mode():
            t = time.perf_counter()
            for _ in range(points):
                float(F.cross_entropy(model(x), y))
            return (time.perf_counter() - t) / points

    def ours() -> float:
        t = time.perf_counter()
        nnreport.loss_landscape(model, (x, y), steps=args.steps, samples=args.samples, batch_size=args.samples)
        return (time.perf_counter() - t) / points

    def theirs() -> float | None:
        try:
            import loss_landscapes
            import loss_landscapes.metrics
        except ImportError:
            return None
        metric = loss_landscapes.metrics.Loss(F.cross_entropy, x, y)
        t = time.perf_counter()
        loss_landscapes.random_plane(model, metric, distance=1.0, steps=args.steps, normalization="filter",
                                     deepcopy_model=True)
        return (time.perf_counter() - t) / points

    with torch.inference_mode():
        for _ in range(3):
            model(x)
    base, mine, peer = [], [], []
    for _ in range(args.repeats):  # interleaved, so load changes on the machine hit all three alike
        base.append(forward())
        mine.append(ours())
        base.append(forward())
        p = theirs()
        if p is not None:
            peer.append(p)
    print(f"model: trained digits CNN ({sum(p.numel() for p in model.parameters()):,} parameters), "
          f"{args.samples} samples, {args.steps}x{args.steps} grid, {torch.get_num_threads()} thread(s), "
          f"{args.repeats} interleaved repeats (median | best)")
    fwd_med, fwd_min = statistics.median(base), min(base)
    print(f"plain forward + loss:      {1000 * fwd_med:7.2f} | {1000 * fwd_min:7.2f} ms")
    for name, times in (("nnreport", mine), ("loss-landscapes", peer)):
        if times:
            med, best = statistics.median(times), min(times)
            print(f"{name + ' per point:':<27}{1000 * med:7.2f} | {1000 * best:7.2f} ms   = "
                  f"{med / fwd_med:.3f}x | {best / fwd_min:.3f}x forward")
    if not peer:
        print("loss-landscapes: not installed (pip install loss-landscapes) — skipped")


if __name__ == "__main__":
    main()

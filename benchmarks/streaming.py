"""Streaming benchmark: peak memory and time of loading an image folder and reading its first test inputs, at two
folder sizes, against the eager baseline (decode every image into one array, as nnreport did before issue 12)
measured in the same run (the eager baseline at 224 px and thousands of images needs gigabytes, hence
the 160-px default). Each measurement runs in its own process; peak memory is that process's max RSS.

    python3 benchmarks/streaming.py [--images 600 1800] [--size 160] [--read 128]

Goal (issue 12): peak memory does not grow with the folder's size (ratio large/small ≈ 1.0 for streaming).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
import numpy as np
mode, folder, n = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
start = time.perf_counter()
if mode == "stream":
    from nnreport.loading import load_data
    ds = load_data(str(folder))
    x = ds.x_test[:n]
else:  # the eager baseline: every image decoded, resized to one size, stacked, normalised
    from PIL import Image
    files = sorted(f for c in sorted(folder.iterdir()) for f in sorted(c.iterdir()))
    ims = [Image.open(f) for f in files]
    size = ims[0].size
    x = np.stack([np.asarray(im.convert("RGB").resize(size), dtype=np.float32) / 255.0 for im in ims]).transpose(0, 3, 1, 2)
    x = (x - x.mean(axis=(0, 2, 3), keepdims=True)) / x.std(axis=(0, 2, 3), keepdims=True)
    x = x[:n]
elapsed = time.perf_counter() - start
print(json.dumps({"seconds": elapsed, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "shape": list(x.shape)}))
"""


def make_folder(root: Path, count: int, size: int) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
    for i in range(count):
        folder = root / f"class{i % 4}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.roll(base, i, axis=1)).save(folder / f"{i:05d}.jpg", quality=85)


def measure(mode: str, folder: Path, n: int) -> dict[str, float]:
    proc = subprocess.run([sys.executable, "-c", CHILD, mode, str(folder), str(n)], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{mode} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, nargs=2, default=[600, 1800], metavar=("SMALL", "LARGE"))
    parser.add_argument("--size", type=int, default=160, help="image side in pixels")
    parser.add_argument("--read", type=int, default=128, help="test inputs read (max_samples)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results: dict[tuple[str, int], dict[str, float]] = {}
        for count in args.images:
            folder = Path(tmp) / f"f{count}"
            t = time.perf_counter()
            make_folder(folder, count, args.size)
            print(f"folder of {count} {args.size}-px JPEGs written in {time.perf_counter() - t:.1f} s", flush=True)
            for mode in ("stream", "eager"):
                r = results[(mode, count)] = measure(mode, folder, args.read)
                print(f"  {mode:<6} {count:>6} images: {r['seconds']:6.2f} s, peak {r['peak_mb']:7.1f} MB, "
                      f"read {tuple(r['shape'])}", flush=True)
    small, large = args.images
    for mode in ("stream", "eager"):
        a, b = results[(mode, small)], results[(mode, large)]
        print(f"{mode}: peak memory large/small = {b['peak_mb'] / a['peak_mb']:.2f} "
              f"({large / small:.0f}x the images); time large/small = {b['seconds'] / a['seconds']:.2f}")
    for count in args.images:
        s, e = results[("stream", count)], results[("eager", count)]
        print(f"{count} images: streaming/eager peak memory = {s['peak_mb'] / e['peak_mb']:.2f}, "
              f"time = {s['seconds'] / e['seconds']:.2f}")


if __name__ == "__main__":
    main()

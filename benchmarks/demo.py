"""Demo benchmark: wall time and site size of `nnreport demo`, and byte-identity of two cold builds.

Goals (issue 2): <= 60 s on 2 cores from a cold cache (training included), <= 5 MB for the multi-page site.
Prints each measurement next to its goal as a ratio (<= 1.00 meets it).

    python3 benchmarks/demo.py [--preset standard]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL_SECONDS = 60.0
GOAL_BYTES = 5 * 1024 * 1024


def build(out: Path, cache: Path, *extra: str) -> float:
    env = {**os.environ, "NNREPORT_CACHE_DIR": str(cache)}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "nnreport", "demo", "--out", str(out), *extra],
                          env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"demo failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return elapsed


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default="standard")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cold = build(root / "a", root / "cache-a", "--preset", args.preset, "--no-timings")
        warm = build(root / "a2", root / "cache-a", "--preset", args.preset, "--no-timings")
        build(root / "b", root / "cache-b", "--preset", args.preset, "--no-timings")
        site = files(root / "a")
        total = sum(len(v) for k, v in site.items() if not k.startswith("inspection/"))
        bundle = sum(len(v) for k, v in site.items() if k.startswith("inspection/"))
        same = site == files(root / "b")
        diff = sorted(k for k in set(site) | set(files(root / "b")) if site.get(k) != files(root / "b").get(k))
        print(f"preset                     {args.preset}")
        print(f"cold demo (training incl.) {cold:6.1f} s   ratio to the 60 s goal: {cold / GOAL_SECONDS:.2f}")
        print(f"warm demo (cached)         {warm:6.1f} s   ratio cached/cold: {warm / cold:.2f}")
        print(f"site size (no bundle)      {total / 1e6:6.2f} MB  ratio to the 5 MB goal: {total / GOAL_BYTES:.2f}")
        print(f"inspection bundle          {bundle / 1e6:6.2f} MB")
        print(f"pages                      {sum(1 for k in site if k.endswith('.html'))}")
        print(f"two cold builds identical  {same}" + ("" if same else f"  (differ: {diff[:10]})"))


if __name__ == "__main__":
    main()

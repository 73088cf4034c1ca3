"""The grid split over two torch.distributed CPU processes (gloo, launched by torchrun) equals one process.

Run as a script by torchrun: each rank computes its share of the grid and every rank gets the whole grid."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _worker(out: str) -> None:
    import torch

    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "tests"))
    import nnreport
    from nnreport.landscape.surface import Evaluator

    from models import TinyCNN

    torch.manual_seed(0)
    model = TinyCNN(channels=1).eval()
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(24, 1, 16, 16, generator=g), torch.randint(0, 10, (24,), generator=g)
    count = [0]
    original = Evaluator.at

    def counting(self: Evaluator, coeffs: object) -> tuple[float, float]:
        count[0] += 1
        return original(self, coeffs)  # type: ignore[arg-type]

    Evaluator.at = counting  # type: ignore[method-assign]
    grid = nnreport.loss_landscape(model, (x, y), steps=5, seed=3)
    rank = int(os.environ.get("RANK", "0"))
    np.savez(f"{out}-rank{rank}.npz", loss=grid.loss, accuracy=grid.accuracy, count=count[0])
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def _launch(nproc: int, out: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           __file__, str(out)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]


def test_two_processes_equal_one(tmp_path: Path) -> None:
    pytest.importorskip("torch.distributed")
    _launch(1, tmp_path / "one")
    _launch(2, tmp_path / "two")
    one = np.load(tmp_path / "one-rank0.npz")
    two = [np.load(tmp_path / f"two-rank{r}.npz") for r in (0, 1)]
    for part in two:  # every rank holds the gathered grid, identical to the single-process one
        np.testing.assert_array_equal(part["loss"], one["loss"])
        np.testing.assert_array_equal(part["accuracy"], one["accuracy"])
    assert int(one["count"]) == 25
    assert sorted(int(p["count"]) for p in two) == [12, 13], "each rank must compute only its share"


if __name__ == "__main__":
    _worker(sys.argv[1])

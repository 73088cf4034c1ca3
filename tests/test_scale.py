"""Devices, precision, the memory budget, time-budgeted presets and data-parallel analyses (issue 11)."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import nnreport
from nnreport import planning
from nnreport.cli import EXIT_USAGE, main
from nnreport.config import ReportConfig
from nnreport.device import parse_bytes
from nnreport.errors import UsageError

from models import TinyCNN

ROOT = Path(__file__).resolve().parents[1]
HAS_CUDA = torch.cuda.is_available()


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nnreport", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})


# ---- devices -------------------------------------------------------------------------------------------

@pytest.mark.skipif(HAS_CUDA, reason="needs a machine without CUDA, to ask for a device that is not there")
@pytest.mark.parametrize("device", ["cuda", "cuda:3"])
def test_a_device_that_is_not_there_is_a_one_line_usage_error(device: str, tmp_path: Path) -> None:
    done = _cli("build", "tests/models.py:TinyCNN", "--device", device, "--out", str(tmp_path / "r"))
    assert done.returncode == EXIT_USAGE
    assert done.stderr.count("\n") == 1 and "CUDA is not available" in done.stderr
    assert not (tmp_path / "r").exists()


def test_unknown_device_names_and_sizes_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", "tests/models.py:TinyCNN", "--device", "gpu"]) == EXIT_USAGE
    assert "unknown device 'gpu'" in capsys.readouterr().err
    assert main(["build", "tests/models.py:TinyCNN", "--memory-budget", "lots"]) == EXIT_USAGE
    assert "memory size" in capsys.readouterr().err
    with pytest.raises(UsageError):
        ReportConfig(precision="fp8")  # type: ignore[arg-type]
    assert parse_bytes("4GB") == 4 << 30 and parse_bytes("512MiB") == 512 << 20 and parse_bytes(1000) == 1000


def test_the_model_card_names_device_and_precision(tmp_path: Path) -> None:
    model = TinyCNN().eval()
    report = nnreport.Report(model, "digits", ReportConfig(only=("summary",), cache=False), device="cpu",
                             precision="bf16")
    report.save(tmp_path)
    prov = report.inspect().manifest.provenance
    assert (prov.device, prov.precision, prov.deterministic) == ("cpu", "bf16", None)
    assert "cpu · bf16" in (tmp_path / "index.html").read_text()


@pytest.mark.skipif(not HAS_CUDA, reason="needs CUDA")
def test_on_cuda_the_users_model_stays_on_the_cpu() -> None:  # pragma: no cover - no GPU in CI
    model = TinyCNN().eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    insp = nnreport.inspect(model, "digits", ReportConfig(preset="quick", cache=False, device="cuda"))
    assert all(str(p.device) == "cpu" for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert insp.manifest.provenance.device.startswith("cuda") and not insp.failed
    assert insp.manifest.provenance.deterministic is not None


def test_public_functions_take_a_device() -> None:
    model = TinyCNN().eval()
    x = torch.randn(2, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    a = nnreport.attribute(model, x, 1, method="gradient", device="cpu")
    b = nnreport.attribute(model, x, 1, method="gradient")
    assert np.array_equal(a, b)
    grid = nnreport.loss_landscape(model, (x, torch.tensor([0, 1])), steps=3, device="cpu")
    assert grid.loss.shape == (3, 3)
    assert nnreport.draw_graph(model, x, device="cpu").graph.nodes
    with pytest.raises(UsageError) if not HAS_CUDA else _nothing():
        nnreport.attribute(model, x, 1, method="gradient", device="cuda")


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


# ---- precision ---------------------------------------------------------------------------------------

def test_analyses_run_under_bf16_autocast_on_the_cpu() -> None:
    model = TinyCNN().eval()
    only = ("summary", "activations", "landscape", "relevance")
    analyses = {"landscape": {"steps": 3, "slice_steps": 3, "hessian_eigenvalues": 0, "samples": 32},
                "relevance": {"methods": ["gradient"], "perturbation_samples": 4, "steps": 3,
                              "randomisation_samples": 2, "cascade_steps": 1}}
    runs = {}
    for precision in ("fp32", "bf16"):
        config = ReportConfig(preset="quick", only=only, cache=False, precision=precision,  # type: ignore[arg-type]
                              analyses=analyses)
        runs[precision] = nnreport.inspect(model, "digits", config)
    low, full = runs["bf16"], runs["fp32"]
    assert not low.failed and all(r.status == "ok" for r in low.manifest.records)
    assert low.manifest.provenance.precision == "bf16"
    # bf16 forward passes agree with fp32 closely but not bit for bit: autocast really ran.
    lo, hi = low.results["landscape"].plane.loss, full.results["landscape"].plane.loss
    assert np.allclose(lo, hi, rtol=0.05) and not np.array_equal(lo, hi)
    assert abs(low.results["summary"].accuracy - full.results["summary"].accuracy) < 0.1
    # Attribution gradients stay fp32: the maps are the same bytes.
    assert np.array_equal(low.results["relevance"].maps["gradient"], full.results["relevance"].maps["gradient"])
    assert low.results["relevance"].perturbation is not None


# ---- memory budget -----------------------------------------------------------------------------------

def test_batch_sizes_come_from_the_memory_budget() -> None:
    from nnreport.context import Context

    model = TinyCNN().eval()
    x = torch.randn(1, 1, 16, 16)
    big = Context(model, (x,), memory_budget=1 << 30)
    small = Context(model, (x,), memory_budget=64 << 10)
    assert big.batch_size(256) == 256
    assert 1 <= small.batch_size(256) < 256
    assert small.batch_size(256, backward=True) <= small.batch_size(256)


def test_memory_budget_option_reaches_the_analyses() -> None:
    model = TinyCNN().eval()
    config = ReportConfig(only=("summary",), cache=False, memory_budget="32KB")
    insp = nnreport.inspect(model, "digits", config)
    full = nnreport.inspect(model, "digits", dataclasses.replace(config, memory_budget=None))
    assert insp.results["summary"].accuracy == full.results["summary"].accuracy


STREAM_SCRIPT = """
import resource, sys
import numpy as np, torch
sys.path.insert(0, "tests")
from nnreport.analyses.neurons import ActivationsConfig
from nnreport.context import Context
from nnreport.datasets import Dataset
from nnreport.neurons import layers as L
from nnreport.neurons.activations import _stream, choose_layers
from models import TinyCNN


class Lazy:
    '''Images made on demand (as a decoder would), so the data itself never sits in memory.'''
    def __init__(self, n, lo=0):
        self.n, self.lo = n, lo
        self.shape = (n, 1, 64, 64)
        self.dtype = np.dtype(np.float32)
    def __len__(self):
        return self.n
    def __getitem__(self, key):
        if isinstance(key, slice):
            start, stop, _ = key.indices(self.n)
            return Lazy(max(stop - start, 0), self.lo + start)
        return np.stack([self._one(self.lo + int(i)) for i in np.asarray(key).ravel()])
    def __array__(self, dtype=None, copy=None):
        return np.stack([self._one(self.lo + i) for i in range(self.n)])
    def _one(self, i):
        return np.random.default_rng(i).normal(size=(1, 64, 64)).astype(np.float32)


n = int(sys.argv[1])
torch.manual_seed(0)
model = TinyCNN(size=64).eval()
x = Lazy(n)
y = np.zeros(n, dtype=np.int64)
data = Dataset("lazy", "image", x, y, x, y)
ctx = Context(model, (torch.randn(1, 1, 64, 64),), data, memory_budget=64 << 20)
config = ActivationsConfig(max_examples=n, batch_size=64)
chosen = choose_layers(ctx, config)
state, seen, _ = _stream(ctx, config, chosen, L.module_map(model, [c.path for c in chosen]), [])
assert seen == n
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


@pytest.mark.slow
def test_topk_streaming_peak_memory_does_not_grow_with_the_samples(tmp_path: Path) -> None:
    """4× the samples (each 16 KB; 4 × 1500 of them would be 98 MB if kept) within 1.2× the peak."""
    script = tmp_path / "stream.py"
    script.write_text(STREAM_SCRIPT)

    def peak(n: int) -> int:
        done = subprocess.run([sys.executable, str(script), str(n)], capture_output=True, text=True, cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        return int(done.stdout.split()[-1])

    one, four = peak(1500), peak(6000)
    assert four <= 1.2 * one, f"peak grew from {one} KB to {four} KB"


# ---- time-budgeted presets ---------------------------------------------------------------------------

def test_tiny_models_keep_the_presets_settings() -> None:
    insp_plan: list[planning.BudgetPlan] = []
    nnreport.inspect(TinyCNN().eval(), "digits", ReportConfig(preset="quick", only=("summary",), cache=False),
                     on_plan=insp_plan.append)
    (plan,) = insp_plan
    assert plan.budget == 120.0 and plan.timing is not None and plan.choices == {}


def test_a_slow_model_gets_smaller_settings_and_explicit_options_win(monkeypatch: pytest.MonkeyPatch,
                                                                     tmp_path: Path) -> None:
    slow = planning.Timing(forward=0.05, backward=0.15)  # as a 224-px ResNet on two busy cores
    monkeypatch.setattr(planning, "measure", lambda ctx: slow)
    config = ReportConfig(preset="quick", only=("landscape",), cache=False,
                          analyses={"landscape": {"samples": 96, "hessian_eigenvalues": 0}})
    report = nnreport.Report(TinyCNN().eval(), "digits", config)
    insp = report.inspect()
    record = insp.record("landscape")
    assert record is not None and record.plan.startswith("landscape: ")
    assert "on 96 samples to fit the quick budget" in record.plan  # the user's 96 samples were kept
    res = insp.results["landscape"]
    assert res.steps < 9 and res.samples == 96
    report.save(tmp_path)
    assert "Time plan: landscape: " in (tmp_path / "landscape.html").read_text()


def test_shrink_respects_floors_and_the_budget() -> None:
    t = planning.Timing(0.01, 0.03)
    size = planning.DataSize(test=512, train=2000, image_side=224, checkpoints=0)
    from nnreport.analyses.landscape import LandscapeConfig

    values = dataclasses.asdict(LandscapeConfig())
    new = planning.shrink("landscape", values, set(), t, size, 30.0)
    assert planning.ESTIMATORS["landscape"](new, t, size) <= 30.0
    assert new["steps"] % 2 == 1 and new["steps"] >= 5
    floor = planning.shrink("landscape", values, {"steps"}, t, size, 0.001)
    assert floor["steps"] == values["steps"] and floor["samples"] == 16


def test_the_plan_optimises_fewer_units_before_it_cuts_steps_to_noise() -> None:
    """ResNet-50 on 2 cores (0.5 s a forward + backward): 160 units × 48 steps is an hour. Steps are valued
    most (4 steps barely leave the starting noise), so the plan optimises fewer units per layer first."""
    from nnreport.neurons.results import FeatvisConfig

    t = planning.Timing(0.125, 0.5)
    size = planning.DataSize(test=512, train=1000, image_side=224, checkpoints=0)
    values = {**dataclasses.asdict(FeatvisConfig()), "max_units": 32, "_per_layer": 32, "_layers": 5}
    new = planning.shrink("featvis", values, set(), t, size, 240.0)
    assert planning.ESTIMATORS["featvis"](new, t, size) <= 240.0
    assert new["max_units"] < 32 and new["steps"] >= 16


def test_saved_weights_are_not_charged_per_sample() -> None:
    """A linear layer saves its weight for the backward pass; it is there once, not once per sample."""
    from torch import nn

    from nnreport import memory

    model = nn.Sequential(nn.Linear(1000, 1000), nn.ReLU(), nn.Linear(1000, 10))
    saved = memory.saved_bytes(model, (torch.randn(1, 1000),))
    assert saved < 100_000  # the input and activations (kilobytes), not the 4 MB of weights
    assert memory.saved_bytes(model, (torch.randn(8, 1000),)) > 4 * saved  # activations do grow with the batch


def test_a_setting_above_the_data_size_is_still_cut() -> None:
    """128 landscape samples of a 64-sample data set: its first cut (to 89) saves nothing, but the plan must
    go on below 64 instead of stopping with the grid at its floor (ConvNeXt-T's quick plan at 224 px kept
    128 samples that way: 304 s estimated for a 36 s share)."""
    from nnreport.analyses.landscape import LandscapeConfig

    t = planning.Timing(0.125, 0.5)
    size = planning.DataSize(test=64, train=64, image_side=224, checkpoints=0)
    values = {**dataclasses.asdict(LandscapeConfig()), **LandscapeConfig.PRESETS["quick"]}
    new = planning.shrink("landscape", values, set(), t, size, 36.0)
    assert new["samples"] < 64 and new["hessian_samples"] < 64
    assert planning.ESTIMATORS["landscape"](new, t, size) < planning.ESTIMATORS["landscape"](
        {**values, "steps": 5, "slice_steps": 9, "lanczos_iterations": 4}, t, size) / 2


def test_the_plan_sizes_summary_and_evaluation_by_the_whole_test_split() -> None:
    """Both stream the whole test split (not the 512 samples of the per-sample analyses): a 10,000-image test
    set at 50 ms a forward pass is 500 s each, so the quick plan cuts them."""
    from nnreport.analyses.summary import SummaryConfig
    from nnreport.evaluation.config import EvaluationConfig

    t = planning.Timing(0.05, 0.15)
    size = planning.DataSize(test=512, train=50_000, image_side=224, checkpoints=0, whole_test=10_000)
    evaluation = dataclasses.asdict(EvaluationConfig())
    assert planning.ESTIMATORS["evaluation"](evaluation, t, size) > 500
    assert planning.ESTIMATORS["summary"](dataclasses.asdict(SummaryConfig()), t, size) == pytest.approx(500)
    new = planning.shrink("evaluation", evaluation, set(), t, size, 30.0)
    assert planning.ESTIMATORS["evaluation"](new, t, size) <= 30.0 and new["max_samples"] < 600
    kept = planning.shrink("evaluation", evaluation, {"max_samples"}, t, size, 30.0)
    assert kept["max_samples"] == 10_000  # the user's own setting wins


def test_build_plan_prints_the_plan_and_writes_nothing(tmp_path: Path) -> None:
    done = _cli("build", "tests/models.py:TinyCNN", "--data", "digits", "--preset", "quick", "--plan",
                "--out", str(tmp_path / "r"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("plan: preset quick on cpu")
    assert not (tmp_path / "r").exists()


# ---- torchrun ------------------------------------------------------------------------------------------

def _torchrun(nproc: int, out: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "nnreport", "build", "tests/models.py:TinyCNN", "--data", "digits", "--preset", "quick",
           "--only", "summary,evaluation,activations,featvis,relevance,facets,cnnvis", "--no-cache", "--no-timings", "--out", str(out)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.slow
def test_two_torchrun_processes_write_the_same_bytes_as_one(tmp_path: Path) -> None:
    """Summary accuracy, the evaluation's pass, top-k streaming, activation maximisation (by layer),
    relevance maps, region perturbation, facets and CNNVis statistics split over 2 gloo processes."""
    pytest.importorskip("torch.distributed")
    _torchrun(1, tmp_path / "one")
    _torchrun(2, tmp_path / "two")
    one = {p.relative_to(tmp_path / "one"): p.read_bytes() for p in (tmp_path / "one").rglob("*") if p.is_file()}
    two = {p.relative_to(tmp_path / "two"): p.read_bytes() for p in (tmp_path / "two").rglob("*") if p.is_file()}
    assert one.keys() == two.keys()
    assert [str(k) for k in one if one[k] != two[k]] == []
    manifest = json.loads(one[Path("inspection/manifest.json")])
    assert {r["name"]: r["status"] for r in manifest["records"]} == {
        "summary": "ok", "evaluation": "ok", "activations": "ok", "featvis": "ok", "relevance": "ok", "facets": "ok",
        "cnnvis": "ok"}


def test_work_is_shared_by_rank(monkeypatch: pytest.MonkeyPatch) -> None:
    from nnreport import distributed

    monkeypatch.setattr(distributed, "rank_world", lambda: (1, 3))
    assert distributed.share(8) == [1, 4, 7]


def test_a_failure_on_one_rank_is_raised_on_every_rank(monkeypatch: pytest.MonkeyPatch) -> None:
    """An item that raises travels through the gather, so no process waits for another in vain."""
    from nnreport import distributed

    monkeypatch.setattr(distributed, "rank_world", lambda: (0, 2))
    monkeypatch.setattr(distributed, "gather", lambda local, count: [local.get(i, i * 10) for i in range(count)])

    def fn(i: int) -> int:
        if i == 2:
            raise ValueError("item 2 is bad")
        return i

    assert distributed.map_shared(lambda i: i, [0, 1, 2, 3]) == [0, 10, 2, 30]
    with pytest.raises(ValueError, match="item 2 is bad"):
        distributed.map_shared(fn, [0, 1, 2, 3])
    with pytest.raises(ValueError, match="item 2 is bad"):
        list(distributed.stream_shared(fn, 4))


def test_timing_the_model_leaves_it_as_it_was() -> None:
    model = TinyCNN().eval()
    for p in model.parameters():
        p.grad = torch.full_like(p, 0.5)
    model.classifier.weight.requires_grad_(False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    timing = planning.measure(_context(model))
    assert timing.forward > 0 and timing.backward >= timing.forward
    assert all(torch.equal(p.grad, torch.full_like(p, 0.5)) for p in model.parameters())  # type: ignore[arg-type]
    assert not model.classifier.weight.requires_grad and not model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def _context(model: torch.nn.Module) -> object:
    from nnreport.context import Context

    return Context(model, (torch.randn(2, 1, 16, 16),))


def test_freed_memory_is_handed_back_before_each_analysis(monkeypatch: pytest.MonkeyPatch) -> None:
    """Heap blocks an analysis freed are returned to the system before the next one starts, so that each
    analysis's peak starts from what is live, not from the last one's peak."""
    from nnreport import memory

    from models import TinyCNN

    calls: list[int] = []
    monkeypatch.setattr(memory, "release_freed_memory", lambda: calls.append(1) or True)
    nnreport.inspect(TinyCNN().eval(), "digits", ReportConfig(preset="quick", only=("summary", "graph"), cache=False))
    assert len(calls) == 2

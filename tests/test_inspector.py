"""The inspector: dependency order, skips with reasons, caching, and a model left exactly as it was."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch

import nnreport
from nnreport.analyses import REGISTRY, analysis, ordered
from nnreport.cache import ResultCache
from nnreport.config import ReportConfig
from nnreport.errors import Skipped, UsageError
from nnreport.scoped import model_state

from models import ZOO, TinyCNN


def _snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_every_analysis_leaves_the_model_untouched() -> None:
    torch.manual_seed(0)
    model = TinyCNN()
    model.train()  # an unusual but legal state that analyses must restore
    model.features[0].weight.requires_grad_(False)
    x = torch.from_numpy(nnreport.load_builtin("digits").x_test[:4])
    with torch.no_grad():
        model.eval()
        before_out = model(x)
        model.train()
    params, state = _snapshot(model), model_state(model)
    insp = nnreport.inspect(model, "digits", ReportConfig(preset="quick", cache=False))
    assert {r.name for r in insp.manifest.records} == set(REGISTRY)
    assert model_state(model) == state
    after = _snapshot(model)
    assert all(torch.equal(params[k], after[k]) for k in params), "parameters or buffers changed"
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), before_out)


def test_dependency_order_and_unknown_names() -> None:
    names = [a.name for a in ordered()]
    for a in ordered():
        for dep in a.requires:
            assert names.index(dep) < names.index(a.name)
    with pytest.raises(UsageError, match="known analyses"):
        nnreport.inspect(ZOO["mlp"]()[0], config=ReportConfig(only=("nope",)), example_inputs=torch.randn(2, 4))


@dataclass(frozen=True)
class _Cfg:
    factor: float = 2.0


@dataclass(frozen=True)
class _Res:
    total: float
    values: np.ndarray


def test_cache_reuses_results_and_keys_on_config_and_weights(tmp_path: object) -> None:
    calls = []

    @analysis("zz_counted", title="Counted", config=_Cfg, result=_Res, requires=("summary",))
    def counted(ctx: nnreport.inspector.Context, config: _Cfg) -> _Res:  # type: ignore[name-defined]
        calls.append(config.factor)
        with torch.no_grad():
            total = float(ctx.forward(*ctx.example_inputs).sum()) * config.factor
        return _Res(total, np.arange(3) * config.factor)

    try:
        model, inputs = ZOO["mlp"]()
        cache = ResultCache(tmp_path)  # type: ignore[arg-type]
        config = ReportConfig(only=("zz_counted",))

        def run(cfg: ReportConfig) -> nnreport.Inspection:
            from nnreport.inspector import inspect
            from nnreport.loading import resolve

            return inspect(resolve(model, inputs=inputs), cfg, cache=cache)

        first = run(config)
        second = run(config)
        assert calls == [2.0] and np.array_equal(first.result("zz_counted").values, second.result("zz_counted").values)
        assert [r.name for r in first.manifest.records] == ["summary", "zz_counted"]  # its requirement came along
        run(ReportConfig(only=("zz_counted",), analyses={"zz_counted": {"factor": 3.0}}))
        assert calls == [2.0, 3.0]
        with torch.no_grad():
            model.net[0].weight.add_(1.0)
        run(config)
        assert calls == [2.0, 3.0, 2.0]
        run(ReportConfig(only=("zz_counted",), cache=False))
        assert len(calls) == 4
        with pytest.raises(UsageError, match="unknown option"):
            run(ReportConfig(only=("zz_counted",), analyses={"zz_counted": {"facter": 3.0}}))
    finally:
        REGISTRY.pop("zz_counted")


def test_skipped_analysis_records_its_reason() -> None:
    @analysis("zz_skips", title="Needs labels", config=_Cfg, result=_Res)
    def skips(ctx: object, config: _Cfg) -> _Res:
        raise Skipped("the data has no labels")

    try:
        model, inputs = ZOO["mlp"]()
        insp = nnreport.inspect(model, config=ReportConfig(only=("zz_skips",)), example_inputs=inputs)
        record = insp.record("zz_skips")
        assert record is not None and record.status == "skipped" and "no labels" in record.message
    finally:
        REGISTRY.pop("zz_skips")


@pytest.mark.parametrize("name", sorted(ZOO))
def test_summary_on_every_architecture(name: str) -> None:
    model, inputs = ZOO[name]()
    insp = nnreport.inspect(model, config=ReportConfig(only=("summary",)), example_inputs=inputs)
    s = insp.result("summary")
    assert s is not None, insp.record("summary")
    assert s.total_params == sum(p.numel() for p in model.parameters())
    assert s.rows[0].path == "(model)"


def test_mult_adds_of_known_layers() -> None:
    from nnreport.analyses.summary import mult_adds

    conv = torch.nn.Conv2d(3, 8, 3, padding=1, groups=1)
    x = torch.randn(1, 3, 10, 10)
    assert mult_adds(conv, [x], [conv(x)]) == 8 * 10 * 10 * 3 * 3 * 3
    grouped = torch.nn.Conv2d(4, 8, 3, padding=1, groups=2)
    x4 = torch.randn(1, 4, 5, 5)
    assert mult_adds(grouped, [x4], [grouped(x4)]) == 8 * 5 * 5 * 2 * 3 * 3
    lin = torch.nn.Linear(7, 5)
    assert mult_adds(lin, [torch.randn(2, 7)], [lin(torch.randn(2, 7))]) == 2 * 5 * 7


def test_reused_module_has_a_row_per_call_and_counts_parameters_once() -> None:
    model, inputs = ZOO["reused"]()
    s = nnreport.inspect(model, config=ReportConfig(only=("summary",)), example_inputs=inputs).result("summary")
    assert [r.call for r in s.rows if r.path == "shared"] == [0, 1]
    linear = [r for r in s.rows if r.path == "shared.0"]
    assert [r.call for r in linear] == [0, 1]
    assert linear[0].params == 8 * 8 + 8 and linear[1].params == 0
    assert linear[0].mult_adds == linear[1].mult_adds == 8 * 8  # per sample; both calls do the work


def test_an_interrupted_inspection_resumes_from_the_finished_analyses(tmp_path: object) -> None:
    calls: list[str] = []

    @analysis("zz_first", title="First", config=_Cfg, result=_Res, order=1)
    def first(ctx: object, config: _Cfg) -> _Res:
        calls.append("first")
        return _Res(1.0, np.zeros(2))

    @analysis("zz_second", title="Second", config=_Cfg, result=_Res, requires=("zz_first",), order=2)
    def second(ctx: object, config: _Cfg) -> _Res:
        calls.append("second")
        if calls.count("second") == 1:
            raise KeyboardInterrupt  # the user presses Ctrl-C during the second analysis
        return _Res(2.0, np.ones(2))

    try:
        from nnreport.inspector import inspect
        from nnreport.loading import resolve

        model, inputs = ZOO["mlp"]()
        cache = ResultCache(tmp_path)  # type: ignore[arg-type]
        config = ReportConfig(only=("zz_second",))
        with pytest.raises(KeyboardInterrupt):
            inspect(resolve(model, inputs=inputs), config, cache=cache)
        insp = inspect(resolve(model, inputs=inputs), config, cache=cache)
        assert calls == ["first", "second", "second"]  # the first analysis was not computed again
        assert insp.result("zz_second").total == 2.0
    finally:
        REGISTRY.pop("zz_first")
        REGISTRY.pop("zz_second")

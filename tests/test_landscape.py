"""Loss landscape: directions, surfaces, resume, the API and the analysis on the zoo."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nnreport import codec, scoped
from nnreport.landscape import loss_landscape
from nnreport.landscape.api import interpolate, symmetric_coords
from nnreport.landscape.directions import parameter_space, pca_directions, random_direction
from nnreport.landscape.hessian import hvp_operator, lanczos
from nnreport.landscape.shape import local_minima
from nnreport.landscape.surface import Evaluator, make_batches, sweep

from models import MLP, ZOO, ResNetLike, TinyCNN

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py: tiny models run faster on one thread


def _data(n: int = 48, channels: int = 3, size: int = 16, classes: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, channels, size, size, generator=g), torch.randint(0, classes, (n,), generator=g)


def _state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _bit_identical(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(
        a[k].dtype == b[k].dtype and torch.equal(a[k].view(-1).view(torch.uint8) if a[k].is_floating_point() else a[k],
                                                 b[k].view(-1).view(torch.uint8) if b[k].is_floating_point() else b[k])
        for k in a)


def test_filter_normalised_direction_matches_each_filter_norm() -> None:
    torch.manual_seed(0)
    model = ResNetLike()
    space = parameter_space(model)
    d = random_direction(space, torch.Generator().manual_seed(3), "filter")
    checked = 0
    for name, w, di in zip(space.names, space.base, d, strict=True):
        if w.dim() <= 1:
            assert not di.any(), f"{name}: biases and BatchNorm parameters must stay fixed by default"
            continue
        for k in range(w.shape[0]):  # slow and obvious: filter by filter
            assert float(di[k].norm()) == pytest.approx(float(w[k].norm()), rel=1e-5, abs=1e-7)
            checked += 1
    assert checked > 50


def test_other_normalisations_and_bias_bn_option() -> None:
    torch.manual_seed(0)
    space = parameter_space(ResNetLike())
    layer = random_direction(space, torch.Generator().manual_seed(3), "layer")
    for w, d in zip(space.base, layer, strict=True):
        if w.dim() >= 2:
            assert float(d.norm()) == pytest.approx(float(w.norm()), rel=1e-5)
    model = random_direction(space, torch.Generator().manual_seed(3), "model", include_bias_bn=True)
    total_d = torch.sqrt(sum((d.double() ** 2).sum() for d in model))
    total_w = torch.sqrt(sum((w.double() ** 2).sum() for w in space.base))
    assert float(total_d) == pytest.approx(float(total_w), rel=1e-5)
    with_bn = random_direction(space, torch.Generator().manual_seed(3), "filter", include_bias_bn=True)
    assert any(d.any() for w, d in zip(space.base, with_bn, strict=True) if w.dim() == 1)
    # Same seed, same draws: weights' parts do not depend on the bias/BN option.
    plain = random_direction(space, torch.Generator().manual_seed(3), "filter")
    assert all(torch.equal(a, b) for w, a, b in zip(space.base, plain, with_bn, strict=True) if w.dim() >= 2)


def test_zero_filters_do_not_divide_by_zero() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3), torch.nn.Linear(3, 2))
    with torch.no_grad():
        model[0].weight[1].zero_()
    d = random_direction(parameter_space(model), torch.Generator().manual_seed(0))
    assert all(torch.isfinite(t).all() for t in d)
    assert not d[0][1].any()


def test_grid_centre_equals_plain_loss_and_parameters_are_untouched() -> None:
    torch.manual_seed(0)
    model = ResNetLike().eval()
    model.train()  # a model left in training mode must come back in training mode
    x, y = _data()
    before = _state(model)
    grid = loss_landscape(model, (x, y), steps=5, span=0.5, seed=7)
    assert _bit_identical(before, _state(model)), "parameters or buffers changed"
    assert model.training and all(m.training for m in model.modules())
    with torch.no_grad():
        model.eval()
        plain = float(F.cross_entropy(model(x), y))
        acc = float((model(x).argmax(1) == y).float().mean())
        model.train()
    assert grid.loss.shape == (5, 5) and grid.x[2] == 0.0
    assert grid.loss[2, 2] == pytest.approx(plain, rel=1e-6)
    assert grid.accuracy[2, 2] == pytest.approx(acc)
    assert not np.allclose(grid.loss, plain), "the surface must vary away from the centre"
    assert grid.directions.shape == (2, sum(p.numel() for p in model.parameters()))


def test_grid_point_is_the_loss_of_the_moved_model() -> None:
    """Oracle: one grid point against a deep copy moved by hand."""
    import copy

    torch.manual_seed(0)
    model = TinyCNN(channels=1).eval()
    x, y = _data(32, 1)
    grid = loss_landscape(model, (x, y), steps=3, span=0.7, seed=2)
    d = grid.directions
    moved = copy.deepcopy(model)
    offset = 0
    with torch.no_grad():
        for p in moved.parameters():
            n = p.numel()
            delta = 0.7 * d[0, offset:offset + n] - 0.7 * d[1, offset:offset + n]  # (x=+0.7, y=-0.7)
            p.add_(torch.from_numpy(delta).view_as(p))
            offset += n
        expected = float(F.cross_entropy(moved(x), y))
    assert grid.loss[0, 2] == pytest.approx(expected, rel=1e-4)


def test_nonfinite_losses_are_recorded_not_raised() -> None:
    class Exploding(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(4, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.exp(torch.exp(self.fc(x) * 30))

    torch.manual_seed(0)
    x, y = torch.randn(16, 4), torch.randint(0, 3, (16,))
    grid = loss_landscape(Exploding(), (x, y), dims=1, steps=7, span=3.0)
    assert grid.loss.shape == (7,)
    assert (~np.isfinite(grid.loss)).any()


def test_resumed_run_equals_uninterrupted(tmp_path) -> None:
    torch.manual_seed(0)
    model = TinyCNN(channels=1).eval()
    x, y = _data(32, 1)
    full = loss_landscape(model, (x, y), steps=5, seed=4)

    class Stop(Exception):
        pass

    calls = []

    def interrupt(done: int, total: int) -> None:
        calls.append(done)
        if done == 11:
            raise Stop

    with pytest.raises(Stop):
        loss_landscape(model, (x, y), steps=5, seed=4, scratch=tmp_path, progress=interrupt)
    assert list(tmp_path.glob("*.npz")), "an interrupted run must leave its finished points behind"
    evaluated = []
    original = Evaluator.at

    def counting(self: Evaluator, coeffs: object) -> tuple[float, float]:
        evaluated.append(coeffs)
        return original(self, coeffs)  # type: ignore[arg-type]

    Evaluator.at = counting  # type: ignore[method-assign]
    try:
        resumed = loss_landscape(model, (x, y), steps=5, seed=4, scratch=tmp_path)
    finally:
        Evaluator.at = original  # type: ignore[method-assign]
    assert len(evaluated) == 25 - 11, "the resumed run must only compute the missing points"
    np.testing.assert_array_equal(resumed.loss, full.loss)
    np.testing.assert_array_equal(resumed.accuracy, full.accuracy)


def test_symmetric_coords() -> None:
    for steps in (1, 3, 9, 17, 21, 41):
        c = symmetric_coords(1.0, steps)
        assert len(c) == steps and np.array_equal(c, -c[::-1])
        assert c[steps // 2] == 0.0


def test_local_minima_counts_a_known_surface() -> None:
    xs = np.linspace(-2, 2, 21)
    gx, gy = np.meshgrid(xs, xs)
    assert local_minima(gx ** 2 + gy ** 2) == 1
    two = np.minimum((gx - 1) ** 2 + gy ** 2, (gx + 1) ** 2 + gy ** 2 + 0.1)
    assert local_minima(two) == 2


def test_lanczos_finds_extreme_eigenvalues_of_a_quadratic() -> None:
    """Oracle: a quadratic loss ½ wᵀAw has Hessian A; compare with numpy's eigenvalues."""
    g = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(30, 30, generator=g, dtype=torch.float64))
    eig = torch.cat([torch.tensor([-2.0, 9.0, 5.0]), torch.rand(27, generator=g, dtype=torch.float64)])
    a = q @ torch.diag(eig) @ q.T
    w = torch.nn.Parameter(torch.randn(30, dtype=torch.float64, generator=g))

    class Quad(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = w

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    batches = make_batches(torch.zeros(1, 1), torch.zeros(1), 1)
    hvp = hvp_operator(Quad(), [w], batches, loss_fn=lambda out, y: 0.5 * w @ a @ w)
    ritz = lanczos(hvp, 30, 30, torch.Generator().manual_seed(1))
    assert ritz[-1] == pytest.approx(9.0, rel=1e-6) and ritz[0] == pytest.approx(-2.0, rel=1e-6)


def test_interpolation_ends_at_both_checkpoints() -> None:
    torch.manual_seed(0)
    model = ResNetLike().eval()
    x, y = _data()
    start = _state(model)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    alphas, loss, _ = interpolate(model, start, (x, y), steps=5, lo=0.0, hi=1.0)
    with torch.no_grad():
        end_loss = float(F.cross_entropy(model(x), y))
        moved = _state(model)
        model.load_state_dict(start)
        start_loss = float(F.cross_entropy(model(x), y))
        model.load_state_dict(moved)
    assert loss[0] == pytest.approx(start_loss, rel=1e-5) and loss[-1] == pytest.approx(end_loss, rel=1e-5)


def test_pca_path_of_a_straight_line_lies_on_the_first_axis() -> None:
    torch.manual_seed(0)
    model = MLP()
    space = parameter_space(model)
    step = {n: torch.randn_like(w) for n, w in zip(space.names, space.base, strict=True)}
    states = [{n: w + (3 - k) * step[n] for n, w in zip(space.names, space.base, strict=True)} for k in range(4)]
    _, _, explained, path = pca_directions(space, states)
    assert explained[0] == pytest.approx(1.0, abs=1e-9)
    np.testing.assert_allclose(path[:, 1], 0.0, atol=1e-6 * abs(path[0, 0]))  # float32 states
    assert path[-1, 0] == pytest.approx(0.0, abs=1e-9)


def test_sweep_on_evaluator_is_deterministic() -> None:
    torch.manual_seed(0)
    model = MLP().eval()
    x, y = torch.randn(20, 4), torch.randint(0, 3, (20,))
    space = parameter_space(model)
    dirs = [random_direction(space, torch.Generator().manual_seed(0))]
    with scoped.restored_parameters(model):
        ev = Evaluator(model, space, dirs, make_batches(x, y, 8))
        a = sweep(ev, np.linspace(-1, 1, 5)[:, None])
        b = sweep(ev, np.linspace(-1, 1, 5)[::-1, None])
    np.testing.assert_array_equal(a[0], b[0][::-1])


# ---- the analysis -----------------------------------------------------------------------------------


def _run_analysis(name: str, data: object = None, checkpoints: tuple = ()) -> object:
    from nnreport.config import ReportConfig
    from nnreport.context import Context
    from nnreport.landscape.analysis import run
    from nnreport.landscape.results import LandscapeConfig, LandscapeResult

    model, inputs = ZOO[name]()
    cfg = ReportConfig(preset="quick", analyses={"landscape": dict(
        steps=5, slice_steps=5, samples=32, interpolation_steps=7, trajectory_steps=3, lanczos_iterations=4,
        hessian_samples=16)})
    ctx = Context(model, inputs, data, None, cfg, checkpoints=checkpoints)
    before = _state(model)
    config = cfg.analysis_config("landscape", LandscapeConfig)
    with scoped.untouched(model):
        result = run(ctx, config)
    assert _bit_identical(before, _state(model))
    assert isinstance(result, LandscapeResult)
    back = codec.from_files(LandscapeResult, *codec.to_files(result))
    np.testing.assert_array_equal(back.plane.loss, result.plane.loss)
    return result


def _image_data(channels: int, classes: int) -> object:
    from nnreport.loading import arrays_to_dataset

    g = np.random.default_rng(0)
    x = g.standard_normal((80, channels, 16, 16)).astype(np.float32)
    y = g.integers(0, classes, 80)
    return arrays_to_dataset("noise", x, y, None, 0)


@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo_runs_or_skips_clearly(name: str) -> None:
    from nnreport.errors import Skipped

    model, inputs = ZOO[name]()
    x = inputs[0]
    with torch.no_grad():
        out = model(*inputs)
    out = out if isinstance(out, torch.Tensor) else (next(iter(out.values())) if isinstance(out, dict) else out[0])
    data = None
    if len(inputs) == 1 and out.dim() == 2:
        from nnreport.loading import arrays_to_dataset

        g = np.random.default_rng(0)
        xs = (g.standard_normal((60, *x.shape[1:])).astype(np.float32) if x.is_floating_point()
              else g.integers(0, int(x.max()) + 1, (60, *x.shape[1:])))  # token ids stay ids
        data = arrays_to_dataset("noise", xs, g.integers(0, out.shape[1], 60), None, 0)
    try:
        result = _run_analysis(name, data)
    except Skipped as exc:
        assert data is None or "output" in str(exc)
        assert len(str(exc)) > 20
        return
    assert result.plane.loss.shape == (5, 5)
    assert np.isfinite(result.shape.centre_loss)


def test_analysis_with_checkpoints_draws_a_path() -> None:
    torch.manual_seed(0)
    model, _ = ZOO["tiny_cnn"]()
    space = parameter_space(model)
    g = torch.Generator().manual_seed(5)
    states = []
    for k in range(4):
        states.append({n: w + (3 - k) * 0.05 * torch.randn(w.shape, generator=g) if k < 3 else w.clone()
                       for n, w in model.state_dict().items()})
    data = _image_data(1, 10)
    result = _run_analysis("tiny_cnn", data, tuple(states))
    assert result.trajectory is not None and len(result.trajectory.path_x) == 5
    assert result.interpolation is not None
    assert result.sharpness is not None and result.sharpness.lambda_max >= result.sharpness.lambda_min
    assert space.size == result.directions.total_params


def test_sharpness_map_and_recomputed_batchnorm() -> None:
    """The thorough preset's |λmin/λmax| map, and BatchNorm statistics recomputed per point, on a BN model."""
    from nnreport.config import ReportConfig
    from nnreport.context import Context
    from nnreport.landscape.analysis import run
    from nnreport.landscape.results import LandscapeConfig

    model, inputs = ZOO["resnet"]()
    data = _image_data(3, 10)
    cfg = ReportConfig(preset="quick", analyses={"landscape": dict(
        steps=3, slice_steps=0, samples=16, hessian_samples=8, lanczos_iterations=4, sharpness_map_steps=3,
        batchnorm="recompute", recompute_samples=16)})
    before = _state(model)
    result = run(Context(model, inputs, data, None, cfg), cfg.analysis_config("landscape", LandscapeConfig))
    assert _bit_identical(before, _state(model))
    assert result.sharpness is not None and result.sharpness.map is not None
    assert result.sharpness.map.loss.shape == (3, 3) and np.isfinite(result.sharpness.map.loss).all()
    assert result.batchnorm == "recompute" and result.slice is None
    # Recomputed statistics give another loss at the centre than the running ones.
    running = loss_landscape(model, (torch.from_numpy(data.x_test[:16]), torch.from_numpy(data.y_test[:16])),
                             steps=1)
    assert result.shape.centre_loss != pytest.approx(float(running.loss[0, 0]))

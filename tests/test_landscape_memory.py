"""Memory of the loss landscape's Hessian work (benchmarks/landscape_memory.py measures it on ViT-B/16): Lanczos
keeps its basis and one float64 vector, a Hessian-vector product holds one batch's graph at a time, and a
transformer's attention has a second derivative. Live bytes are counted op by op with a dispatch mode."""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from nnreport.landscape.hessian import LARGE_BASIS, hvp_operator, lanczos
from nnreport.landscape.surface import make_batches

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py: tiny models run faster on one thread


class LiveBytes(TorchDispatchMode):
    """The most bytes held at once by tensors of at least `min_numel` elements made inside the mode (each
    storage once; a storage counts until the tensor that made it is freed)."""

    def __init__(self, min_numel: int = 1) -> None:
        super().__init__()
        self.min_numel = min_numel
        self.live: dict[int, int] = {}
        self.now = 0
        self.peak = 0

    def _free(self, ptr: int) -> None:
        self.now -= self.live.pop(ptr, 0)

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor) and t.numel() >= self.min_numel:
                storage = t.untyped_storage()
                ptr = storage.data_ptr()
                if ptr not in self.live:
                    self.live[ptr] = storage.nbytes()
                    self.now += storage.nbytes()
                    self.peak = max(self.peak, self.now)
                    weakref.finalize(t, self._free, ptr)
        return out


def test_lanczos_holds_its_basis_and_one_float64_vector() -> None:
    """A model-sized (float32) basis vector per iteration and the float64 w: nothing else model-sized, and the
    last HVP runs beside one basis vector (it needs α alone). The whole-vector arithmetic it replaced (float64
    copies of each basis vector, w - αq - βq' and w - (w·b) b making new vectors) held about four more
    float64 vectors at once: 3.5 GB more on ViT-B/16."""
    n, m = 3 * LARGE_BASIS, 4  # float32 basis, several slices
    diag = torch.linspace(-1.0, 2.0, n, dtype=torch.float64)
    held = []

    def hvp(v: torch.Tensor) -> torch.Tensor:
        scratch = torch.ones(2 * n, dtype=torch.float64)  # an HVP's own working memory (gradients and so on)
        held.append(mode.now)
        del scratch
        return torch.mul(diag, v)  # one new float64 vector, like hvp_operator

    with LiveBytes(min_numel=n) as mode:
        ritz = lanczos(hvp, n, m, torch.Generator().manual_seed(0))
    assert ritz[0] < -0.5 and ritz[-1] > 1.5 and len(ritz) == m
    # During an HVP: at most m - 1 basis vectors and the scratch; otherwise the basis and w.
    assert max(held) <= (4 * (m - 1) + 16) * n, [h / n for h in held]
    assert held[-1] <= (4 + 16) * n, [h / n for h in held]
    assert mode.peak <= max(4 * (m - 1) + 16, 4 * m + 8) * n, f"{mode.peak / n:.0f} bytes per parameter at once"


def test_lanczos_on_a_large_basis_matches_whole_vector_arithmetic() -> None:
    """Slice-by-slice float64 arithmetic: the Ritz values of whole-vector Lanczos, to float64 rounding."""
    n, m = LARGE_BASIS + 12345, 6
    g = torch.Generator().manual_seed(3)
    diag = torch.randn(n, generator=g, dtype=torch.float64)

    def hvp(v: torch.Tensor) -> torch.Tensor:
        return torch.mul(diag, v)

    ritz = lanczos(hvp, n, m, torch.Generator().manual_seed(1))
    q = torch.randn(n, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    basis = [(q / q.norm()).float()]
    alphas, betas = [], []
    for k in range(m):  # the reference: whole float64 vectors
        qk = basis[k].double()
        w = diag * qk
        alphas.append(float(w @ qk))
        w = w - alphas[-1] * qk - (betas[-1] * basis[k - 1].double() if k > 0 else 0.0)
        for b in basis:
            w = w - (w @ b.double()) * b.double()
        if k < m - 1:
            betas.append(float(w.norm()))
            basis.append((w / betas[-1]).float())
    t = np.diag(alphas) + np.diag(betas, 1) + np.diag(betas, -1)
    np.testing.assert_allclose(ritz, np.linalg.eigvalsh(t), rtol=1e-12, atol=1e-12)


def test_hvp_holds_a_few_model_sized_vectors() -> None:
    """Measured with torch 2.13 at 18-20 bytes per parameter: the float64 result, the gradients (freed
    before the second backward pass), the product and autograd's own temporaries. Holding the gradients
    through the second pass took 22-24; concatenating float64 copies of each tensor's product, 32. Small
    batches, so that the parameters outweigh the activations."""
    torch.manual_seed(0)
    models = [torch.nn.Sequential(torch.nn.Linear(8, 1024), torch.nn.Tanh(), torch.nn.Linear(1024, 1024), torch.nn.Tanh(),
                                  torch.nn.Linear(1024, 3)),
              torch.nn.Sequential(torch.nn.Conv2d(3, 64, 3), torch.nn.ReLU(), torch.nn.Conv2d(64, 128, 3),
                                  torch.nn.ReLU(), torch.nn.Conv2d(128, 128, 3), torch.nn.Flatten(),
                                  torch.nn.Linear(128 * 4 * 4, 3))]
    g = torch.Generator().manual_seed(0)
    for model, x in zip(models, (torch.randn(8, 8, generator=g), torch.randn(8, 3, 10, 10, generator=g)), strict=True):
        y = torch.randint(0, 3, (8,), generator=g)
        params = list(model.eval().parameters())
        size = sum(p.numel() for p in params)
        v = torch.randn(size, generator=g)
        whole = hvp_operator(model, params, make_batches(x, y, 8))(v)
        with LiveBytes() as mode:
            batched = hvp_operator(model, params, make_batches(x, y, 4))(v)  # two batches, added in place
        torch.testing.assert_close(batched, whole, rtol=1e-4, atol=1e-6 * float(whole.abs().max()))
        assert mode.peak <= 22 * size, f"{mode.peak / size:.1f} bytes per parameter held at once"


def test_directions_summary_makes_no_model_sized_arrays() -> None:
    """The cosine of the two directions, tensor by tensor: stacking them as float16 and then float64 arrays
    took 1.6 GB on ViT-B/16, after the Hessian. Only directions small enough to store are flattened."""
    import tracemalloc

    from nnreport.landscape.analysis import _directions
    from nnreport.landscape.directions import parameter_space, random_direction
    from nnreport.landscape.results import LandscapeConfig

    model = torch.nn.Sequential(torch.nn.Linear(1000, 1000), torch.nn.Linear(1000, 1000))
    space = parameter_space(model)
    g = torch.Generator().manual_seed(0)
    dirs = [random_direction(space, g) for _ in range(2)]
    tracemalloc.start()
    try:
        big = _directions(space, dirs, LandscapeConfig(), 0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert big.vectors is None and big.moved_params == 2_000_000
    assert peak < 1 << 20, f"{peak / 2**20:.0f} MB of arrays"
    small = _directions(space, dirs, LandscapeConfig(store_directions_max=4_000_000), 0)
    assert small.vectors is not None and small.vectors.shape == (2, 2_000_000)
    a, b = small.vectors.astype(np.float64)
    assert big.cosine == small.cosine == round(float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b))), 6)


def test_hvp_of_an_attention_model() -> None:
    """scaled_dot_product_attention's fused CPU kernel has no double backward; the HVP uses the math kernel
    (before, a ViT's sharpness was left out with 'derivative for ..._flash_attention_..._backward')."""

    class Attention(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.mha = torch.nn.MultiheadAttention(16, 2, batch_first=True)
            self.head = torch.nn.Linear(16, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h, _ = self.mha(x, x, x, need_weights=False)
            return self.head(h.mean(1))

    torch.manual_seed(0)
    model = Attention().eval()
    params = list(model.parameters())
    x, y = torch.randn(4, 5, 16), torch.tensor([0, 1, 2, 0])
    v = torch.randn(sum(p.numel() for p in params), dtype=torch.float64)
    hv = hvp_operator(model, params, make_batches(x, y, 4))(v)
    # The oracle: a central difference of the gradient along v.
    eps = 1e-3
    grads = []
    for sign in (1.0, -1.0):
        with torch.no_grad():
            for p, c in zip(params, v.split([p.numel() for p in params]), strict=True):
                p.add_(sign * eps * c.view_as(p).float())
        loss = torch.nn.functional.cross_entropy(model(x), y)
        grads.append(torch.cat([gr.reshape(-1) for gr in torch.autograd.grad(loss, params)]).double())
        with torch.no_grad():
            for p, c in zip(params, v.split([p.numel() for p in params]), strict=True):
                p.sub_(sign * eps * c.view_as(p).float())
    fd = (grads[0] - grads[1]) / (2 * eps)
    torch.testing.assert_close(hv, fd, rtol=0.05, atol=2e-3)


def test_hessian_without_the_copies_leaves_the_model_as_it_was() -> None:
    """Without a sharpness map the Hessian runs after the restore, with the copy of the trained values freed:
    the sweeps (BatchNorm statistics recomputed at every point) are undone first, and the Hessian moves
    nothing, so parameters and buffers end bit-identical, and the Ritz values are those of the trained model."""
    from nnreport.config import ReportConfig
    from nnreport.context import Context
    from nnreport.landscape.analysis import run
    from nnreport.landscape.directions import parameter_space
    from nnreport.landscape.hessian import sharpness
    from nnreport.landscape.results import LandscapeConfig
    from nnreport.loading import arrays_to_dataset

    from models import ZOO

    model, inputs = ZOO["resnet"]()
    g = np.random.default_rng(0)
    data = arrays_to_dataset("noise", g.standard_normal((40, 3, 16, 16)).astype(np.float32), g.integers(0, 10, 40),
                             None, 0)
    cfg = ReportConfig(preset="quick", analyses={"landscape": dict(
        steps=3, slice_steps=0, samples=16, hessian_samples=8, lanczos_iterations=4, batchnorm="recompute",
        recompute_samples=16)})
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    ctx = Context(model, inputs, data, None, cfg)
    result = run(ctx, cfg.analysis_config("landscape", LandscapeConfig))
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k].view(-1).view(torch.uint8) if before[k].is_floating_point() else before[k],
                           after[k].view(-1).view(torch.uint8) if after[k].is_floating_point() else after[k])
               for k in before)
    assert result.sharpness is not None and result.sharpness.map is None
    # The same Ritz values from the untouched model directly.
    x, y = ctx.samples(8)
    params = parameter_space(model).tensors
    bs = max(1, ctx.batch_size(LandscapeConfig().batch_size, backward=True) // 3)
    with torch.enable_grad():
        model.eval()
        ritz = sharpness(model, params, make_batches(x, y, bs), 4, ctx.generator("landscape-lanczos"))
    assert result.sharpness.lambda_max == float(ritz[-1]) and result.sharpness.lambda_min == float(ritz[0])


def test_sharpness_map_keeps_lanczos_within_the_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """The map's Lanczos runs (half the iterations, at least 8) are capped like the main one by the vectors the
    memory budget holds: on ViT-B/16 the thorough preset's 15 would have kept 4.8 GB of basis."""
    from nnreport.config import ReportConfig
    from nnreport.context import Context
    from nnreport.landscape import hessian
    from nnreport.landscape.analysis import run
    from nnreport.landscape.results import LandscapeConfig
    from nnreport.loading import arrays_to_dataset

    from models import ZOO

    model, inputs = ZOO["tiny_cnn"]()
    size = sum(p.numel() for p in model.parameters())
    g = np.random.default_rng(0)
    data = arrays_to_dataset("noise", g.standard_normal((24, *inputs[0].shape[1:])).astype(np.float32),
                             np.arange(24) % 10, None, 0)
    cfg = ReportConfig(preset="quick", analyses={"landscape": dict(
        steps=3, slice_steps=0, samples=8, hessian_samples=4, lanczos_iterations=16, sharpness_map_steps=2)})
    seen: list[int] = []
    real = hessian.sharpness

    def counting(*args: Any) -> np.ndarray:
        seen.append(args[3])
        return real(*args)

    monkeypatch.setattr(hessian, "sharpness", counting)
    ctx = Context(model, inputs, data, None, cfg, memory_budget=4 * size * 5)  # five basis vectors
    result = run(ctx, cfg.analysis_config("landscape", LandscapeConfig))
    assert result.sharpness is not None and result.sharpness.iterations == 5
    assert seen == [5] * 5  # the trained point, then the map's four: min(max(8, 16 // 2), 5)

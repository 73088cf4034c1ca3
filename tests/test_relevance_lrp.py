"""LRP against slow float64 matrix-form oracles, plus the properties LRP must have."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from nnreport import scoped
from nnreport.relevance import attribute, explain, prepare

from models import MLP, ResNetLike, TinyCNN, resnet18_like

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py: tiny models run faster on one thread


RULES = ["zero", "epsilon", "gamma", "alpha2_beta1", "alpha1_beta0", "zplus", "flat", "wsquare", "zbox"]


def layer_matrix(layer: nn.Module, in_shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The layer as y = M x + c on flattened float64 vectors (bias c per output element)."""
    d = int(np.prod(in_shape))
    with torch.no_grad():
        c = layer(torch.zeros(1, *in_shape, dtype=torch.float64)).reshape(-1).numpy()
        basis = torch.eye(d, dtype=torch.float64).reshape(d, *in_shape)
        m = (layer(basis).reshape(d, -1).numpy() - c[None]).T
    return m, c


def oracle(rule: str, m: np.ndarray, c: np.ndarray, x: np.ndarray, r_out: np.ndarray, *, eps: float = 1e-6,
           gamma: float = 0.25, low: float = 0.0, high: float = 1.0, flat_m: np.ndarray | None = None) -> np.ndarray:
    """The rule written out with explicit contributions c_kj (outputs k, inputs j), in float64."""
    z = m @ x + c

    def spread(contrib: np.ndarray, denom: np.ndarray, rel: np.ndarray) -> np.ndarray:
        safe = np.where(denom >= 0, denom + 1e-9, denom - 1e-9)
        return (contrib * (rel / safe)[:, None]).sum(0)

    if rule in ("zero", "epsilon"):
        e = eps if rule == "epsilon" else 0.0
        return spread(m * x[None], z + e * np.where(z >= 0, 1, -1), r_out)
    if rule == "gamma":
        # outputs > 0: x⁺(w + γw⁺) + x⁻(w + γw⁻) (+ b + γb⁺); outputs ≤ 0: the same with the signs swapped
        xp, xn = x.clip(min=0), x.clip(max=0)
        up_m, dn_m = m + gamma * m.clip(min=0), m + gamma * m.clip(max=0)
        c_up = up_m * xp[None] + dn_m * xn[None]
        c_dn = dn_m * xp[None] + up_m * xn[None]
        pos = z > 0
        return (spread(c_up, c_up.sum(1) + c + gamma * c.clip(min=0), np.where(pos, r_out, 0))
                + spread(c_dn, c_dn.sum(1) + c + gamma * c.clip(max=0), np.where(pos, 0, r_out)))
    if rule == "zplus":
        cp = (m * x[None]).clip(min=0)
        return spread(cp, cp.sum(1), r_out)
    if rule in ("alpha2_beta1", "alpha1_beta0"):
        a, b = (2.0, 1.0) if rule == "alpha2_beta1" else (1.0, 0.0)
        cp, cn = (m * x[None]).clip(min=0), (m * x[None]).clip(max=0)
        return a * spread(cp, cp.sum(1) + c.clip(min=0), r_out) - b * spread(cn, cn.sum(1) + c.clip(max=0), r_out)
    if rule == "flat":
        assert flat_m is not None
        return spread(flat_m, flat_m.sum(1), r_out)
    if rule == "wsquare":
        return spread(m * m, (m * m).sum(1), r_out)
    if rule == "zbox":
        cb = m * x[None] - low * m.clip(min=0) - high * m.clip(max=0)
        return spread(cb, cb.sum(1), r_out)
    raise KeyError(rule)


def _layers() -> dict[str, tuple[nn.Module, tuple[int, ...]]]:
    torch.manual_seed(0)
    return {
        "linear": (nn.Linear(7, 5), (7,)),
        "linear_nobias": (nn.Linear(7, 5, bias=False), (7,)),
        "conv": (nn.Conv2d(2, 3, 3, padding=1), (2, 5, 5)),
        "conv_nobias_strided": (nn.Conv2d(2, 3, 3, stride=2, bias=False), (2, 6, 6)),
    }


@pytest.mark.parametrize("layer_name", list(_layers()))
@pytest.mark.parametrize("rule", RULES)
def test_rule_matches_matrix_oracle(rule: str, layer_name: str) -> None:
    layer, shape = _layers()[layer_name]
    layer = layer.double()
    model = nn.Sequential(layer, nn.Flatten()).double().eval()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, *shape, generator=g, dtype=torch.float64)
    low, high = float(x.min()) - 0.5, float(x.max()) + 0.5
    m, c = layer_matrix(layer, shape)
    flat_layer = copy.deepcopy(layer)
    with torch.no_grad():
        flat_layer.weight.fill_(1.0)
        if flat_layer.bias is not None:
            flat_layer.bias.zero_()
    flat_m, _ = layer_matrix(flat_layer, shape)
    targets = [0, 4, 2]
    got = attribute(model, x, targets, method="lrp", rule=rule, low=low, high=high)
    for i, t in enumerate(targets):
        xi = x[i].reshape(-1).numpy()
        z = m @ xi + c
        r_out = np.zeros_like(z)
        r_out[t] = z[t]
        want = oracle(rule, m, c, xi, r_out, low=low, high=high, flat_m=flat_m)
        np.testing.assert_allclose(got[i].reshape(-1), want, rtol=1e-6, atol=1e-9, err_msg=f"{rule} sample {i}")


def test_two_layer_composite_matches_chained_oracle() -> None:
    """epsilon_plus_flat on dense-ReLU-dense: flat at the input, ε on the dense layers above."""
    torch.manual_seed(3)
    l1, l2 = nn.Linear(6, 8).double(), nn.Linear(8, 4).double()
    model = nn.Sequential(l1, nn.ReLU(), l2).eval()
    x = torch.randn(2, 6, dtype=torch.float64)
    got = attribute(model, x, 1, method="lrp", composite="epsilon_plus_flat", epsilon=0.1)
    m1, c1 = layer_matrix(l1, (6,))
    m2, c2 = layer_matrix(l2, (8,))
    for i in range(2):
        xi = x[i].numpy()
        h = np.maximum(m1 @ xi + c1, 0)
        z = m2 @ h + c2
        r2 = np.zeros(4)
        r2[1] = z[1]
        r_h = oracle("epsilon", m2, c2, h, r2, eps=0.1)
        r_in = oracle("flat", m1, c1, xi, r_h, flat_m=np.ones_like(m1))
        np.testing.assert_allclose(got[i], r_in, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("factory", [lambda: MLP(), lambda: TinyCNN()])
def test_lrp_zero_equals_input_times_gradient_on_relu_nets(factory) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    model = factory().eval()
    x = torch.randn(4, 4) if isinstance(model, MLP) else torch.randn(4, 1, 16, 16)
    a = attribute(model, x, None, method="lrp", rule="zero")
    b = attribute(model, x, None, method="input_x_gradient")
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    assert np.abs(a).sum() > 0


class BiasFreeCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(1, 6, 3, padding=1, bias=False)
        self.c2 = nn.Conv2d(6, 6, 3, padding=1, bias=False)
        self.fc = nn.Linear(6 * 4 * 4, 5, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.c1(x))
        h = nn.functional.max_pool2d(h, 2)
        h = nn.functional.relu(self.c2(h), inplace=True) + h  # residual addition, in-place functional ReLU
        h = nn.functional.avg_pool2d(h, 2)
        return self.fc(h.view(len(h), -1))


@pytest.mark.parametrize("options", [dict(rule="zero"), dict(rule="zplus"), dict(rule="wsquare"), dict(rule="flat"),
                                     dict(composite="epsilon_plus_flat"), dict(composite="epsilon_plus"),
                                     dict(rule="epsilon", epsilon=1e-9)])
def test_conservation_on_bias_free_nets(options: dict) -> None:  # type: ignore[type-arg]
    torch.manual_seed(2)
    model = BiasFreeCNN().eval()
    x = torch.rand(4, 1, 16, 16) + 0.1
    e = explain(model, x, None, method="lrp", **options)
    sums = e.relevance.reshape(4, -1).sum(1)
    np.testing.assert_allclose(sums.numpy(), e.scores.numpy(), rtol=1e-4, atol=1e-5)
    assert not any("without an LRP rule" in n for n in e.notes), e.notes


def _randomise_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.3)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.2)
    return model


def test_batchnorm_folding_preserves_outputs_and_leaves_model_alone() -> None:
    torch.manual_seed(0)
    model = _randomise_bn(ResNetLike((1, 1), 8)).eval()
    x = torch.randn(3, 3, 16, 16)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    canon = prepare(model, x)
    assert len(canon.folded) == 6 and not canon.unfolded
    assert not any(isinstance(m, nn.BatchNorm2d) for m in canon.model.modules())
    with torch.no_grad():
        torch.testing.assert_close(canon.model(x), model(x), rtol=1e-4, atol=1e-5)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_conv_output_read_twice_is_not_folded() -> None:
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.bn, self.fc = nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Linear(2, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.conv(x)
            return self.fc((self.bn(h) + h).mean((2, 3)))

    model = _randomise_bn(Twice()).eval()
    x = torch.randn(2, 1, 6, 6)
    canon = prepare(model, x)
    assert not canon.folded and canon.unfolded == ["bn"]
    with torch.no_grad():
        torch.testing.assert_close(canon.model(x), model(x))


ALL_METHODS = ["gradient", "saliency", "sensitivity", "deconvnet", "guided_backprop", "input_x_gradient",
               "integrated_gradients", "smoothgrad", "gradcam", "occlusion", "lrp"]


def test_model_untouched_by_every_method() -> None:
    torch.manual_seed(0)
    model = _randomise_bn(ResNetLike((1, 1), 8))
    model.train()  # a model left in training mode must come back in training mode
    x = torch.randn(2, 3, 16, 16)
    state = scoped.model_state(model)
    params = {k: v.clone() for k, v in model.state_dict().items()}
    for method in ALL_METHODS:
        out = attribute(model, x, 1, method=method)
        assert out.shape == tuple(x.shape) and np.isfinite(out).all(), method
    assert scoped.model_state(model) == state
    for k, v in model.state_dict().items():
        assert torch.equal(v, params[k]), k


@pytest.mark.parametrize("composite", ["epsilon_plus_flat", "epsilon_gamma_box", "epsilon_alpha2_beta1", "epsilon_plus"])
def test_numerically_sane_on_residual_net_with_batchnorm(composite: str) -> None:
    model, (x,) = resnet18_like(32)
    _randomise_bn(model)
    x = torch.cat([x, torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(5))])
    e = explain(model, x, None, method="lrp", composite=composite)
    rel = e.relevance.reshape(2, -1)
    assert torch.isfinite(rel).all()
    scale = e.scores.abs().clamp(min=1e-3)
    # bounded: no relevance explosion (Captum reaches ~1e13 here); alpha-beta may amplify by at most α^depth
    bound = 1e4 if composite == "epsilon_alpha2_beta1" else 20.0
    assert (rel.abs().sum(1) / scale).max() < bound, (rel.abs().sum(1), e.scores)
    if composite in ("epsilon_plus", "epsilon_plus_flat"):
        assert (rel.sum(1) / scale).max() < 5.0


def test_batching_invariance() -> None:
    torch.manual_seed(0)
    model = TinyCNN().eval()
    x = torch.randn(5, 1, 16, 16)
    full = attribute(model, x, 3, method="lrp", composite="epsilon_gamma_box", low=-3.0, high=3.0)
    parts = np.concatenate([attribute(model, x[i:i + 2], 3, method="lrp", composite="epsilon_gamma_box",
                                      low=-3.0, high=3.0) for i in range(0, 5, 2)])
    np.testing.assert_allclose(full, parts, rtol=1e-4, atol=1e-6)


def test_unknown_operations_are_named() -> None:
    class Gated(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b, self.norm = nn.Linear(4, 6), nn.Linear(4, 6), nn.LayerNorm(6)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.norm(self.a(x) * torch.sigmoid(self.b(x))).cumsum(1).softmax(1)

    e = explain(Gated().eval(), torch.randn(3, 4), 0, method="lrp")
    text = " ".join(e.notes)
    # transformer operations have rules (lrp/attention.py); cumsum has none and is named
    for name in ("layer_norm → identity", "mul (activation × activation", "softmax → AttnLRP", "sigmoid",
                 "without an LRP rule (plain gradient): cumsum"):
        assert name in text, (name, e.notes)


def test_unknown_method_lists_known_ones() -> None:
    with pytest.raises(KeyError, match="integrated_gradients"):
        attribute(MLP().eval(), torch.randn(2, 4), 0, method="nope")
    with pytest.raises(KeyError, match="epsilon_plus_flat"):
        attribute(MLP().eval(), torch.randn(2, 4), 0, method="lrp", composite="nope")


@pytest.mark.parametrize("composite", ["epsilon_plus_flat", "epsilon_gamma_box", "epsilon_alpha2_beta1"])
def test_float32_agrees_with_float64_on_a_residual_net(composite: str) -> None:
    """Rounding must not be amplified: e.g. z⁻ taken as z − z⁺ is noise where a neuron has no negative inputs."""
    torch.manual_seed(0)
    model = _randomise_bn(ResNetLike((1, 1), 8)).eval()
    x = torch.randn(3, 3, 16, 16)
    opts = dict(composite=composite, low=-4.0, high=4.0)
    single = attribute(model, x, 2, method="lrp", **opts)
    double = attribute(copy.deepcopy(model).double(), x.double(), 2, method="lrp", **opts)
    scale = np.abs(double).max()
    assert np.abs(single - double).max() < 1e-3 * scale


@pytest.mark.parametrize("method", ["gradient", "integrated_gradients", "lrp"])
def test_batches_split_to_the_memory_budget_give_the_same_maps(method: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from nnreport.relevance import methods, prepare

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
                                torch.nn.Linear(4 * 6 * 6, 3)).eval()
    x = torch.randn(10, 1, 6, 6)
    canon = prepare(model, x)
    options = {"steps": 8} if method == "integrated_gradients" else {}
    whole = methods.explain(canon, x, None, method, **options)
    monkeypatch.setattr(methods, "SAVED_BYTES_PER_PASS", 1)  # one sample per pass
    canon_small = prepare(model, x)
    assert methods.samples_per_pass(canon_small, x) == 1
    parts = methods.explain(canon_small, x, None, method, **options)
    assert torch.allclose(whole.relevance, parts.relevance, atol=1e-6)
    assert torch.allclose(whole.scores, parts.scores)


def test_every_rule_name_has_one_table_entry_with_its_description() -> None:
    from nnreport.relevance.lrp import rules as lrp

    assert set(lrp.RULE_NAMES) == set(lrp.RULES) == set(RULES)
    for name in lrp.RULE_NAMES:
        assert lrp.Rule(name).describe()  # type: ignore[arg-type]
    with pytest.raises(KeyError, match="known rules: zero"):
        lrp.Rule("nonsense").describe()  # type: ignore[arg-type]


def test_stabilise_treats_both_zeros_as_positive() -> None:
    from nnreport.relevance.lrp.rules import stabilise

    z = torch.tensor([-0.0, 0.0, -2.0, 3.0])
    assert stabilise(z, 0.5).tolist() == [0.5, 0.5, -2.5, 3.5]


def test_a_mistyped_option_is_an_error_that_lists_the_options() -> None:
    with pytest.raises(TypeError, match="integrated_gradients has no option 'stpes'; its options: steps, baseline"):
        attribute(MLP().eval(), torch.randn(2, 4), 0, method="integrated_gradients", stpes=8)
    with pytest.raises(TypeError, match="gradient has no option 'steps'; its options: none"):
        attribute(MLP().eval(), torch.randn(2, 4), 0, method="gradient", steps=8)


def test_every_page_method_has_one_record_with_a_registered_method() -> None:
    from typing import get_args

    from nnreport.relevance.catalogue import RECORDS, Setting
    from nnreport.relevance.methods import METHODS
    from nnreport.relevance.results import MethodKey, RelevanceConfig

    assert list(RECORDS) == list(get_args(MethodKey))
    for record in RECORDS.values():
        options = record.options(RelevanceConfig(), Setting(0.0, 1.0, 0, 16))
        assert isinstance(options, METHODS[record.method].options) and record.settings(options)

"""LRP through transformers: float64 oracles per rule (LayerNorm identity, softmax AttnLRP, product split),
CP and AttnLRP against Input×Gradient on written-out copies, and conservation on bias-free transformers."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nnreport import scoped
from nnreport.relevance import attribute, explain

from models import TinyViT, TokenTransformer


@pytest.fixture(autouse=True, scope="module")
def one_thread():  # type: ignore[no-untyped-def]
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _one_hot_out(z: np.ndarray, t: int) -> np.ndarray:
    r = np.zeros_like(z)
    r[t] = z[t]
    return r


def _lrp0_linear(w: np.ndarray, x: np.ndarray, r: np.ndarray) -> np.ndarray:
    """LRP-0 through z = W x (no bias): R_j = Σ_k x_j w_kj / z_k · R_k."""
    z = w @ x
    return ((w * x[None]) * (r / z)[:, None]).sum(0)


def test_layer_norm_identity_rule_matches_matrix_oracle() -> None:
    """LayerNorm with its std held constant is the linear map M = diag(w/σ)(I − 11ᵀ/d) plus b: LRP-0 on it."""
    torch.manual_seed(0)
    d = 6
    ln, head = nn.LayerNorm(d).double(), nn.Linear(d, 3, bias=False).double()
    with torch.no_grad():
        ln.weight.uniform_(0.5, 1.5)
        ln.bias.uniform_(-0.3, 0.3)
    model = nn.Sequential(ln, head).eval()
    x = torch.randn(3, d, dtype=torch.float64)
    got = attribute(model, x, [0, 1, 2], method="lrp", rule="zero")
    wh = head.weight.detach().numpy()
    for i in range(3):
        xi = x[i].numpy()
        sigma = math.sqrt(xi.var() + ln.eps)
        m = np.diag(ln.weight.detach().numpy() / sigma) @ (np.eye(d) - np.ones((d, d)) / d)
        y = m @ xi + ln.bias.detach().numpy()
        r_y = _lrp0_linear(wh, y, _one_hot_out(wh @ y, i))
        want = ((m * xi[None]) * (r_y / y)[:, None]).sum(0)
        np.testing.assert_allclose(got[i], want, rtol=1e-6, atol=1e-10)


def test_softmax_attnlrp_rule_matches_oracle() -> None:
    """R_in = x ⊙ (R_out − s·ΣR_out) at the softmax."""
    torch.manual_seed(1)

    class SoftmaxHead(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.head = nn.Linear(5, 3, bias=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(torch.softmax(x, -1))

    model = SoftmaxHead().double().eval()
    x = torch.randn(4, 5, dtype=torch.float64)
    got = attribute(model, x, [0, 1, 2, 0], method="lrp", rule="zero")
    w = model.head.weight.detach().numpy()
    for i, t in enumerate([0, 1, 2, 0]):
        xi = x[i].numpy()
        s = np.exp(xi) / np.exp(xi).sum()
        r_s = _lrp0_linear(w, s, _one_hot_out(w @ s, t))
        want = xi * (r_s - s * r_s.sum())
        np.testing.assert_allclose(got[i], want, rtol=1e-6, atol=1e-10)
        assert abs(want.sum() - (w @ s)[t]) > 1e-3  # the rule is not conservative: the oracle shows the gap


def test_matmul_uniform_split_matches_oracle() -> None:
    """z = A·B of two activations: each operand gets half of the ε-rule's relevance."""
    torch.manual_seed(2)
    eps = 0.05

    class Product(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.head = nn.Linear(6, 2, bias=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            a, b = x[:, :12].reshape(-1, 3, 4), x[:, 12:].reshape(-1, 4, 2)
            return self.head(torch.matmul(a, b).flatten(1))

    model = Product().double().eval()
    x = torch.randn(3, 20, dtype=torch.float64)
    got = attribute(model, x, [0, 1, 0], method="lrp", rule="zero", epsilon=eps)
    w = model.head.weight.detach().numpy()
    for i, t in enumerate([0, 1, 0]):
        a, b = x[i, :12].numpy().reshape(3, 4), x[i, 12:].numpy().reshape(4, 2)
        z = a @ b
        r_z = _lrp0_linear(w, z.reshape(-1), _one_hot_out(w @ z.reshape(-1), t)).reshape(3, 2)
        share = 0.5 * r_z / (z + eps * np.where(z >= 0, 1, -1))  # (i, k)
        contrib = a[:, :, None] * b[None]                          # (i, j, k)
        r_a = (contrib * share[:, None, :]).sum(2)
        r_b = (contrib * share[:, None, :]).sum(0)
        np.testing.assert_allclose(got[i], np.concatenate([r_a.reshape(-1), r_b.reshape(-1)]), rtol=1e-6,
                                   atol=1e-10)


def test_gated_product_splits_relevance_in_half() -> None:
    torch.manual_seed(3)

    class Gated(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b, self.head = nn.Linear(4, 6, bias=False), nn.Linear(4, 6, bias=False), nn.Linear(6, 2, bias=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.a(x) * self.b(x))

    model = Gated().double().eval()
    x = torch.randn(3, 4, dtype=torch.float64)
    e = explain(model, x, 1, method="lrp", rule="zero")
    np.testing.assert_allclose(e.relevance.sum(1).numpy(), e.scores.numpy(), rtol=1e-6)
    assert any("uniform split" in k for k in e.audit.rules)


class Written(nn.Module):
    """One transformer block with attention written out (matmul + softmax or F.scaled_dot_product_attention).
    `oracle` makes it the plain-gradient copy whose Input×Gradient is an LRP treatment: "cp" detaches the
    LayerNorm std, the GELU ratio and the attention probabilities; "attnlrp" detaches the std and the GELU ratio
    and halves the gradient at each operand of the two products."""

    def __init__(self, features: int = 5, dim: int = 8, heads: int = 2, classes: int = 3, impl: str = "matmul",
                 oracle: str = "") -> None:
        super().__init__()
        self.heads, self.impl, self.oracle = heads, impl, oracle
        self.inp = nn.Linear(features, dim)
        self.ln = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.ff1, self.ff2 = nn.Linear(dim, 2 * dim), nn.Linear(2 * dim, dim)
        self.head = nn.Linear(dim, classes)

    def _ln(self, h: torch.Tensor) -> torch.Tensor:
        if not self.oracle:
            return self.ln(h)
        c = h - h.mean(-1, keepdim=True)
        return c / (c.detach().pow(2).mean(-1, keepdim=True) + self.ln.eps).sqrt() * self.ln.weight + self.ln.bias

    def _gelu(self, h: torch.Tensor) -> torch.Tensor:
        return F.gelu(h) if not self.oracle else h * (F.gelu(h) / h).detach()

    def _prod(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if self.oracle != "attnlrp":
            return a @ b
        return 0.5 * (a @ b.detach()) + 0.5 * (a.detach() @ b)

    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        if self.impl == "sdpa" and not self.oracle:
            return F.scaled_dot_product_attention(q, k, v)
        s = torch.softmax(self._prod(q / math.sqrt(q.shape[-1]), k.transpose(-2, -1)), -1)
        return self._prod(s.detach() if self.oracle == "cp" else s, v)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        n, t, d = h.shape
        q, k, v = self.qkv(self._ln(h)).reshape(n, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        h = h + self.proj(self._attend(q, k, v).transpose(1, 2).reshape(n, t, d))
        h = h + self.ff2(self._gelu(self.ff1(h)))
        return self.head(h.mean(1))


class WithMHA(nn.Module):
    """The same block with nn.MultiheadAttention and nn.LayerNorm (weights copied from a `Written`)."""

    def __init__(self, w: Written) -> None:
        super().__init__()
        d = w.proj.in_features
        self.inp, self.ln, self.ff1, self.ff2, self.head = w.inp, w.ln, w.ff1, w.ff2, w.head
        self.attn = nn.MultiheadAttention(d, w.heads, batch_first=True).to(w.inp.weight.dtype)
        with torch.no_grad():
            self.attn.in_proj_weight.copy_(w.qkv.weight)
            self.attn.in_proj_bias.copy_(w.qkv.bias)
            self.attn.out_proj.weight.copy_(w.proj.weight)
            self.attn.out_proj.bias.copy_(w.proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        a = self.ln(h)
        h = h + self.attn(a, a, a, need_weights=False)[0]
        h = h + self.ff2(F.gelu(self.ff1(h)))
        return self.head(h.mean(1))


def _pair(impl: str, oracle: str) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(4)
    model = Written(impl=impl).double().eval()
    ref = copy.deepcopy(model)
    ref.oracle = oracle
    return (WithMHA(model).eval() if impl == "mha" else model), ref


@pytest.mark.parametrize("impl", ["matmul", "sdpa", "mha"])
@pytest.mark.parametrize("attention", ["cp", "attnlrp"])
def test_lrp_equals_input_x_gradient_on_written_out_copy(impl: str, attention: str) -> None:
    model, ref = _pair(impl, attention)
    x = torch.randn(3, 4, 5, dtype=torch.float64)
    got = explain(model, x, [0, 1, 2], method="lrp", rule="zero", epsilon=1e-12, attention=attention)
    want = attribute(ref, x, [0, 1, 2], method="input_x_gradient")
    # LRP-0 keeps a 1e-9 stabiliser on every linear layer: agreement to ~1e-6 relative, not machine precision
    np.testing.assert_allclose(got.relevance.numpy(), want, rtol=1e-4, atol=1e-8)
    assert np.abs(want).sum() > 0
    rules = " ".join(got.audit.rules)
    assert "AttnLRP" in rules if attention == "attnlrp" else "constant (CP)" in rules
    assert not got.audit.unhandled, got.audit.unhandled


def test_cp_differs_from_attnlrp_and_plain_gradient() -> None:
    model, _ = _pair("matmul", "")
    x = torch.randn(2, 4, 5, dtype=torch.float64)
    cp = attribute(model, x, 0, method="lrp", rule="zero", attention="cp")
    full = attribute(model, x, 0, method="lrp", rule="zero", attention="attnlrp")
    ixg = attribute(model, x, 0, method="input_x_gradient")
    assert np.abs(cp - full).max() > 1e-4 and np.abs(full - ixg).max() > 1e-4


@pytest.mark.parametrize("composite", ["epsilon", "epsilon_box", "epsilon_gamma_box"])
def test_cp_conserves_on_bias_free_vit(composite: str) -> None:
    torch.manual_seed(5)
    model = TinyViT(bias=False).eval()
    x = torch.randn(4, 3, 16, 16)
    e = explain(model, x, None, method="lrp", composite=composite, attention="cp")
    sums, scores = e.relevance.reshape(4, -1).sum(1).numpy(), e.scores.numpy()
    np.testing.assert_allclose(sums, scores, rtol=0.05, atol=1e-4)
    assert not e.audit.unhandled, e.audit.unhandled
    attn = explain(model, x, None, method="lrp", composite=composite)  # AttnLRP: absorbs relevance by design
    assert np.abs(attn.relevance.reshape(4, -1).sum(1).numpy() - scores).max() > 0.05 * np.abs(scores).max()
    assert any("not conservative" in n for n in attn.notes)


def test_cp_conserves_on_bias_free_token_transformer() -> None:
    torch.manual_seed(6)
    model = TokenTransformer(bias=False).eval()
    ids = torch.randint(0, 20, (5, 8))
    e = explain(model, ids, None, method="lrp", composite="epsilon", attention="cp")
    assert e.relevance.shape == ids.shape
    np.testing.assert_allclose(e.relevance.sum(1).numpy(), e.scores.numpy(), rtol=0.05, atol=1e-4)


def test_token_ids_input_x_gradient_and_unsupported_methods() -> None:
    torch.manual_seed(7)
    model = TokenTransformer().eval()
    ids = torch.randint(0, 20, (2, 8))
    r = attribute(model, ids, 0, method="input_x_gradient")
    assert r.shape == (2, 8) and np.isfinite(r).all()
    from nnreport.relevance.methods import NotApplicable

    with pytest.raises(NotApplicable):
        attribute(model, ids, 0, method="smoothgrad")


def test_vit_lrp_leaves_the_model_untouched() -> None:
    torch.manual_seed(8)
    model = TinyViT().eval()
    x = torch.randn(2, 3, 16, 16)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        out = model(x)
    with scoped.hooks():
        attribute(model, x, None, method="lrp", composite="epsilon")
    with torch.no_grad():
        assert torch.equal(model(x), out)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not model.training


def test_unknown_attention_lists_known() -> None:
    with pytest.raises(KeyError, match="attnlrp, cp"):
        attribute(TinyViT().eval(), torch.randn(1, 3, 16, 16), 0, method="lrp", attention="full")


def _key_token_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Length-8 sequences over 20 tokens (key token 3 drawn out of the rest); label 1 iff token 3 occurs once."""
    rng = np.random.default_rng(seed)
    x = rng.integers(4, 20, (n, 8))
    y = rng.integers(0, 2, n)
    x[y == 1, rng.integers(0, 8, int(y.sum()))] = 3
    return x, y.astype(np.int64)


@pytest.fixture(scope="module")
def text_model() -> tuple[nn.Module, np.ndarray, np.ndarray]:
    """A small transformer trained until it reads the key token."""
    torch.manual_seed(0)
    model = TokenTransformer(vocab=20, length=8, dim=16, depth=1, heads=2, classes=2)
    x, y = _key_token_data(512, 0)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    for step in range(300):
        idx = torch.from_numpy(np.random.default_rng(step).integers(0, len(x), 64))
        loss = F.cross_entropy(model(xt[idx]), yt[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval(), *_key_token_data(64, 1)


@pytest.mark.parametrize("attention", ["attnlrp", "cp"])
def test_trained_text_classifier_puts_most_relevance_on_the_key_token(text_model, attention: str) -> None:  # type: ignore[no-untyped-def]
    model, x, y = text_model
    ids = torch.from_numpy(x)
    with torch.no_grad():
        pred = model(ids).argmax(1).numpy()
    assert (pred == y).mean() > 0.9
    pos = np.flatnonzero((y == 1) & (pred == 1))
    rel = attribute(model, ids[pos], 1, method="lrp", composite="epsilon", attention=attention)
    top = rel.argmax(1)
    hits = (x[pos, top] == 3).mean()
    assert hits > 0.8, hits


def test_token_page_shows_coloured_words(text_model, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import nnreport
    from nnreport.config import ReportConfig
    from nnreport.datasets import Dataset

    model, x, y = text_model
    data = Dataset("key-token", "sequence", x, y, x, y, class_names=("absent", "present"))
    # the `vocab` a dataset may carry (frozen dataclass: set as the loader would)
    object.__setattr__(data, "vocab", ["<pad>", "a", "b", "KEY<b>"] + [f"w{i}" for i in range(4, 20)])
    cfg = ReportConfig(preset="quick", only=("relevance",), timings=False, cache=False)
    insp = nnreport.inspect(model, data, cfg)
    res = insp.result("relevance")
    assert res.kind == "tokens" and res.words and len(res.words[0]) == 8
    ran = {m.key for m in res.methods if not m.skipped}
    assert {"input_x_gradient", "lrp_epsilon", "lrp_epsilon_cp"} <= ran
    assert res.perturbation is not None and res.perturbation.replacement == "token:0"
    attn = next(c for c in res.perturbation.curves if c.method == "lrp_epsilon")
    assert attn.morf_aopc > res.perturbation.random_aopc  # deleting the relevant token first hurts most
    nnreport.render(insp, tmp_path / "site")
    html = (tmp_path / "site" / "relevance.html").read_text()
    assert 'class="tok' in html and "KEY&lt;b&gt;" in html and "KEY<b>" not in html
    assert "padding token (id 0)" in html and "not conservative by design" in html
    assert "Conservation on these" in html  # the gap, stated on the AttnLRP and CP-LRP cards


class MaskedMHA(nn.Module):
    """nn.MultiheadAttention with everything the written-out version must honour: separate key/value sizes,
    bias_k/bias_v, a zero-attention slot, an attention mask and a key padding mask, returned weights."""

    def __init__(self) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(8, 2, kdim=6, vdim=5, add_bias_kv=True, add_zero_attn=True, batch_first=True)
        self.head = nn.Linear(8 + 9, 3)  # keys: 7 + bias_k + the zero slot

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = x[..., :8], x[..., 8:14], x[..., 14:19]
        t = x.shape[1]
        causal = torch.ones(t, t, dtype=torch.bool).triu(1)
        pad = torch.zeros(x.shape[0], t, dtype=torch.bool)
        pad[:, -1] = True
        out, w = self.attn(q, k, v, attn_mask=causal, key_padding_mask=pad, need_weights=True)
        return self.head(torch.cat([out.mean(1), w.mean(1)], 1))


@pytest.mark.parametrize("attention", ["attnlrp", "cp"])
def test_written_out_mha_keeps_masks_and_outputs(attention: str) -> None:
    torch.manual_seed(9)
    model = MaskedMHA().double().eval()
    x = torch.randn(3, 7, 19, dtype=torch.float64)
    with torch.no_grad():
        want = model(x)
    e = explain(model, x, [0, 1, 2], method="lrp", composite="epsilon", attention=attention)
    torch.testing.assert_close(e.scores, want[torch.arange(3), torch.tensor([0, 1, 2])])
    assert "multi_head_attention_forward → written out" in " ".join(e.audit.rules)
    assert np.isfinite(e.relevance.numpy()).all() and np.abs(e.relevance.numpy()).sum() > 0


class Norms(nn.Module):
    """RMSNorm built in and written by hand (x · rsqrt(mean x² + ε)), LayerNorm written with sqrt."""

    def __init__(self, hand: bool) -> None:
        super().__init__()
        self.hand = hand
        self.a, self.norm, self.head = nn.Linear(5, 6), nn.RMSNorm(6, eps=1e-6), nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.a(x)
        if self.hand:
            h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + 1e-6) * self.norm.weight
            c = h - h.mean(-1, keepdim=True)
            h = c / torch.sqrt(c.pow(2).mean(-1, keepdim=True) + 1e-5)
        else:
            h = F.layer_norm(self.norm(h), (6,), eps=1e-5)
        return self.head(h)


def test_rms_norm_and_hand_written_norms_hold_their_normaliser_constant() -> None:
    torch.manual_seed(10)
    built = Norms(hand=False).double().eval()
    hand = Norms(hand=True).double().eval()
    hand.load_state_dict(built.state_dict())
    x = torch.randn(4, 5, dtype=torch.float64)
    a = explain(built, x, 1, method="lrp", rule="zero")
    b = explain(hand, x, 1, method="lrp", rule="zero")
    np.testing.assert_allclose(a.relevance.numpy(), b.relevance.numpy(), rtol=1e-5, atol=1e-9)
    assert "rms_norm → identity (rms constant)" in a.audit.rules
    assert "rsqrt → constant (hand-written norm)" in b.audit.rules and "sqrt → constant (hand-written norm)" in b.audit.rules
    # identity rules: without biases the norms pass relevance on undiminished
    with torch.no_grad():
        built.a.bias.zero_()
        built.head.bias.zero_()
    c = explain(built, x, 1, method="lrp", rule="zero")
    np.testing.assert_allclose(c.relevance.sum(1).numpy(), c.scores.numpy(), rtol=1e-6)


def test_token_leaf_found_through_a_copy_of_the_ids() -> None:
    class Casting(TokenTransformer):
        def forward(self, tokens: torch.Tensor) -> torch.Tensor:
            return super().forward(tokens.long().clone())

    torch.manual_seed(11)
    model = Casting(bias=False).eval()
    ids = torch.randint(0, 20, (3, 8))
    e = explain(model, ids, 0, method="lrp", composite="epsilon", attention="cp")
    np.testing.assert_allclose(e.relevance.sum(1).numpy(), e.scores.numpy(), rtol=0.05, atol=1e-4)


class LlamaStyle(nn.Module):
    """A decoder block as Hugging Face code writes it: hand-written RMSNorm (rsqrt), attention with matmul,
    a causal mask from finfo.min, softmax in float32 via dtype=, and a SiLU-gated MLP; no biases."""

    def __init__(self, vocab: int = 30, dim: int = 16, heads: int = 2) -> None:
        super().__init__()
        self.heads = heads
        self.embed = nn.Embedding(vocab, dim)
        self.norm1, self.norm2 = nn.Parameter(torch.ones(dim)), nn.Parameter(torch.ones(dim))
        self.q, self.k, self.v, self.o = (nn.Linear(dim, dim, bias=False) for _ in range(4))
        self.gate, self.up, self.down = nn.Linear(dim, 32, bias=False), nn.Linear(dim, 32, bias=False), nn.Linear(32, dim, bias=False)
        self.head = nn.Linear(dim, 2, bias=False)

    @staticmethod
    def _rms(h: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        variance = h.to(torch.float32).pow(2).mean(-1, keepdim=True)
        return w * (h * torch.rsqrt(variance + 1e-6))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h = self.embed(ids)
        n, t, d = h.shape
        a = self._rms(h, self.norm1)
        q, k, v = (f(a).view(n, t, self.heads, -1).transpose(1, 2) for f in (self.q, self.k, self.v))
        w = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(d // self.heads)
        mask = torch.full((t, t), torch.finfo(w.dtype).min).triu(1)
        w = nn.functional.softmax(w + mask, dim=-1, dtype=torch.float32).to(q.dtype)
        h = h + self.o(torch.matmul(w, v).transpose(1, 2).reshape(n, t, d))
        m = self._rms(h, self.norm2)
        h = h + self.down(F.silu(self.gate(m)) * self.up(m))
        return self.head(h[:, -1])


def test_hugging_face_style_block_is_covered_and_cp_conserves() -> None:
    torch.manual_seed(12)
    model = LlamaStyle().eval()
    ids = torch.randint(0, 30, (4, 7))
    e = explain(model, ids, None, method="lrp", composite="epsilon", attention="cp")
    np.testing.assert_allclose(e.relevance.sum(1).numpy(), e.scores.numpy(), rtol=0.05, atol=1e-4)
    # pow feeds only the held normaliser, so no relevance passes it, but it is named (it has no rule)
    assert set(e.audit.unhandled) == {"pow"}, e.audit.unhandled
    rules = " ".join(e.audit.rules)
    assert "rsqrt → constant" in rules and "mul (activation × activation" in rules and "constant (CP)" in rules
    full = explain(model, ids, None, method="lrp", composite="epsilon")
    assert "matmul (activation × activation → ε, uniform split)" in full.audit.rules


def test_token_integrated_gradients_is_complete_in_embedding_space() -> None:
    """IG from the zero embedding: the token relevances sum to f(x) − f(zero embedding)."""
    torch.manual_seed(13)
    model = TokenTransformer().double().eval()
    ids = torch.randint(0, 20, (3, 8))
    e = explain(model, ids, 1, method="integrated_gradients", steps=256)
    with torch.no_grad():
        zero = model.head(_blocks(model, torch.zeros(3, 8, 16, dtype=torch.float64) + model.pos).mean(1))[:, 1]
    np.testing.assert_allclose(e.relevance.sum(1).numpy(), (e.scores - zero).numpy(), rtol=1e-3, atol=1e-4)


def _blocks(model: TokenTransformer, h: torch.Tensor) -> torch.Tensor:
    for block in model.blocks:
        h = block(h)
    return h

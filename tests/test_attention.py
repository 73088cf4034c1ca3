"""Attention maps found at the operation level, rollout, the attention analysis and its page."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import nnreport
from nnreport import codec
from nnreport.attention.compute import patch_grid, rollout
from nnreport.attention.results import AttentionResult
from nnreport.config import ReportConfig
from nnreport.relevance.lrp.transformer import attention_maps

from models import TinyCNN, TinyViT, TokenTransformer


@pytest.fixture(autouse=True, scope="module")
def one_thread():  # type: ignore[no-untyped-def]
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_recorded_maps_equal_multihead_attentions_own_weights() -> None:
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(8, 2, batch_first=True).eval()

    class Wrap(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.mha = mha

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.mha(x, x, x, need_weights=False)[0].mean(1)

    x = torch.randn(3, 5, 8)
    (maps,) = attention_maps(Wrap().eval(), x)
    with torch.no_grad():
        _out, want = mha(x, x, x, need_weights=True, average_attn_weights=False)
    torch.testing.assert_close(maps.reshape(3, 2, 5, 5), want)


class HandWritten(nn.Module):
    """Two attention layers, one with matmul + softmax, one with scaled_dot_product_attention."""

    def __init__(self, dim: int = 8, heads: int = 2) -> None:
        super().__init__()
        self.heads = heads
        self.qkv1, self.qkv2 = nn.Linear(dim, 3 * dim), nn.Linear(dim, 3 * dim)
        self.head = nn.Linear(dim, 3)

    def _split(self, h: torch.Tensor, layer: nn.Linear) -> torch.Tensor:
        n, t, d = h.shape
        return layer(h).reshape(n, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, d = x.shape
        q, k, v = self._split(x, self.qkv1)
        a = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(d // self.heads), -1)
        h = x + (a @ v).transpose(1, 2).reshape(n, t, d)
        q, k, v = self._split(h, self.qkv2)
        h = h + F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(n, t, d)
        return self.head(h.mean(1))


def test_hand_written_and_sdpa_attention_are_found() -> None:
    torch.manual_seed(1)
    model = HandWritten().eval()
    x = torch.randn(2, 6, 8)
    maps = attention_maps(model, x)
    assert [tuple(m.shape) for m in maps] == [(2, 2, 6, 6), (2, 2, 6, 6)]
    for m in maps:
        torch.testing.assert_close(m.sum(-1), torch.ones(2, 2, 6))
    assert torch.all(maps[1].triu(1) == 0)  # the causal mask held in the written-out sdpa
    with torch.no_grad():
        same = model(x)
    assert torch.equal(same, model(x).detach())


def test_no_attention_in_a_cnn() -> None:
    assert attention_maps(TinyCNN().eval(), torch.randn(1, 1, 16, 16)) == []


def test_rollout_matches_the_definition() -> None:
    rng = np.random.default_rng(0)
    layers = [rng.dirichlet(np.ones(4), size=(2, 3, 4)) for _ in range(3)]  # (samples, heads, q, k)
    got = rollout(layers)
    assert got is not None
    for s in range(2):
        want = np.eye(4)
        for m in layers:
            a = 0.5 * m[s].mean(0) + 0.5 * np.eye(4)
            want = (a / a.sum(1, keepdims=True)) @ want
        np.testing.assert_allclose(got[s], want)
    np.testing.assert_allclose(got.sum(-1), 1.0)
    assert rollout([np.ones((1, 1, 3, 4)) / 4]) is None  # cross-attention does not roll out


def test_patch_grid() -> None:
    assert patch_grid(17, 16, 16) == ((4, 4), 1)
    assert patch_grid(64, 32, 32) == ((8, 8), 0)
    assert patch_grid(7, 16, 16) is None


def _cfg() -> ReportConfig:
    return ReportConfig(preset="quick", only=("attention",), timings=False, cache=False)


def test_vit_analysis_and_page(tmp_path) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(2)
    model = TinyViT().eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    insp = nnreport.inspect(model, None, _cfg(), example_inputs=(torch.randn(3, 3, 16, 16),))
    record, res = insp.record("attention"), insp.result("attention")
    assert record.status == "ok", record.message
    assert res.kind == "image" and res.grid == (4, 4) and res.prefix == 1 and len(res.layers) == 2
    assert res.layers[0].maps.shape == (2, 2, 17, 17)
    assert res.rollout is not None and res.rollout_scores is not None and res.rollout_scores.shape == (2, 17)
    assert res.lrp.shape == (2, 16, 16) and np.abs(res.lrp).sum() > 0
    assert res.agreement is not None and np.isfinite(res.agreement).all()
    back = codec.from_files(AttentionResult, *codec.to_files(res))
    np.testing.assert_array_equal(back.layers[1].maps, res.layers[1].maps)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    nnreport.render(insp, tmp_path / "site")
    html = (tmp_path / "site" / "attention.html").read_text()
    assert "Rollout beside AttnLRP" in html and "head 2" in html and "4×4 patch grid" in html


def test_token_analysis_escapes_words(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from nnreport.datasets import Dataset

    torch.manual_seed(3)
    x = np.random.default_rng(0).integers(0, 20, (8, 8))
    x[0, 0] = 0
    y = (x[:, 0] > 9).astype(np.int64)
    data = Dataset("t", "sequence", x, y, x, y)
    object.__setattr__(data, "vocab", ["<script>"] + [f"w{i}" for i in range(1, 20)])
    insp = nnreport.inspect(TokenTransformer().eval(), data, _cfg())
    res = insp.result("attention")
    assert res.kind == "tokens" and res.words[0][0] == "<script>" and res.lrp.shape == (2, 8)
    nnreport.render(insp, tmp_path / "site")
    html = (tmp_path / "site" / "attention.html").read_text()
    assert ">&lt;script&gt;</span>" in html and "><script></span>" not in html


def test_cnn_is_skipped_with_a_reason() -> None:
    insp = nnreport.inspect(TinyCNN().eval(), None, _cfg(), example_inputs=(torch.randn(2, 1, 16, 16),))
    record = insp.record("attention")
    assert record.status == "skipped" and "no attention" in record.message


def test_sequence_layers_are_the_blocks_not_their_internals() -> None:
    from nnreport.attention.units import candidates

    from models import RecurrentNet, TextClassifier

    ids = torch.randint(0, 20, (2, 8))
    assert [p for p, _ in candidates(TokenTransformer().eval(), ids)] == ["embed", "blocks.0", "blocks.1"]
    assert [p for p, _ in candidates(TextClassifier().eval(), ids)] == ["emb", "enc.layers.0", "enc.layers.1", "gru"]
    assert [p for p, _ in candidates(RecurrentNet().eval(), torch.randn(2, 7, 6))] == ["rnn"]

    class Conv(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb, self.conv = nn.Embedding(20, 4), nn.Conv1d(4, 5, 3, padding=1)

        def forward(self, t: torch.Tensor) -> torch.Tensor:
            return self.conv(self.emb(t).transpose(1, 2)).mean(2)

    assert candidates(Conv().eval(), ids) == [("emb", "Embedding"), ("conv", "Conv1d")]


def test_top_windows_against_a_sort() -> None:
    from nnreport.attention.units import top_windows

    acts = np.random.default_rng(0).normal(size=(5, 6, 3))
    values, samples, positions = top_windows(acts, 4)
    for u in range(3):
        want = np.sort(acts[:, :, u].ravel())[::-1][:4]
        np.testing.assert_allclose(values[u], want)
        np.testing.assert_allclose(acts[samples[u], positions[u], u], want)


def test_sequence_units_on_an_lstm_without_attention(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from nnreport.datasets import Dataset

    from models import RecurrentNet

    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 7, 6)).astype(np.float32)
    y = rng.integers(0, 3, 40)
    cfg = ReportConfig(preset="quick", only=("attention", "sequence_units"), timings=False, cache=False)
    insp = nnreport.inspect(RecurrentNet().eval(), Dataset("s", "sequence", x, y, x, y), cfg)
    assert insp.record("attention").status == "skipped"
    res = insp.result("sequence_units")
    layer = res.layers[0]
    assert layer.path == "rnn" and layer.windows.shape == (8, 4, 7) and res.half == 3
    assert (layer.windows[:, :, 3] == layer.positions).all()  # float sequences: the window holds positions
    nnreport.render(insp, tmp_path / "site")
    html = (tmp_path / "site" / "attention.html").read_text()
    assert "Units of sequence layers" in html and "<mark>t" in html and "Rollout beside" not in html

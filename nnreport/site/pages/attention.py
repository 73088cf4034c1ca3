"""attention.html: rollout beside AttnLRP per sample, every attention layer's head-averaged and per-head maps
(patch-grid overlays for images, token × token matrices for sequences), and the top token windows of the units
of sequence layers."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from nnreport.attention.results import AttentionResult, SequenceUnitsResult
from nnreport.formatting import fmt_float
from nnreport.site import images
from nnreport.site.pages import page

if TYPE_CHECKING:
    from nnreport.inspection import AnalysisRecord, Inspection
    from nnreport.site.assets import Assets, ImageRef

TARGET_PX = 96   # images and matrices are enlarged (pixelated) to about this size
HEADS_SHOWN = 16  # per layer


@dataclass(frozen=True)
class Word:
    text: str
    background: str
    dark: bool
    value: str


@dataclass(frozen=True)
class SampleRow:
    """One sample: its input, AttnLRP and rollout side by side, and how far they agree."""

    label: str
    input_image: ImageRef | None
    lrp_image: ImageRef | None
    rollout_image: ImageRef | None
    lrp_words: tuple[Word, ...]
    rollout_words: tuple[Word, ...]
    agreement: str
    scale: int


@dataclass(frozen=True)
class LayerMaps:
    """One attention layer for one sample: the head average first, then each head."""

    sample: str
    average: ImageRef
    heads: tuple[ImageRef, ...]
    scale: int


@dataclass(frozen=True)
class LayerBlock:
    name: str
    heads: int
    entropy: str   # mean attention entropy (nats) over heads and queries: low = focused
    maps: tuple[LayerMaps, ...]


@dataclass(frozen=True)
class Window:
    before: tuple[str, ...]
    centre: str
    after: tuple[str, ...]
    value: str
    where: str   # "input 12, position 3" (and its label)


@dataclass(frozen=True)
class UnitRow:
    unit: int
    windows: tuple[Window, ...]


@dataclass(frozen=True)
class UnitLayer:
    path: str
    type: str
    units: int
    shown: int
    rows: tuple[UnitRow, ...]


@dataclass(frozen=True)
class AttentionPage:
    records: tuple[AnalysisRecord, ...]
    notes: tuple[str, ...]
    kind: str
    what: str            # what a map shows (which query row, over what)
    samples: tuple[SampleRow, ...]
    layers: tuple[LayerBlock, ...]
    legend_signed: ImageRef
    legend_unsigned: ImageRef
    tokens: tuple[str, ...]  # token labels of the first sample (matrix axes), for sequences
    mean_agreement: str
    has_attention: bool
    unit_layers: tuple[UnitLayer, ...]
    units_seen: int


def _hex(rgb: np.ndarray) -> str:
    return "#" + "".join(f"{int(c):02x}" for c in rgb)


def _words(words: tuple[str, ...], values: np.ndarray, signed: bool, assets: Assets) -> tuple[Word, ...]:
    m = float(np.abs(values).max()) or 1.0
    lo = -m if signed else 0.0
    rgb = images.colourize(values[None, :], assets.palette.diverging if signed else assets.palette.heat, lo, m)[0]
    return tuple(Word(w, _hex(rgb[j]), (abs(float(values[j])) > 0.6 * m) if signed else float(values[j]) < 0.5 * m,
                      fmt_float(float(values[j]), 3)) for j, w in enumerate(words))


def _overlay(base: np.ndarray, heat: np.ndarray, assets: Assets) -> np.ndarray:
    """A patch-grid map (rows, cols) over an RGB image (H, W, 3): the palette's heat map at half opacity."""
    h, w = base.shape[:2]
    rows, cols = heat.shape
    big = np.repeat(np.repeat(heat, h // rows, 0), w // cols, 1)
    top = float(big.max()) or 1.0
    colour = images.colourize(big, assets.palette.heat, 0.0, top).astype(np.float64)
    return (0.5 * base.astype(np.float64) + 0.5 * colour).round().astype(np.uint8)


def _factor(size: int) -> int:
    return max(1, TARGET_PX // max(size, 1))


def _grid_of(res: AttentionResult, row: np.ndarray) -> np.ndarray:
    assert res.grid is not None
    return row[res.prefix:].reshape(res.grid)


def _sample_rows(res: AttentionResult, assets: Assets) -> tuple[SampleRow, ...]:
    rows = []
    for i in range(len(res.targets)):
        label = (f"sample {i}: explains {_name(res.class_names, int(res.targets[i]))}, predicted "
                 f"{_name(res.class_names, int(res.predictions[i]))}")
        agree = fmt_float(float(res.agreement[i]), 2) if res.agreement is not None else "–"
        if res.kind == "image":
            base = images.to_rgb(res.inputs[i])
            f = _factor(max(base.shape[:2]))
            m = float(np.abs(res.lrp[i]).max()) or 1.0
            lrp = assets.png(f"lrp-{i}", images.colourize(res.lrp[i], assets.palette.diverging, -m, m), f"AttnLRP for sample {i}")
            roll = None
            if res.rollout_scores is not None and res.grid is not None:
                roll = assets.png(f"rollout-{i}", _overlay(base, _grid_of(res, res.rollout_scores[i]), assets),
                                  f"attention rollout for sample {i}")
            rows.append(SampleRow(label, assets.png(f"input-{i}", base, f"input {i}"), lrp, roll, (), (), agree, f))
            continue
        words = res.words[i]
        roll_words = _words(words, res.rollout_scores[i], False, assets) if res.rollout_scores is not None else ()
        rows.append(SampleRow(label, None, None, None, _words(words, res.lrp[i], True, assets), roll_words, agree, 1))
    return tuple(rows)


def _entropy(maps: np.ndarray) -> float:
    p = np.clip(maps.astype(np.float64), 1e-12, 1.0)
    return float(-(p * np.log(p)).sum(-1).mean())


def _map_image(res: AttentionResult, assets: Assets, name: str, probs: np.ndarray, sample: int,
               alt: str) -> tuple[ImageRef, int]:
    """A head's (or the average's) map: the read-out row over the patch grid, else the full matrix."""
    if res.kind == "image" and res.grid is not None:
        row = probs[0] if res.prefix else probs.mean(0)
        base = images.to_rgb(res.inputs[sample])
        return assets.png(name, _overlay(base, _grid_of(res, row), assets), alt), _factor(max(base.shape[:2]))
    rgb = images.colourize(probs, assets.palette.heat, 0.0, float(probs.max()) or 1.0)
    return assets.png(name, rgb, alt), _factor(probs.shape[0])


def _layer_blocks(res: AttentionResult, assets: Assets) -> tuple[LayerBlock, ...]:
    blocks = []
    for k, layer in enumerate(res.layers):
        per_sample = []
        for i in range(len(layer.maps)):
            avg, f = _map_image(res, assets, f"l{k}-s{i}-avg", layer.maps[i].mean(0), i,
                                f"{layer.name}, sample {i}, mean over heads")
            heads = tuple(_map_image(res, assets, f"l{k}-s{i}-h{h}", layer.maps[i, h], i,
                                     f"{layer.name}, sample {i}, head {h + 1}")[0]
                          for h in range(min(layer.heads, HEADS_SHOWN)))
            per_sample.append(LayerMaps(f"sample {i}", avg, heads, f))
        blocks.append(LayerBlock(layer.name, layer.heads, f"{_entropy(layer.maps):.2f}", tuple(per_sample)))
    return tuple(blocks)


def _name(names: tuple[str, ...], idx: int) -> str:
    return names[idx] if 0 <= idx < len(names) else str(idx)


def _what(res: AttentionResult) -> str:
    if res.kind == "image" and res.grid is not None:
        row = "the class token's row" if res.prefix else "the mean over query rows"
        return (f"{row} of each attention matrix over the {res.grid[0]}×{res.grid[1]} patch grid, "
                "drawn over the input (magma: bright = much attention)")
    return ("the full attention matrix: rows are queries, columns keys, in token order (magma: bright = much "
            "attention; each row sums to 1)")


def _legend(assets: Assets, signed: bool, name: str) -> ImageRef:
    """The colour scale of signed maps (the palette's diverging map) or of attention (its heat map)."""
    ramp = np.tile(np.linspace(-1 if signed else 0, 1, 160)[None, :], (10, 1))
    cmap = assets.palette.diverging if signed else assets.palette.heat
    return assets.png(name, images.colourize(ramp, cmap, -1 if signed else 0, 1),
                      "colour scale: negative blue, zero white, positive red" if signed
                      else "colour scale: zero dark, high bright")


def _unit_layers(units: SequenceUnitsResult | None, names: tuple[str, ...]) -> tuple[UnitLayer, ...]:
    if units is None:
        return ()
    def word(i: int) -> str:
        if i < 0:
            return ""
        if units.kind == "sequence":
            return f"t{i}"
        return units.vocab[i] if i < len(units.vocab) else str(i)

    h = units.half
    out = []
    for layer in units.layers:
        rows = []
        for u in range(layer.shown):
            wins = []
            for j in range(layer.values.shape[1]):
                ws = [word(int(i)) for i in layer.windows[u, j]]
                label = f", label {_name(names, int(layer.labels[u, j]))}" if layer.labels is not None else ""
                wins.append(Window(tuple(w for w in ws[:h] if w), ws[h], tuple(w for w in ws[h + 1:] if w),
                                   fmt_float(float(layer.values[u, j]), 3),
                                   f"training input {int(layer.samples[u, j])}, position {int(layer.positions[u, j])}{label}"))
            rows.append(UnitRow(u, tuple(wins)))
        out.append(UnitLayer(layer.path, layer.type, layer.units, layer.shown, tuple(rows)))
    return tuple(out)


@page("attention", title="Attention", analyses=("attention", "sequence_units"), order=32)
def attention_page(insp: Inspection, assets: Assets) -> AttentionPage:
    res = insp.get("attention", AttentionResult)
    units = insp.get("sequence_units", SequenceUnitsResult)
    records = tuple(r for r in (insp.record("attention"), insp.record("sequence_units")) if r is not None)
    names = tuple(res.class_names) if res is not None else ()
    if res is None:
        return AttentionPage(records, (), "", "", (), (), _legend(assets, True, "legend-signed"),
                             _legend(assets, False, "legend-unsigned"), (), "–", False, _unit_layers(units, names),
                             units.examples_seen if units is not None else 0)
    agreement = res.agreement[np.isfinite(res.agreement)] if res.agreement is not None else np.zeros(0)
    return AttentionPage(
        records=records, notes=res.notes, kind=res.kind, what=_what(res),
        samples=_sample_rows(res, assets), layers=_layer_blocks(res, assets),
        legend_signed=_legend(assets, True, "legend-signed"), legend_unsigned=_legend(assets, False, "legend-unsigned"),
        tokens=res.words[0] if res.words else (),
        mean_agreement=fmt_float(float(agreement.mean()), 2) if agreement.size and math.isfinite(float(agreement.mean()))
        else "–", has_attention=True, unit_layers=_unit_layers(units, names),
        units_seen=units.examples_seen if units is not None else 0)

"""Golden site: the committed sample report, re-rendered from its own bundle, is the same byte for byte.

A change to the pages, templates, themes or bundle format shows up here; when it is meant, regenerate the
samples with `python3 sample_reports/make.py` and commit them with the change."""

from __future__ import annotations

from pathlib import Path

from nnreport.cli import main

SAMPLE = Path(__file__).resolve().parents[1] / "sample_reports" / "digits-cnn"


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != "GENERATED.md"}


def test_the_sample_report_rebuilds_byte_for_byte(tmp_path: Path) -> None:
    out = tmp_path / "digits-cnn"
    assert main(["render", str(SAMPLE / "inspection"), "--out", str(out)]) == 0
    golden, rebuilt = _files(SAMPLE), _files(out)
    assert golden.keys() == rebuilt.keys()
    assert [name for name in golden if golden[name] != rebuilt[name]] == []


def test_the_theme_palette_reaches_pages_and_charts(tmp_path: Path) -> None:
    """The dark theme's palette, not the light one's, colours the index chart and the playground."""
    from nnreport.site.themes import load_theme

    dark, light = load_theme("dark").palette, load_theme("light").palette
    assert dark.accent != light.accent and dark.categorical != light.categorical
    for sample, page, colours in (("digits-cnn", "index.html", (dark.accent,)),
                                  ("spiral-playground", "playground.html", (dark.positive, dark.negative))):
        out = tmp_path / sample
        assert main(["render", str(SAMPLE.parent / sample / "inspection"), "--out", str(out), "--theme", "dark"]) == 0
        html = (out / page).read_text(encoding="utf-8")
        assert all(c in html for c in colours), page
    assert light.accent not in (tmp_path / "digits-cnn" / "index.html").read_text(encoding="utf-8")

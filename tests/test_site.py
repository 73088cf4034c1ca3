"""The site: torch-free rendering, determinism, atomic writes, single-file mode, bundle versions, themes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from html import unescape
from pathlib import Path

import pytest

from nnreport.cli import main
from nnreport.inspection import FORMAT_VERSION, Inspection

ROOT = Path(__file__).resolve().parents[1]

BLOCK_TORCH = """
import sys
class BlockTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked in this test")
sys.meta_path.insert(0, BlockTorch())
"""


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def iris_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small report for the site mechanics (every analysis runs in the determinism and browser tests)."""
    out = tmp_path_factory.mktemp("iris") / "report"
    code = main(["build", f"{ROOT / 'tests' / 'models.py'}:MLP", "--data", "iris", "--out", str(out), "--preset", "quick",
                 "--only", "summary"])
    assert code == 0
    return out


def test_site_and_analysis_modules_import_without_torch(iris_report: Path, tmp_path: Path) -> None:
    script = BLOCK_TORCH + f"""
import nnreport, nnreport.analyses as a, nnreport.site.build, nnreport.site.pages as p, nnreport.inspection
a.load_all(); p.load_pages()
from nnreport.cli import main
code = main(["render", {str(iris_report / 'inspection')!r}, "--out", {str(tmp_path / 'again')!r}])
assert code == 0, code
assert "torch" not in sys.modules
print("TORCH-FREE", len(a.REGISTRY))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert "TORCH-FREE" in out.stdout, out.stderr[-2000:]
    # Re-rendering the saved bundle gives the same site, byte for byte.
    assert files_of(tmp_path / "again") == files_of(iris_report)


def test_layout_of_the_output(iris_report: Path) -> None:
    names = set(files_of(iris_report))
    assert {"index.html", "summary.md", "assets/vega.js", "assets/nnreport.css", "assets/nnreport.js",
            "inspection/manifest.json"} <= names
    pages = [n for n in names if n.endswith(".html")]
    assert all("/" not in p for p in pages)
    for p in pages:
        html = (iris_report / p).read_text()
        assert 'http-equiv="Content-Security-Policy"' in html and "connect-src 'none'" in unescape(html)
        assert not re.search(r"""(src|href)=["']https?://""", html), p
        assert html.count("assets/vega.js") == 1  # one shared runtime, referenced once
    assert len((iris_report / "summary.md").read_text()) < 60_000


def test_two_cold_builds_and_a_cached_one_are_byte_identical(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every analysis on the demo-like CNN: cold, cold again, and rebuilt from the first build's cache."""
    outs = []
    for i in (0, 1, 0):
        monkeypatch.setenv("NNREPORT_CACHE_DIR", str(tmp_path / f"cache{i}"))
        out = tmp_path / f"r{len(outs)}"
        assert main(["build", f"{ROOT / 'tests' / 'models.py'}:TinyCNN", "--data", "digits", "--out", str(out),
                     "--preset", "quick", "--no-timings"]) == 0
        outs.append(files_of(out))
    for again in outs[1:]:
        assert outs[0].keys() == again.keys()
        different = [k for k in outs[0] if outs[0][k] != again[k]]
        assert not different


def test_a_cached_rebuild_is_byte_identical_with_timings(iris_report: Path, tmp_path: Path) -> None:
    out = tmp_path / "again"
    assert main(["build", f"{ROOT / 'tests' / 'models.py'}:MLP", "--data", "iris", "--out", str(out), "--preset", "quick",
                 "--only", "summary"]) == 0
    assert files_of(out) == files_of(iris_report)


def test_single_file_report_inlines_everything(iris_report: Path, tmp_path: Path) -> None:
    out = tmp_path / "single"
    assert main(["render", str(iris_report / "inspection"), "--out", str(out), "--single-file"]) == 0
    html = (out / "report.html").read_text()
    markup = re.sub(r"<script\b[^>]*>.*?</script>", "", html, flags=re.S)  # the chart runtime's own strings aside
    assert not re.search(r"""(src|href)=["'](?!data:|#)""", markup), "single file refers to another file"
    assert "window.vegaEmbed" in html and (out / "summary.md").is_file()


def test_failed_build_leaves_the_existing_report_untouched(iris_report: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from nnreport.site import build

    out = tmp_path / "report"
    assert main(["render", str(iris_report), "--out", str(out)]) == 0
    before = files_of(out)
    calls = {"n": 0}
    real_write = Path.write_bytes

    def flaky(self: Path, data: bytes) -> int:
        calls["n"] += 1
        if calls["n"] > 3:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C half-way through writing
        return real_write(self, data)

    monkeypatch.setattr(Path, "write_bytes", flaky)
    with pytest.raises(KeyboardInterrupt):
        build.render(Inspection.load(iris_report), out, theme="dark")
    monkeypatch.undo()
    assert files_of(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["report"]  # no temporary folder left behind


def test_refuses_to_replace_a_folder_that_is_not_a_report(iris_report: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    precious = tmp_path / "thesis"
    precious.mkdir()
    (precious / "chapter1.tex").write_text("do not delete")
    assert main(["render", str(iris_report), "--out", str(precious)]) == 2
    assert "not an nnreport report" in capsys.readouterr().err
    assert (precious / "chapter1.tex").read_text() == "do not delete"


def test_newer_bundle_format_is_refused(iris_report: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bundle = tmp_path / "bundle"
    Inspection.load(iris_report).save(bundle)
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["format_version"] = FORMAT_VERSION + 1
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    assert main(["render", str(bundle), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert "newer than this nnreport reads" in err and "upgrade" in err and len(err.splitlines()) == 1


def test_older_bundle_format_is_refused(iris_report: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A bundle from before the packed graph (format 1) is refused in one line, not misread."""
    bundle = tmp_path / "bundle"
    Inspection.load(iris_report).save(bundle)
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["format_version"] = FORMAT_VERSION - 1
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    assert main(["render", str(bundle), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert "older than this nnreport reads" in err and "build the report again" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("theme", ["light", "dark", "paper"])
def test_themes_style_pages_and_charts(theme: str, iris_report: Path, tmp_path: Path) -> None:
    from nnreport.site.themes import load_theme

    t = load_theme(theme)
    assert t.vega_config.get("background") and "--bg" in t.css
    out = tmp_path / theme
    assert main(["render", str(iris_report), "--out", str(out), "--theme", theme]) == 0
    html = (out / "index.html").read_text()
    assert f'data-theme="{theme}"' in html and json.dumps(t.vega_config["background"]) in html


def test_python_api_report(tmp_path: Path) -> None:
    import nnreport

    from models import MLP

    report = nnreport.Report(MLP(), data="iris", config=nnreport.ReportConfig(preset="quick", only=("summary",)))
    path = report.save(tmp_path / "api")
    assert (path / "index.html").is_file()
    html = report.to_html()
    assert html.startswith("<!DOCTYPE html>") and "MLP" in html
    frame = report._repr_html_()
    assert frame.startswith("<iframe srcdoc=") and "<script" not in frame  # the document is escaped inside srcdoc
    assert os.path.isdir(path / "inspection")

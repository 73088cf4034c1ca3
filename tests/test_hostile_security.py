"""Hostile input, security: no code runs from a model file; names never become markup or hidden text."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
import torch

from nnreport.cli import EXIT_USAGE, main


class Touch:
    """Unpickling this creates the file `path`: proof that code from the archive ran."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.path, "w"))


def _archive(tmp_path: Path) -> Path:
    path = tmp_path / "clean.pt2"
    torch.export.save(torch.export.export(torch.nn.Sequential(torch.nn.Linear(3, 2)), (torch.randn(4, 3),)), path)
    return path


def _pickled(obj: object) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _craft(clean: Path, out: Path, marker: Path, variant: str) -> Path:
    """Rewrite a real archive so that loading it unpickles `Touch(marker)`."""
    with zipfile.ZipFile(clean) as zin, zipfile.ZipFile(out, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if variant == "weights" and info.filename.endswith("model_weights_config.json"):
                config = json.loads(data)
                next(iter(config["config"].values()))["use_pickle"] = True
                data = json.dumps(config).encode()
            elif variant == "weights" and info.filename.endswith("weights/weight_0"):
                data = _pickled(Touch(marker))
            elif variant == "inputs" and info.filename.endswith("sample_inputs/model.pt"):
                data = _pickled((torch.load(io.BytesIO(data), weights_only=True), Touch(marker)))
            elif variant == "constant" and info.filename.endswith("model_constants_config.json"):
                data = json.dumps({"config": {"c": {"path_name": "opaque_obj_0", "use_pickle": False}}}).encode()
            zout.writestr(info, data)
        if variant == "aoti":  # a compiled library that torch would load (and run) as an AOTInductor model
            root = zin.namelist()[0].split("/")[0]
            zout.writestr(f"{root}/data/aotinductor/model/model.so", b"\x7fELF not really")
    return out


@pytest.mark.parametrize("variant", ["weights", "inputs", "constant", "aoti"])
@pytest.mark.parametrize("command", ["build", "compare"])
def test_pt2_that_asks_for_pickle_is_refused_and_runs_nothing(
        variant: str, command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clean = _archive(tmp_path)
    marker = tmp_path / "pwned"
    evil = _craft(clean, tmp_path / "evil.pt2", marker, variant)
    args = ["build", str(evil)] if command == "build" else ["compare", str(clean), str(evil)]
    code = main([*args, "--out", str(tmp_path / "out"), "--only", "summary", "--no-cache"])
    err = capsys.readouterr().err.strip()
    assert not marker.exists(), "code from the archive ran"
    assert code == EXIT_USAGE
    assert len(err.splitlines()) == 1 and "evil.pt2" in err and "--unsafe-pickle" in err
    assert not (tmp_path / "out").exists()


def test_clean_pt2_still_loads_and_unsafe_pickle_opts_out(tmp_path: Path) -> None:
    clean = _archive(tmp_path)
    assert main(["build", str(clean), "--out", str(tmp_path / "ok"), "--only", "summary", "--no-cache"]) == 0
    marker = tmp_path / "ran"
    evil = _craft(clean, tmp_path / "evil.pt2", marker, "inputs")
    main(["build", str(evil), "--unsafe-pickle", "--out", str(tmp_path / "trusted"), "--only", "summary", "--no-cache"])
    assert marker.exists()  # the user said they trust it: torch's own loader ran


HOSTILE_MODEL = '''
import torch
from torch import nn
import nnreport

NAME = "![x](https://evil.example/x.png) <img src=x onerror=alert(1)> @all `a|b` ]]"
CLASSES = ["c0 <script>alert(1)</script>", "c1 \\u202egnp.exe", "c2 nul\\x00here"]

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)
    def forward(self, x):
        return self.fc(x)

def build():
    torch.manual_seed(0)
    return nnreport.Subject(Net(), example_inputs=torch.randn(2, 4), class_names=CLASSES, name=NAME)
'''


@pytest.fixture
def hostile_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "hostile.py").write_text(HOSTILE_MODEL)
    out = tmp_path / "out"
    assert main(["build", "models/hostile.py:build", "--out", str(out), "--only", "summary", "--no-cache"]) == 0
    return out


def test_summary_markdown_escapes_every_name(hostile_report: Path) -> None:
    text = (hostile_report / "summary.md").read_text(encoding="utf-8")
    assert "![x]" not in text and "](https" not in text  # no remote image
    assert "<img" not in text and "<script" not in text  # no raw HTML
    assert "@all" not in text  # no mention
    assert "\u202e" not in text and "\x00" not in text
    title = next(line for line in text.splitlines() if line.startswith("## "))
    assert r"!\[x\]\(https://evil\.example/x\.png\) &lt;img src=x onerror=alert\(1\)&gt; &#64;all \`a\|b\`" in title
    class_row = next(line for line in text.splitlines() if line.startswith("| Class |"))
    assert class_row.count("|") - class_row.count(r"\|") == 3  # a name cannot add table cells


def test_nul_and_bidi_overrides_are_shown_not_acted_on(hostile_report: Path) -> None:
    html = (hostile_report / "index.html").read_text(encoding="utf-8")
    assert "\u202e" not in html and "\x00" not in html
    assert "[U+202E]gnp.exe" in html and "nul\u2400here" in html
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)" in html
    bundle = (hostile_report / "inspection" / "manifest.json").read_text(encoding="utf-8")
    assert "\u202e" in bundle  # the data itself is kept exactly; only its display changes


def test_model_card_names_the_model_file_relative(hostile_report: Path) -> None:
    manifest = json.loads((hostile_report / "inspection" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["model"]["class_name"] == "models/hostile.py:Net"
    for path in hostile_report.rglob("*"):
        if path.is_file():
            assert str(hostile_report.parent) not in path.read_text(encoding="utf-8", errors="replace"), path


def test_compare_markdown_escapes_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "hostile.py").write_text(HOSTILE_MODEL)
    spec = "models/hostile.py:build"
    out = tmp_path / "cmp"
    assert main(["compare", spec, spec, "--names", "![a](https://evil.example/a.png),<img src=x>@all",
                 "--only", "summary", "--no-cache", "--out", str(out)]) == 0
    text = (out / "summary.md").read_text(encoding="utf-8")
    assert "![a]" not in text and "<img" not in text and "@all" not in text
    assert r"!\[a\]\(https://evil\.example/a\.png\) → &lt;img src=x&gt;&#64;all" in text


def test_visible_json_spells_hidden_characters_but_keeps_escaped_backslashes() -> None:
    from nnreport.formatting import visible_json

    text = visible_json({"label": "a\u202eb\x00c", "literal": "\\u202e", "tricky": "\\\u2066"})
    assert json.loads(text) == {"label": "a[U+202E]b\u2400c", "literal": "\\u202e", "tricky": "\\[U+2066]"}


def test_md_code_spans_cannot_be_broken_out_of() -> None:
    from nnreport.formatting import md_code

    assert md_code("a``b|c <img src=x> @all") == "```a``b\\|c <img src=x> @all```"
    assert md_code("`edge`") == "`` `edge` ``"
    assert md_code("two\nlines\u202e") == "`two lines[U+202E]`"


def test_template_json_is_finite_and_spells_hidden_characters() -> None:
    """The environment's `tojson` (and chart specs) write NaN/inf as null AND show bidi/NUL characters."""
    from nnreport.templating import dumps_finite, environment

    value = {"x": float("nan"), "y": float("-inf"), "label": "a\u202eb\x00"}
    expected = {"x": None, "y": None, "label": "a[U+202E]b\u2400"}
    assert json.loads(dumps_finite(value)) == expected
    rendered = environment().from_string("{{ v | tojson }}").render(v=value)
    assert "NaN" not in rendered and "Infinity" not in rendered and "\u202e" not in rendered
    assert environment().from_string("{{ s }}").render(s="x\u202ey") == "x[U+202E]y"

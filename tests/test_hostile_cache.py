"""Hostile input, cache: a damaged entry is a miss and is rewritten; an unwritable cache runs uncached."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import torch

from nnreport import zoo
from nnreport.cli import main
from nnreport.datasets import load_builtin

MODEL = textwrap.dedent("""
    import torch
    def build():
        torch.manual_seed(0)
        return torch.nn.Linear(4, 3)
""")


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("NNREPORT_CACHE_DIR", str(root))
    return root


def _build(tmp_path: Path, out: str = "out", *extra: str) -> int:
    (tmp_path / "m.py").write_text(MODEL)
    return main(["build", f"{tmp_path / 'm.py'}:build", "--data", "iris", "--only", "summary", "--no-timings",
                 "--out", str(tmp_path / out), *extra])


def _entry_files(cache: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in sorted((cache / "results").rglob("*")) if p.is_file()}


@pytest.mark.parametrize("damage", ["truncate-npz", "flip-json", "empty-meta", "json-wrong-type", "deep-json"])
def test_a_damaged_entry_is_recomputed_and_rewritten(damage: str, cache: Path, tmp_path: Path) -> None:
    assert _build(tmp_path, "cold") == 0
    stored = _entry_files(cache)
    target = {"truncate-npz": "result.npz", "flip-json": "result.json", "empty-meta": "meta.json",
              "json-wrong-type": "result.json", "deep-json": "result.json"}[damage]
    # the summary's entry (the time plan's measured timing has an entry too; re-measured it may differ)
    path = next(p for p in stored if p.name == target and b'"rows"' in stored[p.parent / "result.json"])
    data = stored[path]
    if damage == "truncate-npz":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "flip-json":
        path.write_bytes(data.replace(b"{", b"\x80", 1))
    elif damage == "empty-meta":
        path.write_bytes(b"")
    elif damage == "json-wrong-type":
        tree = json.loads(data)
        tree["rows"] = 5
        path.write_text(json.dumps(tree))
    else:
        path.write_text("[" * 100_000 + "]" * 100_000)
    assert _build(tmp_path, "warm") == 0
    rewritten = _entry_files(cache)
    assert rewritten.keys() == stored.keys()
    for p, content in rewritten.items():  # rewritten, byte for byte (meta.json holds the new run time)
        assert content == stored[p] if p.name != "meta.json" else "seconds" in json.loads(content)
    assert (tmp_path / "warm" / "index.html").read_bytes() == (tmp_path / "cold" / "index.html").read_bytes()


def test_an_unwritable_cache_runs_without_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    monkeypatch.setenv("NNREPORT_CACHE_DIR", str(tmp_path / "a-file" / "cache"))  # cannot be created, even as root
    assert _build(tmp_path) == 0
    err = capsys.readouterr().err
    assert "warning: cannot write the result cache" in err and "running without a cache" in err
    assert (tmp_path / "out" / "index.html").exists()


def test_a_truncated_demo_model_is_retrained(cache: Path) -> None:
    data = load_builtin("iris", 0)

    def build() -> torch.nn.Module:
        return torch.nn.Linear(4, 3)

    first = zoo._trained("tiny", build, data, 0, 0, lambda e: None, epochs=1, lr=0.1)
    (saved,) = (cache / "models").glob("tiny-*.pt")
    good = saved.read_bytes()
    saved.write_bytes(good[: len(good) // 2])
    again = zoo._trained("tiny", build, data, 0, 0, lambda e: None, epochs=1, lr=0.1)
    assert torch.equal(first.model.weight, again.model.weight)
    assert saved.read_bytes() == good

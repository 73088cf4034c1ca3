"""Hostile input, files: truncated, oversized or tampered files give one line naming the file, exit 2."""

from __future__ import annotations

import json
import os
import shutil
import textwrap
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nnreport.cli import EXIT_USAGE, main
from nnreport.errors import BundleError, SpecError
from nnreport.imagefiles import UnreadableImage, check_image, read_image
from nnreport.inspection import Inspection
from nnreport.loading import load_data

MODEL = textwrap.dedent("""
    import torch
    def build():
        torch.manual_seed(0)
        return torch.nn.Linear(4, 3)
""")


@pytest.fixture()
def model(tmp_path: Path) -> str:
    (tmp_path / "m.py").write_text(MODEL)
    return f"{tmp_path / 'm.py'}:build"


def _fails(args: list[str], capsys: pytest.CaptureFixture[str], *fragments: str) -> str:
    code = main(args)
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == EXIT_USAGE, lines
    assert len(lines) == 1 and "Traceback" not in lines[0], lines
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def _truncate(path: Path, keep: float = 0.5) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def test_truncated_npz_and_pt(model: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    x, y = np.random.default_rng(0).normal(size=(40, 4)).astype(np.float32), np.arange(40) % 3
    np.savez(tmp_path / "d.npz", x=x, y=y)
    torch.save({"x": torch.from_numpy(x), "y": torch.from_numpy(y)}, tmp_path / "d.pt")
    for name in ("d.npz", "d.pt"):
        path = _truncate(tmp_path / name)
        _fails(["build", model, "--data", str(path), "--out", str(tmp_path / "o")], capsys, name)


def test_npy_with_a_huge_header_in_an_npz(tmp_path: Path) -> None:
    import zipfile

    header = b"\x93NUMPY\x02\x00" + (200_000).to_bytes(4, "little")  # claims a 200 kB header (numpy allows 10 kB)
    with zipfile.ZipFile(tmp_path / "d.npz", "w") as zf:
        zf.writestr("x.npy", header + b" " * 70_000)
    with pytest.raises(SpecError, match="d.npz"):
        load_data(str(tmp_path / "d.npz"))


def _png(path: Path, size: tuple[int, int] = (8, 8)) -> Path:
    Image.new("L", size, 128).save(path)
    return path


def test_truncated_png_in_an_image_folder(model: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for c in ("a", "b"):
        (tmp_path / "imgs" / c).mkdir(parents=True)
        for i in range(3):
            _png(tmp_path / "imgs" / c / f"{i}.png", (64, 64))
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)).save(tmp_path / "imgs" / "b" / "2.png")
    _truncate(tmp_path / "imgs" / "b" / "2.png", 0.6)
    # A truncated file in a folder is skipped and named on the model card (issue 12), never decoded as garbage.
    ds = load_data(str(tmp_path / "imgs"))
    assert len(ds.x_train) + len(ds.x_test) == 5
    assert any("b/2.png" in note and "Skipped 1 unreadable" in note for note in ds.card_notes()), ds.card_notes()


def _bomb_png(path: Path, width: int, height: int) -> Path:
    """A valid PNG header announcing width x height pixels, with almost no data (a decompression bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")
    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize("side", [9000, 30000])  # past our limit; past Pillow's own bomb error
def test_decompression_bomb_is_refused_from_its_header(side: int, tmp_path: Path) -> None:
    path = _bomb_png(tmp_path / "bomb.png", side, side)
    for read in (check_image, read_image):
        with pytest.raises(UnreadableImage, match="over the limit|not a readable image"):
            read(path)


def test_image_folder_reads_and_closes_each_file(tmp_path: Path) -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for c in ("a", "b"):
        (tmp_path / "imgs" / c).mkdir(parents=True)
        for i in range(150):
            _png(tmp_path / "imgs" / c / f"{i}.png")
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, 256), hard))  # fewer than the 300 images
    try:
        ds = load_data(str(tmp_path / "imgs"))
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert len(ds.x_train) + len(ds.x_test) == 300


@pytest.mark.parametrize("shape", ["1,3,100000,100000", "100000000000"])
def test_absurd_input_shape(shape: str, model: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _fails(["build", model, "--input-shape", shape, "--out", str(tmp_path / "o")], capsys, "--input-shape", "allowed")


def test_non_utf8_config(model: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "c.toml").write_bytes(b'title = "caf\xe9"\n')
    _fails(["build", model, "--input-shape", "2,4", "--config", str(tmp_path / "c.toml"), "--out", str(tmp_path / "o")],
           capsys, "c.toml", "not UTF-8")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("bundle")
    (folder / "m.py").write_text(MODEL)
    out = folder / "report"
    assert main(["build", f"{folder / 'm.py'}:build", "--data", "iris", "--only", "summary,graph",
                 "--out", str(out), "--no-cache"]) == 0
    return out / "inspection"


def _tampered(bundle: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "inspection"
    shutil.copytree(bundle, copy)
    return copy


@pytest.mark.parametrize("damage", ["deep-json", "dev-zero-link", "fifo", "huge-file", "truncated-npz",
                                    "npz-bomb", "bad-manifest-types", "not-json"])
def test_tampered_bundles(damage: str, bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                          monkeypatch: pytest.MonkeyPatch) -> None:
    import zipfile

    b = _tampered(bundle, tmp_path)
    if damage == "deep-json":
        (b / "summary.json").write_text("[" * 100_000 + "]" * 100_000)
    elif damage == "dev-zero-link":
        (b / "manifest.json").unlink()
        os.symlink("/dev/zero", b / "manifest.json")
    elif damage == "fifo":
        (b / "summary.json").unlink()
        os.mkfifo(b / "summary.json")
    elif damage == "huge-file":
        monkeypatch.setattr("nnreport.inspection.MAX_JSON_BYTES", 1000)
    elif damage == "truncated-npz":
        npz = next(b.glob("*.npz"))
        _truncate(npz)
    elif damage == "npz-bomb":
        npz = next(b.glob("*.npz"))
        monkeypatch.setattr("nnreport.inspection.MAX_NPZ_UNPACKED", 10)
        assert zipfile.is_zipfile(npz)
    elif damage == "bad-manifest-types":
        tree = json.loads((b / "manifest.json").read_text())
        tree["model"]["inputs"] = 7
        (b / "manifest.json").write_text(json.dumps(tree))
    elif damage == "not-json":
        (b / "manifest.json").write_bytes(b"\xff\xfe{")
    with pytest.raises(BundleError):
        Inspection.load(b)
    _fails(["render", str(b), "--out", str(tmp_path / "o")], capsys, "inspection")


def test_cnnvis_cell_positions_are_computed_in_one_pass() -> None:
    """Oracle: the per-cell formula the page used to evaluate for every cell (quadratic in classes)."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from cnnvis_classes import result

    from nnreport.site.pages.cnnvis import BLOCK_GAP, CELL, _cell_xs

    r = result(500)
    r = type(r)(**{**r.__dict__, "class_order": tuple(np.random.default_rng(1).permutation(500).tolist())})

    def slow(k: int) -> float:
        blocks = [r.column_bicluster[c] for c in r.class_order[:k + 1]]
        return k * CELL + BLOCK_GAP / 2 * sum(1 for a, b in zip(blocks, blocks[1:], strict=False) if a != b)

    assert np.allclose(_cell_xs(r), [slow(k) for k in range(500)])


@pytest.mark.parametrize("kind", ["torchscript", "state-dict", "pt2"])
def test_truncated_model_files(kind: str, model: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    net = torch.nn.Linear(4, 3)
    if kind == "torchscript":
        path = tmp_path / "m.ts"
        torch.jit.save(torch.jit.script(net), str(path))
    elif kind == "state-dict":
        path = tmp_path / "w.pt"
        torch.save(net.state_dict(), path)
    else:
        path = tmp_path / "m.pt2"
        torch.export.save(torch.export.export(net, (torch.randn(2, 4),)), path)
    _truncate(path, 0.7)
    _fails(["build", str(path), "--factory", model, "--input-shape", "2,4", "--out", str(tmp_path / "o")], capsys,
           path.name)


def test_fifo_in_an_image_folder_does_not_hang(model: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for c in ("a", "b"):
        (tmp_path / "imgs" / c).mkdir(parents=True)
        _png(tmp_path / "imgs" / c / "0.png")
    os.mkfifo(tmp_path / "imgs" / "b" / "1.png")
    (tmp_path / "imgs" / "a" / "1.png").write_bytes((tmp_path / "imgs" / "a" / "0.png").read_bytes())
    ds = load_data(str(tmp_path / "imgs"))  # returns (a fifo is never opened for reading, so nothing hangs)
    assert len(ds.x_train) + len(ds.x_test) == 3
    assert any("b/1.png: not a plain file" in note for note in ds.card_notes()), ds.card_notes()


def test_config_may_be_a_symlink_but_not_a_device(model: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "real.toml").write_text('preset = "quick"\n')
    os.symlink(tmp_path / "real.toml", tmp_path / "link.toml")
    os.symlink("/dev/zero", tmp_path / "zero.toml")
    _fails(["build", model, "--input-shape", "2,4", "--config", str(tmp_path / "zero.toml"), "--out", str(tmp_path / "o")],
           capsys, "zero.toml", "not a plain file")
    assert main(["build", model, "--input-shape", "2,4", "--config", str(tmp_path / "link.toml"), "--only", "summary",
                 "--no-cache", "--out", str(tmp_path / "o")]) == 0

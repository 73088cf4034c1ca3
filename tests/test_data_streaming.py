"""Streamed data: image folders and torch Datasets are read on demand, in batches, with bounded memory;
unreadable files are skipped and counted; explicit splits are used as given."""

from __future__ import annotations

import struct
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nnreport.cli import EXIT_USAGE, main
from nnreport.errors import SpecError
from nnreport.loading import DataOptions, load_data
from nnreport.streaming import ImageFiles, LazyInputs

MODES = ("L", "RGB", "RGBA", "P", "CMYK")


def make_folder(root: Path, per_class: int, size: int | None = None, seed: int = 0) -> Path:
    """Two classes of random images in every mode and several sizes: JPEG where the mode allows, PNG otherwise."""
    rng = np.random.default_rng(seed)
    for c in ("cat", "dog"):
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            side = size or int(rng.integers(20, 48))
            im = Image.fromarray(rng.integers(0, 255, (side, side + 5, 3), dtype=np.uint8)).convert(MODES[i % len(MODES)])
            im.save(root / c / (f"{i:04d}.png" if im.mode in ("RGBA", "P") else f"{i:04d}.jpg"), quality=85)
    return root


def png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG whose header claims width × height (a decompression bomb's shape) with almost no data."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))


def test_folder_in_every_mode_is_lazy_and_reads_in_batches(tmp_path: Path) -> None:
    ds = load_data(str(make_folder(tmp_path / "imgs", 10)))
    assert isinstance(ds.x_test, LazyInputs) and isinstance(ds.x_train, LazyInputs)
    assert ds.kind == "image" and ds.class_names == ("cat", "dog") and ds.input_shape[0] == 3
    assert len(ds.x_train) + len(ds.x_test) == 20 and ds.x_test.dtype == np.float32
    whole = np.asarray(ds.x_test)
    assert whole.shape == ds.x_test.shape and np.isfinite(whole).all()
    # Every way of indexing gives the same pixels as reading everything.
    assert np.array_equal(ds.x_test[1], whole[1]) and np.array_equal(ds.x_test[-1], whole[-1])
    assert np.array_equal(ds.x_test[1:4], whole[1:4]) and np.array_equal(ds.x_test[::2], whole[::2])
    assert np.array_equal(ds.x_test[np.array([[3, 0], [1, 1]])], whole[np.array([[3, 0], [1, 1]])])
    assert np.array_equal(ds.x_test[np.arange(len(whole)) % 2 == 0], whole[::2])
    batches = list(ds.x_test.batches(2))
    assert [len(b) for b in batches] == [2, 2, 1] and np.array_equal(np.concatenate(batches), whole)
    assert np.array_equal(np.stack(list(ds.x_test)), whole)
    with pytest.raises(IndexError):
        ds.x_test[len(whole)]
    # The displayed images undo exactly the normalisation that was applied.
    assert ds.mean is not None and ds.std is not None
    raw = ds.to_display(ds.x_test[:2])
    assert raw.min() >= 0 and raw.max() <= 1


def test_nothing_is_decoded_until_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nnreport import streaming

    ds = load_data(str(make_folder(tmp_path / "imgs", 40, size=24)), options=DataOptions(normalize="none"))
    seen: list[str] = []
    original = streaming.ImageFiles._one

    def counting(self: ImageFiles, path: str) -> np.ndarray:
        seen.append(path)
        return original(self, path)

    monkeypatch.setattr(streaming.ImageFiles, "_one", counting)
    assert len(ds.x_test) == 20 and ds.x_test.shape == (20, 3, 24, 29)
    assert not seen  # len and shape read nothing
    ds.x_test[:3]
    assert len(seen) == 3
    from nnreport.cache import dataset_fingerprint

    dataset_fingerprint(ds)
    assert len(seen) == 3  # the cache key reads file sizes and times, not pixels


def _peak_while(fn: object) -> int:
    tracemalloc.start()
    try:
        fn()  # type: ignore[operator]
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_peak_memory_does_not_grow_with_the_folder(tmp_path: Path) -> None:
    # Both are larger than the sample that data statistics are estimated on (256 images).
    small = make_folder(tmp_path / "small", 150, size=64)
    large = make_folder(tmp_path / "large", 450, size=64)

    def use(folder: Path) -> object:
        def run() -> None:
            ds = load_data(str(folder))
            for _ in ds.x_test.batches(16, n=64):
                pass
        return run

    peak_small, peak_large = _peak_while(use(small)), _peak_while(use(large))
    # Three times the images; eagerly decoded the large folder would hold 900 × 3×64×69 floats (48 MB).
    assert peak_large < 1.2 * peak_small + 1_000_000, (peak_small, peak_large)
    assert peak_large < 12_000_000


def test_unreadable_files_are_skipped_and_counted(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "imgs", 6, size=20)
    (root / "cat" / "notes.jpg").write_bytes(b"this is not an image")
    Image.fromarray(np.full((200, 200, 3), 90, np.uint8)).save(tmp_path / "whole.jpg")
    good = (tmp_path / "whole.jpg").read_bytes()
    (root / "dog" / "cut.jpg").write_bytes(good[: len(good) * 3 // 4])  # header intact, data cut
    (root / "dog" / "empty.png").write_bytes(b"")
    png_header_only(root / "dog" / "bomb.png", 8000, 8000)  # 64 megapixels: over the 50 M limit
    ds = load_data(str(root))
    assert ds.skipped_count == 4 and len(ds.x_train) + len(ds.x_test) == 12
    text = " ".join(ds.card_notes())
    assert "Skipped 4 unreadable file(s)" in text and "cat/notes.jpg" in text and "truncated JPEG" in text
    assert "8000×8000 pixels is over the limit" in text


def test_a_folder_of_unreadable_files_is_a_one_line_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for c in ("a", "b"):
        (tmp_path / "bad" / c).mkdir(parents=True)
        (tmp_path / "bad" / c / "x.png").write_bytes(b"garbage")
    with pytest.raises(SpecError, match="none of its image files could be read"):
        load_data(str(tmp_path / "bad"))
    model = tmp_path / "m.py"
    model.write_text("from torch import nn\ndef build():\n    return nn.Flatten()\n")
    assert main(["build", f"{model}:build", "--data", str(tmp_path / "bad"), "--out", str(tmp_path / "o")]) == EXIT_USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "none of its image files could be read" in err[0]


def test_image_folder_train_and_val_are_the_splits(tmp_path: Path) -> None:
    make_folder(tmp_path / "set" / "train", 8, size=20)
    make_folder(tmp_path / "set" / "val", 3, size=20, seed=1)
    ds = load_data(str(tmp_path / "set"))
    assert len(ds.x_train) == 16 and len(ds.x_test) == 6 and ds.class_names == ("cat", "dog")
    assert list(ds.y_test) == [0, 0, 0, 1, 1, 1]
    assert "val/" in ds.split and "no random split" in ds.split
    # The folders are used as given: the test inputs are exactly the val/ files.
    files = ds.x_test.files  # type: ignore[union-attr]
    assert [Path(f).parent.parent.name for f in files] == ["val"] * 6


def test_npz_with_explicit_splits_and_token_vocab(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "s.npz", x_train=rng.normal(size=(30, 4)).astype(np.float32), y_train=rng.integers(0, 2, 30),
             x_test=rng.normal(size=(7, 4)).astype(np.float32), y_test=rng.integers(0, 2, 7))
    ds = load_data(str(tmp_path / "s.npz"))
    with np.load(tmp_path / "s.npz") as z:
        assert np.array_equal(ds.x_test, z["x_test"]) and np.array_equal(ds.y_train, z["y_train"])
    assert "given separately" in ds.split
    np.savez(tmp_path / "t.npz", x=rng.integers(0, 5, (20, 6)), y=rng.integers(0, 2, 20),
             vocab=np.array(["<pad>", "the", "cat", "sat", "mat"]), classes=np.array(["neg", "pos"]))
    tokens = load_data(str(tmp_path / "t.npz"))
    assert tokens.kind == "sequence" and tokens.vocab == ("<pad>", "the", "cat", "sat", "mat")
    assert tokens.class_names == ("neg", "pos") and np.issubdtype(tokens.x_test.dtype, np.integer)
    assert "split at random (seed 0)" in tokens.split
    np.savez(tmp_path / "bad.npz", x=rng.integers(0, 9, (20, 6)), vocab=np.array(["a", "b"]))
    with pytest.raises(SpecError, match="vocab has 2 entries"):
        load_data(str(tmp_path / "bad.npz"))


def test_eval_data_is_the_test_split_for_any_spec(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "train.npz", x=rng.normal(size=(40, 4)).astype(np.float32), y=rng.integers(0, 3, 40))
    np.savez(tmp_path / "test.npz", x=rng.normal(size=(9, 4)).astype(np.float32), y=rng.integers(0, 3, 9))
    ds = load_data(str(tmp_path / "train.npz"), options=DataOptions(eval_data=str(tmp_path / "test.npz")))
    assert len(ds.x_train) == 40 and len(ds.x_test) == 9
    with np.load(tmp_path / "test.npz") as z:
        assert np.array_equal(ds.x_test, z["x"]) and np.array_equal(ds.y_test, z["y"])
    # Folders: the evaluation folder is read with the training folder's preprocessing (its data statistics).
    make_folder(tmp_path / "tr", 6, size=20)
    make_folder(tmp_path / "te", 2, size=20, seed=3)
    both = load_data(str(tmp_path / "tr"), options=DataOptions(eval_data=str(tmp_path / "te")))
    alone = load_data(str(tmp_path / "tr"))
    assert len(both.x_train) == 12 and len(both.x_test) == 4 and both.mean is not None
    assert "test inputs from te" in both.split
    assert both.mean != alone.mean  # all of tr/ (not its random 75 %) gave the statistics


def test_subject_eval_data_through_the_api(tmp_path: Path) -> None:
    import nnreport
    from nnreport.api import inspect
    from nnreport.config import ReportConfig

    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.normal(size=(24, 4)).astype(np.float32))
    subject = nnreport.Subject(torch.nn.Linear(4, 3), data=(x, torch.arange(24) % 3),
                               eval_data=(x[:5], torch.arange(5) % 3))
    insp = inspect(subject, config=ReportConfig(only=("summary",), cache=False))
    info = insp.manifest.model
    assert (info.num_train, info.num_test) == (24, 5)
    assert any("given separately" in n for n in info.data_notes)


class CountingImages(torch.utils.data.Dataset):  # type: ignore[type-arg]
    """PIL images with labels kept in `targets`; records every item read."""

    def __init__(self, n: int) -> None:
        self.n, self.read, self.targets = n, [], [i % 3 for i in range(n)]
        self.classes = ["a", "b", "c"]

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[Image.Image, int]:
        self.read.append(i)
        return Image.new("RGB", (40, 30), (i % 256, 50, 100)), self.targets[i]


def test_torch_dataset_reads_only_what_is_asked(tmp_path: Path) -> None:
    from nnreport.context import Context

    big = CountingImages(100_000)
    ds = load_data(big, options=DataOptions(transform="imagenet"))
    assert len(ds.x_train) + len(ds.x_test) == 100_000 and ds.input_shape == (3, 224, 224)
    assert len(big.read) <= 300  # the first item, the statistics sample is not needed (ImageNet's), a fingerprint
    big.read.clear()
    ctx = Context(torch.nn.Flatten(), (torch.zeros(1, 3, 224, 224),), ds)
    x, y = ctx.samples(5)
    assert x.shape == (5, 3, 224, 224) and y is not None and len(big.read) == 5
    expected = (np.array([big.read[0] % 256, 50, 100]) / 255 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    assert np.allclose(x[0, :, 100, 100].numpy(), expected, atol=1e-5)


def test_torch_dataset_of_token_ids_without_targets() -> None:
    class Tokens(torch.utils.data.Dataset):  # type: ignore[type-arg]
        vocab = [f"w{i}" for i in range(13)]

        def __len__(self) -> int:
            return 50

        def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
            return torch.arange(8) + i % 5, torch.tensor(i % 2)

    ds = load_data(Tokens())
    assert ds.kind == "sequence" and ds.x_test.dtype == np.int64 and ds.input_shape == (8,)
    assert ds.vocab is not None and ds.vocab[12] == "w12"
    assert ds.has_labels and set(np.unique(ds.y_train)) == {0, 1}
    assert np.array_equal(ds.x_test[0], np.asarray(ds.x_test)[0])


def test_build_reports_the_data_handling_on_the_card(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "imgs", 5, size=24)
    (root / "cat" / "junk.png").write_bytes(b"nope")
    model = tmp_path / "m.py"
    model.write_text("import torch\nfrom torch import nn\ndef build():\n    torch.manual_seed(0)\n"
                     "    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))\n")
    out = tmp_path / "out"
    assert main(["build", f"{model}:build", "--data", str(root), "--only", "summary", "--out", str(out), "--no-cache"]) == 0
    page = (out / "index.html").read_text()
    assert "Data handling" in page and "the folder&#39;s most common size" in page
    assert "split at random (seed 0)" in page and "Skipped 1 unreadable file(s)" in page
    assert main(["build", f"{model}:build", "--eval-data", str(root), "--out", str(out)]) == EXIT_USAGE


def test_a_callable_returning_a_dataset_of_pil_images_takes_the_transform(tmp_path: Path) -> None:
    (tmp_path / "d.py").write_text(
        "from PIL import Image\nimport torch\n\n"
        "class Photos(torch.utils.data.Dataset):\n"
        "    classes = ['a', 'b']\n"
        "    def __len__(self):\n        return 12\n"
        "    def __getitem__(self, i):\n        return Image.new('RGB', (300, 260), (i * 10, 0, 0)), i % 2\n\n"
        "def photos():\n    return Photos()\n")
    ds = load_data(f"{tmp_path / 'd.py'}:photos", options=DataOptions(transform="imagenet"))
    assert ds.input_shape == (3, 224, 224) and ds.class_names == ("a", "b") and ds.has_labels
    assert "centre-cropped to 224×224" in ds.preprocessing

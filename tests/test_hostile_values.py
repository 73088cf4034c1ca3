"""Hostile input, values: no wrong number is printed as a success (NaN, bad labels, 16-bit images,
sys.exit in forward, mistyped config)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nnreport.cli import EXIT_ANALYSES_FAILED, EXIT_USAGE, main
from nnreport.loading import load_data

MODELS = textwrap.dedent("""
    import sys
    import torch
    from torch import nn

    class Scaled(nn.Module):
        def __init__(self, scale, width=3):
            super().__init__()
            self.fc = nn.Linear(4, width)
            self.scale = scale
        def forward(self, x):
            return self.fc(x) * self.scale

    class Exits(nn.Module):
        def __init__(self, when):
            super().__init__()
            self.fc = nn.Linear(4, 3)
            self.when = when
        def forward(self, x):
            if self.when(x):
                sys.exit(0)
            return self.fc(x)

    def finite():
        torch.manual_seed(0)
        return Scaled(1.0)

    def nan():
        torch.manual_seed(0)
        return Scaled(float("nan"))

    def five():
        torch.manual_seed(0)
        return Scaled(1.0, width=5)

    def exits_always():
        return Exits(lambda x: True)

    def exits_on_one_sample():
        return Exits(lambda x: x.shape[0] == 1)
""")


@pytest.fixture()
def models(tmp_path: Path) -> Path:
    path = tmp_path / "models.py"
    path.write_text(MODELS)
    return path


def _npz(tmp_path: Path, name: str, x: np.ndarray | None = None, **arrays: object) -> Path:
    rng = np.random.default_rng(0)
    path = tmp_path / f"{name}.npz"
    x = rng.normal(size=(40, 4)).astype(np.float32) if x is None else x
    arrays.setdefault("y", np.arange(40) % 3)
    np.savez(path, x=x, **arrays)  # type: ignore[arg-type]
    return path


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_nan_outputs_are_stated_and_score_analyses_fail(models: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code = main(["build", f"{models}:nan", "--data", str(_npz(tmp_path, "d")), "--out", str(out),
                 "--only", "summary,relevance", "--no-cache"])
    err = capsys.readouterr().err
    assert code == EXIT_ANALYSES_FAILED and "not finite" in err
    manifest = json.loads((out / "inspection" / "manifest.json").read_text())
    assert "model's outputs hold" in manifest["model"]["nonfinite"]
    records = {r["name"]: r for r in manifest["records"]}
    assert records["relevance"]["status"] == "failed" and "NaN" in records["relevance"]["message"]
    summary = json.loads((out / "inspection" / "summary.json").read_text())
    assert summary["accuracy"] is None  # not "10.0 %"
    assert "Not finite" in (out / "index.html").read_text()


def test_nan_in_the_data_is_stated(models: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    x = np.random.default_rng(0).normal(size=(40, 4)).astype(np.float32)
    x[5, 2] = np.inf
    out = tmp_path / "out"
    code = main(["build", f"{models}:finite", "--data", str(_npz(tmp_path, "d", x)), "--out", str(out),
                 "--only", "summary", "--no-cache"])
    assert code == EXIT_ANALYSES_FAILED
    manifest = json.loads((out / "inspection" / "manifest.json").read_text())
    assert "the data holds 1 NaN or infinite value" in manifest["model"]["nonfinite"]


def test_finite_model_is_not_flagged(models: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["build", f"{models}:finite", "--data", str(_npz(tmp_path, "d")), "--out", str(out),
                 "--only", "summary", "--no-cache"]) == 0
    assert json.loads((out / "inspection" / "manifest.json").read_text())["model"]["nonfinite"] == ""


@pytest.mark.parametrize(("model", "arrays", "fragment"), [
    ("finite", {"y": -(np.arange(40) % 3)}, "negative label"),
    ("finite", {"y": np.arange(40) % 3 + 0.5}, "integer class indices"),
    ("finite", {"y": np.eye(3)[np.arange(40) % 3]}, "shape (40, 3)"),
    ("finite", {"y": np.array(["a", "b"] * 20)}, "dtype <U1"),
    ("finite", {"y": np.arange(40) % 4, "classes": np.array(["a", "b", "c"])}, "go up to 3, but the data names 3 classes"),
    ("finite", {"y": np.arange(40) % 5}, "labels up to 4, but the model's output has only 3 scores"),
    ("five", {"classes": np.array(["a", "b", "c"])}, "names 3 classes, but the model's output has 5 scores"),
])
def test_bad_labels_are_one_line_errors(model: str, arrays: dict[str, np.ndarray], fragment: str, models: Path,
                                        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["build", f"{models}:{model}", "--data", str(_npz(tmp_path, "d", **arrays)),
                 "--out", str(tmp_path / "out"), "--only", "summary", "--no-cache"])
    line = _one_line(capsys)
    assert code == EXIT_USAGE and fragment in line, line
    assert not (tmp_path / "out").exists()


def test_whole_float_labels_are_accepted(models: Path, tmp_path: Path) -> None:
    ds = load_data(str(_npz(tmp_path, "d", y=(np.arange(40) % 3).astype(np.float32))))
    assert ds.y_train is not None and ds.y_train.dtype == np.int64 and ds.num_classes == 3


def test_sixteen_bit_grayscale_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    for c, level in (("dark", 1000), ("bright", 60000)):
        (tmp_path / "imgs" / c).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((8, 8), level + i, dtype=np.uint16)).save(tmp_path / "imgs" / c / f"{i}.png")
    ds = load_data(str(tmp_path / "imgs"))
    assert ds.mean is not None and ds.std is not None
    raw = np.concatenate([ds.x_train, ds.x_test]) * ds.std[0] + ds.mean[0]
    assert raw.min() == pytest.approx(1000 / 65535, abs=1e-4) and raw.max() == pytest.approx(60002 / 65535, abs=1e-4)


def test_sys_exit_in_forward_never_ends_the_build_with_0(models: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["build", f"{models}:exits_always", "--input-shape", "2,4", "--out", str(tmp_path / "a"), "--no-cache"])
    line = _one_line(capsys)
    assert code == EXIT_USAGE and "sys.exit(0)" in line
    out = tmp_path / "b"
    code = main(["build", f"{models}:exits_on_one_sample", "--input-shape", "2,4", "--out", str(out),
                 "--only", "summary", "--no-cache"])
    assert code == EXIT_ANALYSES_FAILED and (out / "index.html").exists()
    record = json.loads((out / "inspection" / "manifest.json").read_text())["records"][0]
    assert record["status"] == "failed" and "sys.exit(0)" in record["message"]


@pytest.mark.parametrize(("toml", "fragment"), [
    ('single_file = "false"', "single_file = 'false' is not a bool"),
    ('skip = "landscape"', "skip = 'landscape' is not a list of str"),
    ("seed = -1", "seed -1 is not a whole number"),
    ("seed = 1.5", "seed = 1.5 is not a whole number"),
    ('preset = "fast"', "preset = 'fast' is not one of"),
    ("[analyses.sumary]\nmax_eval_samples = 5", "unknown analysis table(s) [analyses.sumary]"),
    ('[analyses.summary]\nmax_eval_samples = "5"', "max_eval_samples = '5' is not a whole number"),
    ("analyses = 3", "analyses = 3 is not a table"),
])
def test_mistyped_config_values_are_refused(toml: str, fragment: str, models: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "c.toml"
    config.write_text(toml + "\n")
    code = main(["build", f"{models}:finite", "--input-shape", "2,4", "--config", str(config),
                 "--out", str(tmp_path / "out")])
    line = _one_line(capsys)
    assert code == EXIT_USAGE and fragment in line, line


def test_negative_seed_on_the_command_line(models: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["build", f"{models}:finite", "--input-shape", "2,4", "--seed", "-3", "--out", str(tmp_path / "o")])
    assert code == EXIT_USAGE and "seed -3" in _one_line(capsys)

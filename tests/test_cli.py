"""The command line: fast help without torch, one-line errors, exit codes, and every model/data spec."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from nnreport.cli import EXIT_ANALYSES_FAILED, EXIT_USAGE, main

ROOT = Path(__file__).resolve().parents[1]

MODEL_FILE = textwrap.dedent("""
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 3)
        def forward(self, x):
            return self.fc(x)

    def build():
        torch.manual_seed(0)
        return Net()

    def with_inputs():
        import nnreport
        return nnreport.Subject(build(), example_inputs=torch.randn(2, 4), class_names=["a", "b", "c"])

    def broken():
        raise RuntimeError("no weights here")

    def not_a_module():
        return 42

    def data():
        g = torch.Generator().manual_seed(0)
        return torch.randn(40, 4, generator=g), torch.randint(0, 3, (40,), generator=g)
""")


@pytest.fixture()
def model_file(tmp_path: Path) -> Path:
    path = tmp_path / "net.py"
    path.write_text(MODEL_FILE)
    return path


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nnreport", *args], capture_output=True, text=True,
                          cwd=cwd or ROOT, timeout=600)


def test_help_is_fast_and_does_not_import_torch() -> None:
    code = "import sys, runpy; sys.argv=['nnreport','--help']\n" \
           "try:\n    runpy.run_module('nnreport', run_name='__main__')\nexcept SystemExit: pass\n" \
           "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert "nnreport build" in out.stdout or "build" in out.stdout
    assert out.stdout.strip().endswith("NO-TORCH")
    for sub in ("build", "render", "demo"):
        out = subprocess.run([sys.executable, "-c", code.replace("'--help'", f"'{sub}', '--help'")],
                             capture_output=True, text=True, cwd=ROOT, timeout=60)
        assert out.stdout.strip().endswith("NO-TORCH"), sub


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("nnreport: error:")
    return err[0]


@pytest.mark.parametrize("args, fragment", [
    (["build", "missing.py:build"], "does not exist"),
    (["build", "nonsense"], "model spec"),
    (["build", "{model}"], "names a file but no callable"),
    (["build", "{model}:nope"], "has no 'nope'"),
    (["build", "{model}:broken"], "calling it failed"),
    (["build", "{model}:not_a_module"], "return an nn.Module"),
    (["build", "{model}:build"], "--input-shape"),
    (["build", "{model}:build", "--data", "nodata"], "unknown data"),
    (["build", "{model}:build", "--data", "x.npz"], "does not exist"),
    (["build", "{model}:build", "--input-shape", "1,a"], "not a shape"),
    (["build", "{model}:build", "--input-shape", "1,4", "--theme", "neon"], "unknown theme"),
    (["build", "{model}:build", "--input-shape", "1,4", "--only", "nothing"], "unknown analysis"),
    (["build", "{model}:build", "--preset", "fast"], "invalid choice"),
    (["render", "/nonexistent", "--out", "x"], "not an inspection bundle"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_input_gives_one_line_and_exit_2(args: list[str], fragment: str, model_file: Path,
                                            capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    args = [a.replace("{model}", str(model_file)) for a in args]
    code = main(args + (["--out", str(tmp_path / "o")] if args[0] == "build" else []))
    assert code == EXIT_USAGE
    assert fragment in _one_line_error(capsys)


def test_build_from_file_callable_with_subject(model_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "r"
    assert main(["build", f"{model_file}:with_inputs", "--out", str(out), "--only", "summary"]) == 0
    assert (out / "index.html").is_file() and (out / "inspection" / "manifest.json").is_file()


def test_build_with_data_callable_and_package_module_spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / "mypkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "nets.py").write_text(MODEL_FILE)
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "r"
    assert main(["build", "mypkg.nets:build", "--data", f"{pkg / 'nets.py'}:data", "--out", str(out), "--only", "summary"]) == 0
    assert "Test accuracy" in (out / "summary.md").read_text()


def _weights(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    path = tmp_path / "w.pt"
    torch.save(torch.nn.Linear(4, 3).state_dict(), path)
    return path


def test_state_dict_needs_factory_then_loads(model_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    weights = tmp_path / "fc.pt"
    net = torch.nn.Module()
    net.fc = torch.nn.Linear(4, 3)
    torch.save(net.state_dict(), weights)
    assert main(["build", str(weights), "--input-shape", "2,4", "--out", str(tmp_path / "a")]) == EXIT_USAGE
    assert "--factory" in _one_line_error(capsys)
    assert main(["build", str(weights), "--factory", f"{model_file}:build", "--input-shape", "2,4",
                 "--out", str(tmp_path / "b"), "--only", "summary"]) == 0
    capsys.readouterr()
    wrong = _weights(tmp_path)  # keys weight/bias, not fc.weight
    assert main(["build", str(wrong), "--factory", f"{model_file}:build", "--input-shape", "2,4",
                 "--out", str(tmp_path / "c")]) == EXIT_USAGE
    assert "Missing key(s)" in _one_line_error(capsys)


def test_pickled_module_is_refused_unless_unsafe(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "whole.pt"
    torch.save(torch.nn.Sequential(torch.nn.Linear(4, 2)), path)
    assert main(["build", str(path), "--input-shape", "2,4", "--out", str(tmp_path / "a")]) == EXIT_USAGE
    assert "--unsafe-pickle" in _one_line_error(capsys)
    assert main(["build", str(path), "--unsafe-pickle", "--input-shape", "2,4", "--out", str(tmp_path / "b"),
                 "--only", "summary"]) == 0


def test_torchscript_and_exported_program(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    scripted = tmp_path / "m.ts"
    torch.jit.save(torch.jit.script(model), scripted)
    assert main(["build", str(scripted), "--input-shape", "2,4", "--out", str(tmp_path / "a"), "--only", "summary"]) == 0
    exported = tmp_path / "m.pt2"
    torch.export.save(torch.export.export(model, (torch.randn(2, 4),)), exported)
    assert main(["build", str(exported), "--out", str(tmp_path / "b"), "--only", "summary"]) == 0
    assert "2×4" in (tmp_path / "b" / "index.html").read_text()


def test_data_specs_npz_pt_and_image_folder(model_file: Path, tmp_path: Path) -> None:
    from PIL import Image

    from nnreport.loading import load_data

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", x=rng.normal(size=(20, 4)).astype(np.float32), y=rng.integers(0, 3, 20),
             classes=np.array(["a", "b", "c"]))
    ds = load_data(str(tmp_path / "d.npz"))
    assert ds.class_names == ("a", "b", "c") and len(ds.x_train) + len(ds.x_test) == 20 and ds.kind == "tabular"
    torch.save({"x": torch.randn(12, 2), "y": torch.arange(12) % 2}, tmp_path / "d.pt")
    assert load_data(str(tmp_path / "d.pt")).kind == "points"
    for cls in ("cat", "dog"):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(tmp_path / "imgs" / cls / f"{i}.png")
    ds = load_data(str(tmp_path / "imgs"))
    assert ds.kind == "image" and ds.input_shape == (3, 8, 8) and ds.class_names == ("cat", "dog")
    assert ds.mean is not None and ds.to_display(ds.x_test).min() >= 0


def test_failing_analysis_keeps_the_report_and_exits_3(model_file: Path, tmp_path: Path) -> None:
    from dataclasses import dataclass

    from nnreport.analyses import REGISTRY, analysis

    @dataclass(frozen=True)
    class Cfg:
        pass

    @dataclass(frozen=True)
    class Res:
        pass

    @analysis("zz_broken", title="Broken on purpose", config=Cfg, result=Res)
    def broken(ctx: object, config: Cfg) -> Res:
        raise ValueError("kaputt")

    try:
        out = tmp_path / "r"
        assert main(["build", f"{model_file}:build", "--input-shape", "2,4", "--out", str(out),
                     "--only", "summary,zz_broken"]) == EXIT_ANALYSES_FAILED
        index = (out / "index.html").read_text()
        assert "kaputt" in index and "Broken on purpose" in index
    finally:
        REGISTRY.pop("zz_broken")


def test_python_m_entry_point_and_version() -> None:
    out = run_cli("--version")
    assert out.returncode == 0 and out.stdout.startswith("nnreport ")


def test_checkpoints_must_match_the_model(model_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from nnreport.loading import load_checkpoints, load_model

    subject = load_model(f"{model_file}:build")
    good = tmp_path / "good.pt"
    torch.save(subject.model.state_dict(), good)
    assert len(load_checkpoints([str(good)], subject.model)) == 1
    bad = _weights(tmp_path)
    assert main(["build", f"{model_file}:build", "--input-shape", "2,4", "--checkpoints", f"{good},{bad}",
                 "--out", str(tmp_path / "o")]) == EXIT_USAGE
    assert "does not match" in _one_line_error(capsys)


def test_data_the_model_cannot_take_is_a_one_line_error(model_file: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", f"{model_file}:build", "--data", "digits", "--out", str(tmp_path / "o")]) == EXIT_USAGE
    err = _one_line_error(capsys)
    assert "cannot run on the data 'digits'" in err and "(2, 1, 16, 16)" in err
    assert not (tmp_path / "o").exists()
    assert main(["build", f"{model_file}:build", "--input-shape", "2,5", "--out", str(tmp_path / "o")]) == EXIT_USAGE
    assert "cannot run on its example inputs ((2, 5) torch.float32)" in _one_line_error(capsys)

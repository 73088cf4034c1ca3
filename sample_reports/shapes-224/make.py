"""Regenerate this folder: render the built-in `shapes` at 224 px into a temporary image folder (ImageNet
layout: train/<class>/*.png and val/<class>/*.png), train the small ResNet of model.py on it, read through
nnreport's own image-folder loader, save weights.pt, build report/ from that folder, and write README.md.

    python3 sample_reports/shapes-224/make.py          (from the repository root; a few minutes on 2 cores)
    python3 sample_reports/shapes-224/make.py --keep   (keep weights.pt: only render and rebuild the report)

The rendered images are not committed (they are made again, identically, from the seed).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from model import WEIGHTS, ShapesResNet  # noqa: E402

from nnreport.datasets import SHAPE_NAMES, make_shapes  # noqa: E402
from nnreport.loading import load_data  # noqa: E402

SIZE, N_TRAIN, N_TEST, SEED = 224, 1200, 200, 0
EPOCHS, LR, BATCH = 12, 1e-2, 32
COMMAND = ("python3 -m nnreport build sample_reports/shapes-224/model.py:build --data FOLDER --preset quick "
           "--no-timings --config sample_reports/shapes-224/report.toml --out sample_reports/shapes-224/report")


def render(root: Path) -> None:
    """PNG files of `shapes` at SIZE px in the ImageNet layout, in chunks (bounded memory)."""
    for split, n, seed in (("train", N_TRAIN, SEED + 1), ("val", N_TEST, SEED + 2)):
        for name in SHAPE_NAMES:
            (root / split / name).mkdir(parents=True, exist_ok=True)
        for chunk in range(0, n, 100):
            images, labels, _ = make_shapes(min(100, n - chunk), seed * 1000 + chunk, SIZE)
            for i, (img, label) in enumerate(zip(images, labels, strict=True)):
                pixels = np.round(img.transpose(1, 2, 0) * 255).astype(np.uint8)
                Image.fromarray(pixels).save(root / split / SHAPE_NAMES[label] / f"{chunk + i:04d}.png")


def evaluate(model: torch.nn.Module, x, y: np.ndarray) -> float:
    model.eval()
    right = 0
    with torch.no_grad():
        for start in range(0, len(y), 50):
            idx = np.arange(start, min(start + 50, len(y)))
            right += int((model(torch.from_numpy(x[idx])).argmax(1).numpy() == y[idx]).sum())
    return right / len(y)


def train(folder: Path) -> float:
    """Train on the folder as nnreport reads it (same decoding and normalisation); the test accuracy."""
    data = load_data(str(folder), SEED)
    assert data.y_train is not None and data.y_test is not None
    torch.manual_seed(SEED)
    model = ShapesResNet(len(data.class_names))
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    steps = EPOCHS * ((len(data.y_train) + BATCH - 1) // BATCH)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=LR, total_steps=steps)
    rng = np.random.default_rng(SEED)
    for epoch in range(EPOCHS):
        model.train()
        order, total = rng.permutation(len(data.y_train)), 0.0
        for start in range(0, len(order), BATCH):
            idx = np.sort(order[start:start + BATCH])
            x, y = torch.from_numpy(data.x_train[idx]), torch.from_numpy(data.y_train[idx])
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        acc = evaluate(model, data.x_test, data.y_test)
        print(f"epoch {epoch + 1}: loss {total / len(order):.3f}, test accuracy {100 * acc:.1f}%", flush=True)
    torch.save(model.state_dict(), WEIGHTS)
    return acc


def main() -> None:
    torch.set_num_threads(1)
    folder = Path(tempfile.mkdtemp(prefix="nnreport-shapes224-"))
    try:
        t0 = time.perf_counter()
        render(folder)
        print(f"rendered in {time.perf_counter() - t0:.0f} s", flush=True)
        t0 = time.perf_counter()
        if "--keep" in sys.argv[1:]:
            data = load_data(str(folder), SEED)
            acc = evaluate(__import__("model").build().model, data.x_test, data.y_test)
            train_s = float("nan")
        else:
            acc = train(folder)
            train_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        command = COMMAND.replace("FOLDER", str(folder)).split()
        subprocess.run([sys.executable, *command[1:]], check=True, cwd=ROOT)  # python3 -m nnreport build ...
        build_s = time.perf_counter() - t0
        # The pages do not need the re-render bundle (full-resolution float arrays, about 9 MB at 224 px):
        # leave it out of the committed folder.
        shutil.rmtree(HERE / "report" / "inspection")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    write_readme(acc, train_s, build_s)


def _size(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def write_readme(acc: float, train_s: float, build_s: float) -> None:
    lines = ["<!-- GENERATED by sample_reports/shapes-224/make.py; do not edit. -->",
             "# A real-resolution report: a small ResNet on 224-px shapes, read from an image folder", "",
             "GENERATED by `python3 sample_reports/shapes-224/make.py` (from the repository root), which renders "
             f"the built-in `shapes` at {SIZE} px into a temporary folder in the ImageNet layout "
             f"(`train/<class>/*.png`: {N_TRAIN} images, `val/<class>/*.png`: {N_TEST} images; not committed), "
             "trains the model and builds the report with", "", f"    {COMMAND}", "",
             "Open [report/index.html](report/index.html). The report reads the folder as a stream (its model card's "
             "*Data handling* lines state the split, the size and the normalisation), perturbs regions sized for "
             "224 px on the relevance page and shows activation maximisation over each unit's receptive field. "
             "[report.toml](report.toml) keeps fewer images than the quick preset, and make.py deletes the "
             "report's `inspection/` bundle (about 9 MB of full-resolution arrays, only needed by `nnreport render`), "
             "so that the folder stays small.", "",
             f"- Model ([model.py](model.py)): 7×7 stride-2 stem to 16 channels + max-pool, three residual stages "
             "of 16/32/64 channels with stride 2, global average pool, linear; "
             f"{sum(p.numel() for p in ShapesResNet().parameters()):,} parameters; weights in weights.pt "
             "(loaded with `weights_only=True`).",
             f"- Training: Adam with a one-cycle schedule to lr {LR}, batch {BATCH}, {EPOCHS} epochs, seed {SEED}, "
             "one thread, on the images as nnreport's folder loader decodes and normalises them"
             + (f" ({train_s:.0f} s)." if train_s == train_s else "."),
             f"- Test accuracy (val/, {N_TEST} images): **{100 * acc:.1f}%**.",
             f"- Report build: {build_s:.0f} s; report/ holds {_size(HERE / 'report'):.1f} MB "
             f"(this whole folder {_size(HERE):.1f} MB).", "",
             "Times were measured on a shared, loaded 2-core machine; expect them to vary.", ""]
    (HERE / "README.md").write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

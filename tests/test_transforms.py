"""The model's own preprocessing (--transform, --image-size, --normalize), the display that undoes it, and the
evaluation settings that follow the input size."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nnreport.cli import EXIT_USAGE, main
from nnreport.errors import UsageError
from nnreport.loading import DataOptions, load_data
from nnreport.preprocess import IMAGENET_MEAN, IMAGENET_STD, Preprocess, from_options, normalisation_of

COLOUR = (200, 100, 50)


def flat_folder(root: Path, size: tuple[int, int] = (300, 260), colour: tuple[int, int, int] = COLOUR) -> Path:
    for c in ("a", "b"):
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(3):
            Image.new("RGB", size, colour).save(root / c / f"{i}.png")
    return root


def test_imagenet_transform_is_exactly_the_imagenet_normalisation(tmp_path: Path) -> None:
    ds = load_data(str(flat_folder(tmp_path / "f")), options=DataOptions(transform="imagenet"))
    x = ds.x_train[:2]
    assert x.shape == (2, 3, 224, 224)
    expected = (np.array(COLOUR) / 255.0 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    assert np.allclose(x, expected.reshape(1, 3, 1, 1), atol=1e-6, rtol=0)
    assert ds.mean == IMAGENET_MEAN and ds.std == IMAGENET_STD
    # The display undoes exactly that normalisation.
    assert np.allclose(ds.to_display(x), (np.array(COLOUR) / 255.0).reshape(1, 3, 1, 1), atol=1e-6)
    text = ds.card_notes()[0]
    assert "shorter side resized to 256 px" in text and "centre-cropped to 224×224" in text and "ImageNet" in text


def test_resize_and_centre_crop_geometry() -> None:
    # A 300×200 image with a marker column at the centre: after resize 256 (384×256) and crop 224 it stays central.
    img = np.zeros((200, 300, 3), np.uint8)
    img[:, 148:152] = 255
    x = Preprocess(resize=256, crop=224)(Image.fromarray(img))
    assert x.shape == (3, 224, 224)
    column = x[0].mean(0)
    assert abs(int(np.argmax(column)) - 111.5) <= 2
    # Smaller than the crop: padded with zeros, as torchvision's CenterCrop does.
    assert Preprocess(crop=64)(Image.new("L", (20, 30), 255)).shape == (3, 64, 64)


def test_image_size_and_normalize_options(tmp_path: Path) -> None:
    folder = flat_folder(tmp_path / "f", size=(50, 40))
    raw = load_data(str(folder), options=DataOptions(image_size=32, normalize="none"))
    assert raw.input_shape == (3, 32, 32) and raw.mean is None
    assert np.allclose(raw.x_test[:1], (np.array(COLOUR) / 255.0).reshape(1, 3, 1, 1), atol=1e-6)
    inet = load_data(str(folder), options=DataOptions(normalize="imagenet"))
    assert inet.input_shape == (3, 40, 50) and inet.mean == IMAGENET_MEAN
    data = load_data(str(folder), options=DataOptions(image_size=16))
    assert data.input_shape == (3, 16, 16) and "the data's own" in data.preprocessing
    assert "not normalised" in raw.preprocessing


def test_grey_folders_and_16_bit_images(tmp_path: Path) -> None:
    for c in ("a", "b"):
        (tmp_path / "g" / c).mkdir(parents=True)
        Image.new("L", (12, 12), 128).save(tmp_path / "g" / c / "0.png")
        Image.fromarray(np.full((12, 12), 65535 // 2, np.uint16)).save(tmp_path / "g" / c / "1.png")
    ds = load_data(str(tmp_path / "g"), options=DataOptions(normalize="none"))
    assert ds.input_shape == (1, 12, 12)
    values = sorted(float(v[0, 0, 0]) for v in np.asarray(ds.x_train))
    assert all(abs(v - 0.5) < 0.01 for v in values)  # 16-bit grey scaled by 65535, not clipped at 255


TRANSFORM_FILE = textwrap.dedent("""
    import numpy as np
    import torch

    class Normalize:
        def __init__(self, mean, std):
            self.mean, self.std = mean, std

    class Compose:
        '''Shaped like torchvision's: the steps in `transforms`.'''
        def __init__(self, transforms):
            self.transforms = transforms
        def __call__(self, im):
            x = torch.from_numpy(np.asarray(im.resize((20, 20)), dtype=np.float32) / 255).permute(2, 0, 1)
            n = self.transforms[0]
            return (x - torch.tensor(n.mean).view(3, 1, 1)) / torch.tensor(n.std).view(3, 1, 1)

    preprocess = Compose([Normalize([0.5, 0.5, 0.5], [0.25, 0.25, 0.25])])

    def plain(im):
        return torch.ones(3, 8, 8)
""")


def test_callable_transform_from_a_file(tmp_path: Path) -> None:
    (tmp_path / "tf.py").write_text(TRANSFORM_FILE)
    folder = flat_folder(tmp_path / "f", size=(30, 30))
    ds = load_data(str(folder), options=DataOptions(transform=f"{tmp_path / 'tf.py'}:preprocess"))
    assert ds.input_shape == (3, 20, 20) and ds.mean == (0.5, 0.5, 0.5) and ds.std == (0.25, 0.25, 0.25)
    assert np.allclose(ds.to_display(ds.x_test[:1]), (np.array(COLOUR) / 255).reshape(1, 3, 1, 1), atol=1e-6)
    assert "tf.py:preprocess" in ds.preprocessing and "undone for display" in ds.preprocessing
    plain = load_data(str(folder), options=DataOptions(transform=f"{tmp_path / 'tf.py'}:plain"))
    assert plain.mean is None and "normalisation is unknown" in plain.preprocessing
    with pytest.raises(UsageError, match="do not combine"):
        load_data(str(folder), options=DataOptions(transform=f"{tmp_path / 'tf.py'}:plain", normalize="none"))


def test_normalisation_is_found_inside_torchvision_transforms() -> None:
    tv = pytest.importorskip("torchvision")
    from torchvision import transforms as T

    compose = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
    assert normalisation_of(compose) == (IMAGENET_MEAN, IMAGENET_STD)
    preset = tv.models.ResNet18_Weights.DEFAULT.transforms()
    assert normalisation_of(preset) == (IMAGENET_MEAN, IMAGENET_STD)
    told = from_options(preset, None, None, "RGB", name="w.py:preset")
    assert told is not None and "crop_size=[224]" in told.describe()  # the card states its sizes too
    # Our imagenet preset and torchvision's give the same tensors.
    rng = np.random.default_rng(0)
    im = Image.fromarray(rng.integers(0, 255, (300, 400, 3), dtype=np.uint8)).filter(__import__("PIL.ImageFilter").ImageFilter.GaussianBlur(3))
    ours = from_options("imagenet", None, None, "RGB")
    assert ours is not None
    assert np.abs(ours(im) - compose(im).numpy()).max() < 1e-5


def test_cli_transform_options_and_their_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = flat_folder(tmp_path / "f", size=(64, 48))
    model = tmp_path / "m.py"
    model.write_text("import torch\nfrom torch import nn\ndef build():\n    torch.manual_seed(0)\n"
                     "    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))\n")
    out = tmp_path / "out"
    assert main(["build", f"{model}:build", "--data", str(folder), "--transform", "imagenet", "--only", "summary",
                 "--out", str(out), "--no-cache"]) == 0
    page = (out / "index.html").read_text()
    assert "centre-cropped to 224×224" in page and "3×224×224" in page.replace(" ", "")
    capsys.readouterr()
    assert main(["build", f"{model}:build", "--data", str(folder), "--transform", "sepia", "--out", str(out)]) == EXIT_USAGE
    assert main(["build", f"{model}:build", "--data", str(folder), "--normalize", "zca", "--out", str(out)]) == EXIT_USAGE
    assert main(["build", f"{model}:build", "--data", str(folder), "--image-size", "0", "--out", str(out)]) == EXIT_USAGE
    assert main(["build", f"{model}:build", "--data", "digits", "--transform", "imagenet", "--out", str(out)]) == EXIT_USAGE
    assert main(["build", f"{model}:build", "--transform", "imagenet", "--out", str(out)]) == EXIT_USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 5 and all(line.startswith("nnreport: error:") for line in err)
    assert "holds model inputs already" in err[3] and "pass --data too" in err[4]


def test_thumbnails_are_at_most_224_pixels() -> None:
    from nnreport.site.images import thumbnail, to_rgb

    assert to_rgb(np.zeros((3, 448, 300))).shape == (224, 150, 3)
    assert to_rgb(np.zeros((3, 224, 224))).shape == (224, 224, 3)
    assert thumbnail(np.zeros((500, 100, 3), np.uint8)).shape == (166, 33, 3)


@pytest.mark.parametrize("side", [224, 299, 512])
def test_region_perturbation_covers_a_tenth_of_large_images(side: int) -> None:
    from nnreport.relevance.perturbation import auto_region, region_index, schedule
    from nnreport.relevance.results import RelevanceConfig

    for preset in ("quick", "standard", "thorough"):
        config = ReportConfigLike(preset)
        region = auto_region(side)
        _, count = region_index((3, side, side), region)
        steps, per_step = schedule(count, config.steps, config.min_removed)
        assert steps <= config.steps
        assert steps * per_step * region * region / (side * side) >= 0.1 * 0.95  # edge regions can be partial
        assert steps * per_step >= 0.1 * count
    assert auto_region(224) == 9 and RelevanceConfig().region == 0


def ReportConfigLike(preset: str) -> object:  # noqa: N802 - reads like the config it builds
    from nnreport.config import ReportConfig
    from nnreport.relevance.results import RelevanceConfig

    return ReportConfig(preset=preset).analysis_config("relevance", RelevanceConfig)  # type: ignore[arg-type]


def test_small_images_keep_todays_perturbation() -> None:
    from nnreport.relevance.perturbation import auto_region, region_index, schedule

    assert auto_region(16) == 2 and auto_region(32) == 2
    _, count = region_index((1, 16, 16), 2)
    assert schedule(count, 16, 0.1) == (16, 1) and schedule(count, 8, 0.1) == (8, 1)


def test_perturbation_curve_does_not_depend_on_the_chunking() -> None:
    from nnreport.relevance import perturbation as P

    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 3, 40, 40, generator=g)
    weights = torch.randn(3, 40, 40, generator=g)

    def score(batch: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return (batch * weights).sum(dim=(1, 2, 3))

    ids, count = P.region_index((3, 40, 40), 4)
    order = np.stack([np.random.default_rng(i).permutation(count) for i in range(3)])
    target = torch.zeros(3, dtype=torch.long)
    fill = torch.zeros_like(x)
    a = P.perturbation_curve(score, x, target, order, ids, 10, fill, batch=256, per_step=3)
    b = P.perturbation_curve(score, x, target, order, ids, 10, fill, batch=4, per_step=3)
    assert np.allclose(a.drop, b.drop, atol=1e-4) and len(a.drop) == 11
    # Oracle: remove regions 3 at a time by hand for the first sample.
    img = x[0].clone()
    for k in range(1, 11):
        for r in order[0, 3 * (k - 1):3 * k]:
            img[torch.from_numpy(ids == r)] = 0
    last = float((x[0] * weights).sum() - (img * weights).sum())
    assert abs(last - float(P.perturbation_curve(score, x[:1], target[:1], order[:1], ids, 10, fill[:1], per_step=3).drop[-1])) < 1e-3

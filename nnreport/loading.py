"""Model specs and data specs -> nn.Module, example inputs and a Dataset, resolved once into a Subject."""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
import zipfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nnreport.datasets import Dataset, builtin_names, load_builtin
from nnreport.errors import SpecError, UsageError, first_line
from nnreport.subject import Subject

if TYPE_CHECKING:
    import torch
    from torch import nn

MODEL_SPEC_HELP = (
    "a model spec is path/to/file.py:callable, package.module:callable, an exported program (.pt2), "
    "a TorchScript archive, or weights.pt with --factory file.py:callable"
)
WEIGHT_SUFFIXES = (".pt", ".pth", ".ts", ".jit", ".bin", ".ckpt")
MAX_DATASET_ITEMS = 4096


def load_callable(spec: str, what: str = "model") -> Callable[..., Any]:
    """Resolve `path/to/file.py:name` or `package.module:name` to the object it names."""
    target, sep, attr = spec.rpartition(":")
    if not sep or not target or not attr:
        raise SpecError(f"{what} spec {spec!r} names no callable; write FILE.py:callable or package.module:callable")
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            raise SpecError(f"{what} spec {spec!r}: file {target} does not exist")
        module = _import_file(path)
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as exc:
            raise SpecError(f"{what} spec {spec!r}: cannot import {target} ({exc})") from None
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            names = ", ".join(n for n in dir(module) if not n.startswith("_"))[:200]
            raise SpecError(f"{what} spec {spec!r}: {target} has no {attr!r} (it defines: {names})")
        obj = getattr(obj, part)
    if not callable(obj):
        raise SpecError(f"{what} spec {spec!r}: {attr} is not callable")
    return obj


def _import_file(path: Path) -> Any:
    name = "nnreport_user_" + re.sub(r"\W", "_", str(path.resolve()))
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SpecError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.resolve().parent))  # so the file can import its neighbours
    try:
        sys.modules[name] = module
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        raise SpecError(f"importing {path} failed: {type(exc).__name__}: {exc}") from exc
    finally:
        sys.path.remove(str(path.resolve().parent))
    return module


def load_model(spec: str | Any, factory: str | None = None, unsafe_pickle: bool = False, seed: int = 0) -> Subject:
    """Turn a model spec (or an nn.Module / Subject) into a Subject.

    Factories run with torch's random generator seeded by `seed` (and restored afterwards), so a model
    that is initialised randomly gives the same weights, and the same report, on every build."""
    from torch import nn

    if isinstance(spec, Subject):
        return spec
    if isinstance(spec, nn.Module):
        return Subject(spec)
    spec = str(spec)
    path = Path(spec)
    if spec.endswith(".pt2"):
        return _load_exported(path)
    if spec.endswith(".py"):
        raise SpecError(f"model spec {spec!r} names a file but no callable; write {spec}:build_model")
    if path.suffix in WEIGHT_SUFFIXES or (path.is_file() and ":" not in spec):
        return _load_weights_file(path, factory, unsafe_pickle, seed)
    if ":" in spec:
        return _call_factory(spec, seed=seed)
    raise SpecError(f"cannot read model spec {spec!r}: {MODEL_SPEC_HELP}")


def _call_factory(spec: str, state: Mapping[str, Any] | None = None, seed: int = 0) -> Subject:
    import torch
    from torch import nn

    func = load_callable(spec)
    try:
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            made = func()
    except Exception as exc:
        raise SpecError(f"model spec {spec!r}: calling it failed: {type(exc).__name__}: {exc}") from exc
    subject = made if isinstance(made, Subject) else Subject(made)
    if not isinstance(subject.model, nn.Module):
        raise SpecError(f"model spec {spec!r} returned {type(made).__name__}; return an nn.Module or nnreport.Subject")
    if state is not None:
        try:
            subject.model.load_state_dict(state)
        except RuntimeError as exc:
            detail = " ".join(line.strip() for line in str(exc).strip().splitlines()[1:])[:240]
            raise SpecError(f"the weights do not fit the model from {spec!r}: {detail}") from None
    subject.name = subject.name or spec.rpartition(":")[2]
    return subject


def _load_exported(path: Path) -> Subject:
    import torch

    if not path.is_file():
        raise SpecError(f"model file {path} does not exist")
    try:
        program = torch.export.load(str(path))
    except Exception as exc:
        raise SpecError(f"{path} is not a readable torch.export archive ({type(exc).__name__}: {exc})") from None
    args, _kwargs = program.example_inputs
    return Subject(program.module(), example_inputs=tuple(args) or None, name=path.stem)


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        return any(n.endswith("constants.pkl") or "/code/" in n for n in zf.namelist())


def _load_weights_file(path: Path, factory: str | None, unsafe_pickle: bool, seed: int) -> Subject:
    import pickle

    import torch

    if not path.is_file():
        raise SpecError(f"model file {path} does not exist")
    if _is_torchscript(path):
        return Subject(torch.jit.load(str(path), map_location="cpu"), name=path.stem)
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        if not unsafe_pickle:
            raise SpecError(
                f"{path} holds a fully pickled object, and unpickling runs arbitrary code; save "
                "model.state_dict() and pass --factory file.py:callable, or pass --unsafe-pickle if you trust it"
            ) from None
        obj = torch.load(str(path), map_location="cpu", weights_only=False)
    except Exception as exc:
        raise SpecError(f"cannot read {path} with torch.load ({type(exc).__name__}: {exc})") from None
    if isinstance(obj, torch.nn.Module):
        return Subject(obj, name=path.stem)
    state = obj.get("state_dict", obj) if isinstance(obj, Mapping) else None
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise SpecError(f"{path} holds {type(obj).__name__}, not a state dict or a module")
    if factory is None:
        raise SpecError(f"{path} holds weights only (a state dict); pass --factory file.py:callable that builds the module")
    subject = _call_factory(factory, state, seed=seed)
    subject.name = path.stem
    return subject


def load_checkpoints(paths: Sequence[str], model: Any) -> list[dict[str, Any]]:
    """State dicts (weights_only) that must fit `model`: same keys and shapes."""
    import torch

    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    states = []
    for p in paths:
        if not Path(p).is_file():
            raise SpecError(f"checkpoint {p} does not exist")
        try:
            state = torch.load(p, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise SpecError(f"cannot read checkpoint {p} as a state dict ({type(exc).__name__}: {exc})") from None
        state = state.get("state_dict", state) if isinstance(state, Mapping) else state
        if not isinstance(state, Mapping) or {k: tuple(v.shape) for k, v in state.items()} != expected:
            raise SpecError(f"checkpoint {p} does not match the model's parameters (keys or shapes differ)")
        states.append(dict(state))
    return states


# --- data -----------------------------------------------------------------------------------------

DATA_SPEC_HELP = (
    f"a data spec is a built-in name ({', '.join(builtin_names())}), data.npz (x, optional y, classes), "
    "data.pt (dict of tensors), a folder of images with one subfolder per class, or file.py:callable"
)


def load_data(spec: Any, seed: int = 0) -> Dataset:
    """Turn a data spec (or arrays, tensors, a torch Dataset) into a Dataset."""
    if isinstance(spec, Dataset):
        return spec
    if not isinstance(spec, (str, Path)):
        return dataset_from_object(spec, "data")
    text = str(spec)
    path = Path(text)
    if text in builtin_names():
        return load_builtin(text, seed)
    if path.is_dir():
        return _image_folder(path, seed)
    if text.endswith(".npz"):
        return _from_npz(path, seed)
    if text.endswith((".pt", ".pth")):
        return _from_torch_file(path, seed)
    if ":" in text:
        func = load_callable(text, what="data")
        try:
            made = func()
        except Exception as exc:
            raise SpecError(f"data spec {text!r}: calling it failed: {type(exc).__name__}: {exc}") from exc
        return dataset_from_object(made, text.rpartition(":")[2], seed)
    if path.suffix:
        raise SpecError(f"data file {text} does not exist or has an unknown type; {DATA_SPEC_HELP}")
    raise SpecError(f"unknown data {text!r}; {DATA_SPEC_HELP}")


def infer_kind(x: np.ndarray) -> str:
    if x.ndim == 4:
        return "image"
    if x.ndim == 2:
        return "points" if x.shape[1] == 2 else "tabular"
    if x.ndim == 3:
        return "sequence"
    return "other"


def arrays_to_dataset(name: str, x: np.ndarray, y: np.ndarray | None, classes: Sequence[str] | None,
                      seed: int = 0) -> Dataset:
    """Split arrays deterministically (75/25) into a Dataset."""
    x = np.asarray(x)
    if x.dtype == np.float64:
        x = x.astype(np.float32)
    if len(x) < 2:
        raise SpecError(f"data {name!r} has {len(x)} samples; need at least 2")
    if y is not None:
        y = np.asarray(y)
        if len(y) != len(x):
            raise SpecError(f"data {name!r}: x has {len(x)} samples but y has {len(y)}")
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = max(1, len(x) // 4)
    te, tr = order[:n_test], order[n_test:]
    if classes is None and y is not None and np.issubdtype(y.dtype, np.integer):
        classes = [str(i) for i in range(int(y.max()) + 1)]
    return Dataset(
        name=name, kind=infer_kind(x),  # type: ignore[arg-type]
        x_train=x[tr], y_train=None if y is None else y[tr], x_test=x[te], y_test=None if y is None else y[te],
        class_names=tuple(str(c) for c in classes) if classes is not None else None,
    )


def _from_npz(path: Path, seed: int) -> Dataset:
    if not path.is_file():
        raise SpecError(f"data file {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except ValueError as exc:
        raise SpecError(f"{path} needs pickle to load ({exc}); store plain arrays (strings as a unicode array)") from None
    if "x" not in arrays:
        raise SpecError(f"{path} has arrays {', '.join(arrays)}; it needs an array named x (and optionally y, classes)")
    classes = [str(c) for c in arrays["classes"]] if "classes" in arrays else None
    return arrays_to_dataset(path.stem, arrays["x"], arrays.get("y"), classes, seed)


def _from_torch_file(path: Path, seed: int) -> Dataset:
    import pickle

    import torch

    if not path.is_file():
        raise SpecError(f"data file {path} does not exist")
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise SpecError(f"{path} holds pickled objects; save a dict of tensors (x, y) and a list of class names") from None
    if not isinstance(obj, Mapping) or "x" not in obj:
        raise SpecError(f"{path} must hold a dict with a tensor 'x' (and optionally 'y', 'classes')")
    return dataset_from_object(dict(obj), path.stem, seed)


def _to_numpy(v: Any) -> np.ndarray:
    import torch

    return v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)


def dataset_from_object(obj: Any, name: str, seed: int = 0) -> Dataset:
    """Accept a Dataset, a tensor/array x, (x, y), (x, y, classes), a dict, or a torch Dataset."""
    import torch

    if isinstance(obj, Dataset):
        return obj
    if isinstance(obj, Mapping):
        if "x" not in obj:
            raise SpecError(f"data {name!r}: a dict needs the key 'x' (and optionally 'y', 'classes')")
        y = obj.get("y")
        return arrays_to_dataset(name, _to_numpy(obj["x"]), None if y is None else _to_numpy(y), obj.get("classes"), seed)
    if isinstance(obj, (torch.Tensor, np.ndarray)):
        return arrays_to_dataset(name, _to_numpy(obj), None, None, seed)
    if isinstance(obj, tuple) and 2 <= len(obj) <= 3:
        classes = obj[2] if len(obj) == 3 else None
        return arrays_to_dataset(name, _to_numpy(obj[0]), _to_numpy(obj[1]), classes, seed)
    if isinstance(obj, torch.utils.data.Dataset):
        return _from_torch_dataset(obj, name, seed)
    raise SpecError(f"data {name!r} is a {type(obj).__name__}; return tensors, (x, y), a dict or a torch Dataset")


def _from_torch_dataset(ds: Any, name: str, seed: int) -> Dataset:
    import torch

    n = min(len(ds), MAX_DATASET_ITEMS)
    xs, ys = [], []
    for i in range(n):
        item = ds[i]
        x, y = (item[0], item[1]) if isinstance(item, (tuple, list)) else (item, None)
        xs.append(_to_numpy(x))
        if y is not None:
            ys.append(int(y) if isinstance(y, (int, np.integer)) or (isinstance(y, torch.Tensor) and y.numel() == 1) else _to_numpy(y))
    classes = getattr(ds, "classes", None)
    return arrays_to_dataset(name, np.stack(xs), np.asarray(ys) if ys else None, classes, seed)


IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def _image_folder(root: Path, seed: int) -> Dataset:
    from PIL import Image, UnidentifiedImageError

    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    if not classes:
        raise SpecError(f"image folder {root} has no subfolders; put each class's images in its own subfolder")
    files = [(f, i) for i, c in enumerate(classes) for f in sorted((root / c).iterdir()) if f.suffix.lower() in IMAGE_SUFFIXES]
    if not files:
        raise SpecError(f"image folder {root} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    files = files[:MAX_DATASET_ITEMS]
    images = []
    for f, _ in files:
        try:
            images.append(Image.open(f))
        except (UnidentifiedImageError, OSError) as exc:
            raise SpecError(f"cannot read image {f}: {exc}") from None
    sizes = [im.size for im in images]
    size = max(set(sizes), key=sizes.count)
    gray = all(im.mode in ("L", "1", "I;16") for im in images)
    mode = "L" if gray else "RGB"
    x = np.stack([np.asarray(im.convert(mode).resize(size, Image.Resampling.BILINEAR), dtype=np.float32) / 255.0 for im in images])
    x = x[:, None] if gray else x.transpose(0, 3, 1, 2)
    mean = x.mean(axis=(0, 2, 3))
    std = x.std(axis=(0, 2, 3)) + 1e-6
    xn = ((x - mean.reshape(1, -1, 1, 1)) / std.reshape(1, -1, 1, 1)).astype(np.float32)
    ds = arrays_to_dataset(root.name, xn, np.array([c for _, c in files], dtype=np.int64), classes, seed)
    from dataclasses import replace

    return replace(ds, mean=tuple(map(float, mean)), std=tuple(map(float, std)))


# --- example inputs -------------------------------------------------------------------------------

def parse_shape(text: str) -> tuple[tuple[int, ...], ...]:
    """'1,3,32,32' or '1x3x32x32', several inputs separated by ';'."""
    shapes = []
    for part in text.split(";"):
        try:
            dims = tuple(int(d) for d in re.split(r"[,x×\s]+", part.strip()) if d)
        except ValueError:
            raise SpecError(f"--input-shape {text!r} is not a shape; write e.g. 1,3,32,32 (several inputs: 1,3;1,5)") from None
        if not dims or any(d <= 0 for d in dims):
            raise SpecError(f"--input-shape {text!r} has an empty or non-positive dimension")
        shapes.append(dims)
    return tuple(shapes)


def example_inputs(subject: Subject, data: Dataset | None, input_shape: str | None, seed: int,
                   batch: int = 8) -> tuple[torch.Tensor, ...]:
    """The inputs every analysis starts from: given by the model spec, taken from data, or synthetic."""
    import torch

    if subject.example_inputs is not None:
        given = subject.example_inputs
        return tuple(given) if isinstance(given, (tuple, list)) else (given,)
    if data is not None:
        return (torch.from_numpy(np.ascontiguousarray(data.x_test[:batch])),)
    if input_shape:
        g = torch.Generator().manual_seed(seed)
        return tuple(torch.randn(shape, generator=g) for shape in parse_shape(input_shape))
    raise SpecError("cannot tell the model's input; pass --data (e.g. --data digits) or --input-shape (e.g. 1,3,32,32)")


def resolve(model: Any, data: Any = None, *, inputs: Any = None, input_shape: str | None = None,
            seed: int = 0) -> Subject:
    """Model, data and example inputs, resolved once: a Subject whose `data` is a Dataset (or None) and
    whose `example_inputs` is a tuple of tensors. `data` (a spec, arrays, a Dataset) overrides the data the
    model spec names, and `inputs` (a tensor or a tuple) its example inputs; the model must run on the data
    (checked on two samples). Resolving a resolved subject again changes nothing."""
    from dataclasses import replace

    subject = load_model(model, seed=seed)
    source = data if data is not None else subject.data
    dataset = load_data(source, seed) if source is not None else None
    if inputs is not None:
        subject = replace(subject, example_inputs=inputs)
    resolved = example_inputs(subject, dataset, input_shape, seed)
    if dataset is not None:
        check_data(subject.model, dataset, resolved)
    return replace(subject, data=dataset, example_inputs=resolved)


def check_data(model: nn.Module, data: Dataset, inputs: tuple[torch.Tensor, ...]) -> None:
    """Fail early, in one line, when the model cannot run on the data (wrong shape or dtype)."""
    import torch

    from nnreport import scoped

    if len(inputs) != 1:
        return  # data feeds single-input models only; analyses that need it say so
    x = torch.from_numpy(np.ascontiguousarray(data.x_test[:2]))
    try:
        with scoped.eval_mode(model), torch.no_grad():
            model(x)
    except Exception as exc:
        raise UsageError(f"the model cannot run on the data {data.name!r} (inputs {tuple(x.shape)} {x.dtype}): "
                         f"{first_line(exc)}") from None

"""Model specs and data specs -> nn.Module, example inputs and a Dataset, resolved once into a Subject."""

from __future__ import annotations

import importlib
import importlib.util
import math
import os
import re
import sys
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nnreport.checks import check_data_labels, check_labels
from nnreport.datasets import Dataset, builtin_names, load_builtin
from nnreport.errors import SpecError, UsageError, first_line, named
from nnreport.imagefiles import IMAGE_SUFFIXES
from nnreport.preprocess import Preprocess
from nnreport.subject import Subject

if TYPE_CHECKING:
    import torch
    from torch import nn

MODEL_SPEC_HELP = (
    "a model spec is path/to/file.py:callable, package.module:callable, an exported program (.pt2), "
    "a TorchScript archive, or weights.pt with --factory file.py:callable"
)
WEIGHT_SUFFIXES = (".pt", ".pth", ".ts", ".jit", ".bin", ".ckpt")
MAX_INPUT_ELEMENTS = 1 << 27  # one synthetic input: 512 MiB of float32


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
    except (Exception, SystemExit) as exc:
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
        return _load_exported(path, unsafe_pickle)
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
    except (Exception, SystemExit) as exc:  # SystemExit: a factory that calls sys.exit()
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


def _load_exported(path: Path, unsafe_pickle: bool = False) -> Subject:
    from nnreport.pt2 import load_exported

    if not path.is_file():
        raise SpecError(f"model file {path} does not exist")
    try:
        program = load_exported(path, unsafe_pickle)
    except SpecError:
        raise
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
        try:
            return Subject(torch.jit.load(str(path), map_location="cpu"), name=path.stem)
        except Exception as exc:  # truncated or corrupt archive
            raise SpecError(f"cannot read TorchScript archive {path} ({named(exc)})") from None
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
    f"a data spec is a built-in name ({', '.join(builtin_names())}), data.npz (x, optional y, classes, vocab; or "
    "x_train, y_train, x_test, y_test), data.pt (dict of tensors), a folder of images with one subfolder per class "
    "(or train/ and val/ or test/ subfolders, each with one per class), or file.py:callable"
)


@dataclass(frozen=True)
class DataOptions:
    """How data is read: the model's own preprocessing for images, and an optional separate test set."""

    transform: Any = None            # "imagenet", "FILE.py:callable", or a callable PIL image -> tensor
    image_size: int | None = None    # resize the shorter side and centre-crop to N × N
    normalize: str | None = None     # "imagenet", "data" or "none"
    eval_data: Any = None            # a second data spec: the test split (the first is then all training data)
    fixed: Preprocess | None = None  # internal: the training set's resolved preprocessing, reused for eval_data


def load_data(spec: Any, seed: int = 0, options: DataOptions | None = None) -> Dataset:
    """Turn a data spec (or arrays, tensors, a torch Dataset) into a Dataset; image folders and torch
    Datasets stay on disk and are read on demand (see nnreport.streaming)."""
    if isinstance(spec, Dataset):
        return spec  # already loaded (the options were applied then)
    options = options or DataOptions()
    if options.eval_data is not None:
        return _with_eval_data(spec, seed, options)
    return _load_one(spec, seed, options, whole=False)


def _load_one(spec: Any, seed: int, options: DataOptions, whole: bool) -> Dataset:
    """One spec; `whole` keeps a single set unsplit (x_train and x_test both hold all of it)."""
    if not isinstance(spec, (str, Path)):
        return dataset_from_object(spec, "data", seed, options, whole)
    text = str(spec)
    path = Path(text)
    if path.is_dir():
        return _image_folder(path, seed, options, whole)
    if text in builtin_names() or text.endswith((".npz", ".pt", ".pth")):
        _no_preprocessing(options, text)
    if text in builtin_names():
        return load_builtin(text, seed)
    if text.endswith(".npz"):
        return _from_npz(path, seed, whole)
    if text.endswith((".pt", ".pth")):
        return _from_torch_file(path, seed, whole)
    if ":" in text:
        func = load_callable(text, what="data")
        try:
            made = func()
        except (Exception, SystemExit) as exc:
            raise SpecError(f"data spec {text!r}: calling it failed: {type(exc).__name__}: {exc}") from exc
        return dataset_from_object(made, text.rpartition(":")[2], seed, options, whole)
    if path.suffix:
        raise SpecError(f"data file {text} does not exist or has an unknown type; {DATA_SPEC_HELP}")
    raise SpecError(f"unknown data {text!r}; {DATA_SPEC_HELP}")


def _no_preprocessing(options: DataOptions, name: str) -> None:
    """Arrays and built-in data are already model inputs: preprocessing options cannot apply to them."""
    if options.fixed is None and (options.transform is not None or options.image_size or options.normalize):
        raise SpecError(f"data {name!r} holds model inputs already, so --transform, --image-size and --normalize do "
                        "not apply; they preprocess image folders and datasets that return PIL images")


def _with_eval_data(spec: Any, seed: int, options: DataOptions) -> Dataset:
    """`--data TRAIN --eval-data TEST`: the first set's training part and the second set's test part,
    both read with the first set's preprocessing (so a data normalisation comes from the training set)."""
    from dataclasses import replace

    from nnreport.streaming import preprocess_of

    train = _load_one(spec, seed, replace(options, eval_data=None), whole=True)
    fixed = preprocess_of(train.x_train)
    test = _load_one(options.eval_data, seed, replace(options, eval_data=None, fixed=fixed), whole=True)
    if tuple(train.x_train.shape[1:]) != tuple(test.x_test.shape[1:]):
        raise SpecError(f"the evaluation data's inputs are {tuple(test.x_test.shape[1:])}, the training data's "
                        f"{tuple(train.x_train.shape[1:])}; they must match")
    classes = train.class_names or test.class_names
    if train.class_names and test.class_names and train.class_names != test.class_names:
        raise SpecError("the training and evaluation data name different classes: "
                        f"{', '.join(train.class_names[:5])} vs {', '.join(test.class_names[:5])}")
    eval_name = test.name
    return replace(
        train, x_test=test.x_test, y_test=test.y_test, masks_test=test.masks_test, class_names=classes,
        split=f"training inputs from {train.name} ({len(train.x_train):,}), test inputs from {eval_name} "
              f"({len(test.x_test):,}), given separately (no random split)",
        skipped=(train.skipped + test.skipped)[:5], skipped_count=train.skipped_count + test.skipped_count)


def infer_kind(x: Any) -> str:
    """image (N, C, H, W); points (N, 2) and tabular (N, F) floats; sequence: (N, T, F) or token ids (N, T)."""
    integer = np.issubdtype(np.dtype(x.dtype), np.integer)
    if x.ndim == 4:
        return "image"
    if x.ndim == 2 and integer:
        return "sequence"
    if x.ndim == 2:
        return "points" if x.shape[1] == 2 else "tabular"
    if x.ndim == 3:
        return "sequence"
    return "other"


def _random_split_note(n: int, n_test: int, seed: int) -> str:
    return (f"one set was given, so it was split at random (seed {seed}): {n_test:,} test and {n - n_test:,} "
            "training inputs (a quarter for testing)")


def arrays_to_dataset(name: str, x: Any, y: np.ndarray | None, classes: Sequence[str] | None,
                      seed: int = 0, whole: bool = False, vocab: Sequence[str] | None = None) -> Dataset:
    """Split arrays (or lazy inputs) deterministically (75/25) into a Dataset; `whole`: no split."""
    from nnreport.streaming import LazyInputs

    if not isinstance(x, LazyInputs):
        x = np.asarray(x)
        if x.dtype == np.float64:
            x = x.astype(np.float32)
    if len(x) < 2:
        raise SpecError(f"data {name!r} has {len(x)} samples; need at least 2")
    if y is not None:
        y = check_labels(name, np.asarray(y), classes)
        if len(y) != len(x):
            raise SpecError(f"data {name!r}: x has {len(x)} samples but y has {len(y)}")
    if classes is None and y is not None and np.issubdtype(y.dtype, np.integer):
        classes = [str(i) for i in range(int(y.max()) + 1)]
    if whole:
        x_tr, y_tr, x_te, y_te, split = x, y, x, y, ""
    else:
        te, tr = _split_order(len(x), seed)
        n_test = len(te)
        pick = (lambda idx: x.view(idx)) if isinstance(x, LazyInputs) else (lambda idx: x[idx])
        x_tr, x_te = pick(tr), pick(te)
        y_tr, y_te = (None, None) if y is None else (y[tr], y[te])
        split = _random_split_note(len(x), n_test, seed)
    return Dataset(
        name=name, kind=infer_kind(x),  # type: ignore[arg-type]
        x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=y_te,
        class_names=tuple(str(c) for c in classes) if classes is not None else None,
        vocab=_vocab(name, x, vocab), split=split,
    )


def split_arrays_to_dataset(name: str, arrays: Mapping[str, Any], classes: Sequence[str] | None,
                            vocab: Sequence[str] | None = None) -> Dataset:
    """Explicit splits: x_train, x_test and (optionally) y_train, y_test, used as given."""
    x_tr, x_te = (_as_inputs(arrays[k]) for k in ("x_train", "x_test"))
    y_tr, y_te = (None if arrays.get(k) is None else check_labels(name, _to_numpy(arrays[k]), classes)
                  for k in ("y_train", "y_test"))
    if (y_tr is None) != (y_te is None):
        raise SpecError(f"data {name!r}: give both y_train and y_test, or neither")
    for xs, ys, which in ((x_tr, y_tr, "train"), (x_te, y_te, "test")):
        if len(xs) < 1:
            raise SpecError(f"data {name!r}: x_{which} is empty")
        if ys is not None and len(ys) != len(xs):
            raise SpecError(f"data {name!r}: x_{which} has {len(xs)} samples but y_{which} has {len(ys)}")
    if tuple(x_tr.shape[1:]) != tuple(x_te.shape[1:]):
        raise SpecError(f"data {name!r}: x_train is {tuple(x_tr.shape[1:])} per sample but x_test {tuple(x_te.shape[1:])}")
    if classes is None and y_tr is not None and y_te is not None and np.issubdtype(y_tr.dtype, np.integer):
        classes = [str(i) for i in range(int(max(y_tr.max(), y_te.max())) + 1)]
    return Dataset(
        name=name, kind=infer_kind(x_tr),  # type: ignore[arg-type]
        x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=y_te,
        class_names=tuple(str(c) for c in classes) if classes is not None else None,
        vocab=_vocab(name, x_tr, vocab),
        split=f"train and test given separately ({len(x_tr):,} training and {len(x_te):,} test inputs; no random split)",
    )


def _as_inputs(v: Any) -> np.ndarray:
    x = _to_numpy(v)
    return x.astype(np.float32) if x.dtype == np.float64 else x


def _vocab(name: str, x: Any, vocab: Sequence[str] | None) -> tuple[str, ...] | None:
    if vocab is None:
        return None
    words = tuple(str(w) for w in vocab)
    if not np.issubdtype(np.dtype(x.dtype), np.integer):
        raise SpecError(f"data {name!r} has a vocab but its x is {x.dtype}, not token ids (integers)")
    if isinstance(x, np.ndarray) and x.size and (int(x.min()) < 0 or int(x.max()) >= len(words)):
        raise SpecError(f"data {name!r}: token ids run from {int(x.min())} to {int(x.max())} but the vocab has "
                        f"{len(words)} entries")
    return words


def _from_npz(path: Path, seed: int, whole: bool = False) -> Dataset:
    if not path.is_file():
        raise SpecError(f"data file {path} does not exist")
    _check_npz_size(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except ValueError as exc:
        if "pickle" not in str(exc):
            raise SpecError(f"cannot read {path} as .npz: {exc}") from None
        raise SpecError(f"{path} needs pickle to load ({exc}); store plain arrays (strings as a unicode array)") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError, NotImplementedError) as exc:  # truncated or corrupt
        raise SpecError(f"cannot read {path} as .npz (truncated or corrupt: {type(exc).__name__}: {exc})") from None
    return _from_mapping(arrays, path.stem, seed, whole, str(path))


def _from_mapping(obj: Mapping[str, Any], name: str, seed: int, whole: bool, where: str) -> Dataset:
    """x (+ y) to split, or x_train/x_test (+ y_train/y_test) as given; optional classes and vocab."""
    classes = [str(c) for c in obj["classes"]] if obj.get("classes") is not None else None
    vocab = [str(w) for w in obj["vocab"]] if obj.get("vocab") is not None else None
    if "x_train" in obj or "x_test" in obj:
        if "x_train" not in obj or "x_test" not in obj:
            raise SpecError(f"{where}: give both x_train and x_test (and y_train, y_test), or one x (and y)")
        return split_arrays_to_dataset(name, obj, classes, vocab)
    if "x" not in obj:
        raise SpecError(f"{where} has {', '.join(map(str, obj)) or 'nothing'}; it needs an array named x (and "
                        "optionally y, classes, vocab), or x_train, y_train, x_test, y_test")
    y = obj.get("y")
    return arrays_to_dataset(name, _to_numpy(obj["x"]), None if y is None else _to_numpy(y), classes, seed,
                             whole, vocab)


MAX_NPZ_BYTES = 8 << 30  # arrays as stored, uncompressed: a zip bomb is refused before it inflates


def _check_npz_size(path: Path) -> None:
    try:
        with zipfile.ZipFile(path) as zf:
            size = sum(info.file_size for info in zf.infolist())
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise SpecError(f"cannot read {path} as .npz (not a zip archive, or truncated: {exc})") from None
    if size > MAX_NPZ_BYTES:
        raise SpecError(f"{path} unpacks to {size:,} bytes, more than the {MAX_NPZ_BYTES:,} allowed")


def _from_torch_file(path: Path, seed: int, whole: bool = False) -> Dataset:
    import pickle

    import torch

    if not path.is_file():
        raise SpecError(f"data file {path} does not exist")
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise SpecError(f"{path} holds pickled objects; save a dict of tensors (x, y) and a list of class names") from None
    except Exception as exc:  # truncated or corrupt: torch raises RuntimeError, EOFError, zipfile errors...
        raise SpecError(f"cannot read {path} with torch.load (truncated or corrupt: {named(exc, 160)})") from None
    if not isinstance(obj, Mapping):
        raise SpecError(f"{path} must hold a dict with a tensor 'x' (and optionally 'y', 'classes')")
    return _from_mapping(dict(obj), path.stem, seed, whole, str(path))


def _to_numpy(v: Any) -> np.ndarray:
    import torch

    return v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)


def dataset_from_object(obj: Any, name: str, seed: int = 0, options: DataOptions | None = None,
                        whole: bool = False) -> Dataset:
    """Accept a Dataset, a tensor/array x, (x, y), (x, y, classes), a dict, or a torch Dataset."""
    import torch

    if isinstance(obj, Dataset):
        return obj
    if not isinstance(obj, torch.utils.data.Dataset):
        _no_preprocessing(options or DataOptions(), name)
    if isinstance(obj, Mapping):
        return _from_mapping(obj, name, seed, whole, f"data {name!r}")
    if isinstance(obj, (torch.Tensor, np.ndarray)):
        return arrays_to_dataset(name, _to_numpy(obj), None, None, seed, whole)
    if isinstance(obj, tuple) and 2 <= len(obj) <= 3:
        classes = obj[2] if len(obj) == 3 else None
        return arrays_to_dataset(name, _to_numpy(obj[0]), _to_numpy(obj[1]), classes, seed, whole)
    if isinstance(obj, torch.utils.data.Dataset):
        return _from_torch_dataset(obj, name, seed, options or DataOptions(), whole)
    raise SpecError(f"data {name!r} is a {type(obj).__name__}; return tensors, (x, y), a dict or a torch Dataset")


def _from_torch_dataset(ds: Any, name: str, seed: int, options: DataOptions, whole: bool) -> Dataset:
    """A map-style torch Dataset, read on demand; PIL images in it go through the preprocessing."""
    from dataclasses import replace

    from nnreport.streaming import TorchItems

    try:
        n = len(ds)
        first = ds[0]
    except Exception as exc:
        raise SpecError(f"data {name!r}: a torch Dataset needs len() and ds[i] ({type(exc).__name__}: {exc})") from None
    x0 = first[0] if isinstance(first, (tuple, list)) else first
    pre = None
    if hasattr(x0, "getbands"):  # PIL images: the model's preprocessing, else the first image's size
        mode = "L" if x0.mode in _GREY_MODES else "RGB"
        pre = options.fixed or _preprocess_for(options, mode) or Preprocess(
            mode=mode, size=x0.size, size_note="the first item's size", normalize="data")
    elif options.fixed is None and (options.transform is not None or options.image_size or options.normalize):
        raise SpecError(f"data {name!r} returns tensors, so --transform, --image-size and --normalize do not apply; "
                        "they preprocess image files and datasets that return PIL images")
    try:
        x = TorchItems(ds, pre)
        if pre is not None and pre.normalize == "data" and pre.mean is None:
            pre = _with_data_stats(pre, TorchItems(ds, pre), seed)
            x = TorchItems(ds, pre)
        y = _dataset_labels(ds, n) if isinstance(first, (tuple, list)) and len(first) > 1 else None
    except SpecError:
        raise
    except Exception as exc:
        raise SpecError(f"data {name!r}: reading its items failed: {type(exc).__name__}: {exc}") from None
    vocab = getattr(ds, "vocab", None)  # token datasets may name their ids (a sequence of strings)
    if vocab is not None and not (isinstance(vocab, Sequence) and all(isinstance(w, str) for w in vocab)):
        vocab = None
    ds_out = arrays_to_dataset(name, x, y, getattr(ds, "classes", None), seed, whole, vocab)
    if pre is None:
        return ds_out
    return replace(ds_out, mean=pre.mean, std=pre.std, preprocessing=pre.describe())


def _dataset_labels(ds: Any, n: int) -> np.ndarray:
    """The labels of a torch Dataset: its `targets` (or `labels`) where it keeps them, else one pass over the
    items in a DataLoader (workers for large sets) that keeps only the labels."""
    import torch

    for attr in ("targets", "labels"):
        known = getattr(ds, attr, None)
        if known is not None and not callable(known) and len(known) == n:
            return np.asarray(_to_numpy(known) if isinstance(known, torch.Tensor) else known)
    workers = 0 if n <= 2048 else min(4, os.cpu_count() or 1)
    loader = torch.utils.data.DataLoader(ds, batch_size=64, num_workers=workers, collate_fn=_labels_only)
    return np.concatenate([b for b in loader]) if n else np.zeros(0, np.int64)


def _labels_only(items: list[Any]) -> np.ndarray:
    return np.asarray([_label(item[1]) for item in items])


def _label(y: Any) -> Any:
    if hasattr(y, "numel") and y.numel() == 1:
        return y.item()
    return _to_numpy(y) if hasattr(y, "detach") else y


_GREY_MODES = frozenset({"L", "1", "I", "I;16", "I;16B", "I;16L", "F", "LA"})
# The first unreadable files named on the model card.
SKIPPED_SHOWN = 5


def _preprocess_for(options: DataOptions, mode: str) -> Preprocess | None:
    """The preprocessing the options ask for (None: the folder default)."""
    from nnreport import preprocess

    if options.fixed is not None:
        return options.fixed
    transform, name = options.transform, ""
    if isinstance(transform, str) and transform != "imagenet":
        name = transform
        transform = load_callable(transform, what="transform")
    return preprocess.from_options(transform, options.image_size, options.normalize, mode, name)


def _with_data_stats(pre: Preprocess, unnormalised: Any, seed: int) -> Preprocess:
    """Fill a data normalisation's mean and std from a bounded seeded sample of the (training) inputs."""
    from dataclasses import replace

    from nnreport.preprocess import STATS_SAMPLE
    from nnreport.streaming import channel_stats

    mean, std = channel_stats(unnormalised, seed, STATS_SAMPLE)
    k = min(STATS_SAMPLE, len(unnormalised))
    return replace(pre, mean=mean, std=std, stats_note=f"the data's own, estimated on {k:,} images drawn with seed {seed}")


def _split_folders(root: Path) -> tuple[Path, Path] | None:
    """(train, test) for the ImageNet layout: train/ beside val/ (or test/), each with one folder per class."""
    train = root / "train"
    for name in ("val", "test"):
        if train.is_dir() and (root / name).is_dir():
            return train, root / name
    return None


def _class_files(folder: Path, classes: list[str]) -> list[tuple[Path, int]]:
    from nnreport.imagefiles import image_files

    return [(f, i) for i, c in enumerate(classes) if (folder / c).is_dir() for f in image_files(folder / c)]


def _scan(files: list[tuple[Path, int]]) -> tuple[list[tuple[Path, int]], list[str], list[tuple[int, int]], list[str]]:
    """Check every file's header (in threads: it is mostly waiting on the disk): the readable files with their
    sizes and modes, and 'name: why' for the rest."""
    from concurrent.futures import ThreadPoolExecutor

    from nnreport.imagefiles import UnreadableImage, check_image

    def check(item: tuple[Path, int]) -> tuple[tuple[int, int], str] | str:
        try:
            return check_image(item[0])
        except UnreadableImage as exc:
            return f"{item[0].parent.name}/{item[0].name}: {exc}"

    good, bad, sizes, modes = [], [], [], []
    with ThreadPoolExecutor(max_workers=8) as pool:
        for start in range(0, len(files), 4096):  # in chunks: never a future per file of a huge folder at once
            chunk = files[start:start + 4096]
            for item, res in zip(chunk, pool.map(check, chunk), strict=True):
                if isinstance(res, str):
                    bad.append(res)
                else:
                    good.append(item)
                    sizes.append(res[0])
                    modes.append(res[1])
    return good, bad, sizes, modes


def _image_folder(root: Path, seed: int, options: DataOptions | None = None, whole: bool = False) -> Dataset:
    """A folder of images, one subfolder per class (or train/ and val/ or test/ above those), read on demand."""
    from collections import Counter
    from dataclasses import replace

    from nnreport.streaming import ImageFiles

    options = options or DataOptions()
    splits = _split_folders(root)
    top = splits[0] if splits else root
    classes = sorted(p.name for p in top.iterdir() if p.is_dir())
    if not classes:
        raise SpecError(f"image folder {top} has no subfolders; put each class's images in its own subfolder")
    if splits:
        extra = sorted(p.name for p in splits[1].iterdir() if p.is_dir() and p.name not in classes)
        if extra:
            raise SpecError(f"{splits[1]} has classes that {splits[0]} lacks: {', '.join(extra[:5])}")
    parts = [_class_files(folder, classes) for folder in (splits or (root,))]
    if not any(parts):
        raise SpecError(f"image folder {root} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    scanned = [_scan(p) for p in parts]
    bad = [b for s in scanned for b in s[1]]
    if any(not s[0] for s in scanned):
        first = f" (e.g. {bad[0]})" if bad else ""
        raise SpecError(f"image folder {root}: none of its image files could be read{first}")
    sizes = [z for s in scanned for z in s[2]]
    modes = {m for s in scanned for m in s[3]}
    mode = "L" if modes <= _GREY_MODES else "RGB"
    size = Counter(sizes).most_common(1)[0][0]
    pre = _preprocess_for(options, mode) or Preprocess(mode=mode, size=size, size_note="the folder's most common size",
                                                       normalize="data")
    train_files = [f for f, _ in scanned[0][0]]
    if pre.normalize == "data" and pre.mean is None:
        stats_files = train_files if (splits or whole) else [train_files[i] for i in _split_order(len(train_files), seed)[1]]
        pre = _with_data_stats(pre, ImageFiles(stats_files, pre), seed)
    labelled = [(ImageFiles([f for f, _ in s[0]], pre), np.array([c for _, c in s[0]], dtype=np.int64)) for s in scanned]
    if splits:
        (x_tr, y_tr), (x_te, y_te) = labelled
        ds = Dataset(root.name, "image", x_tr, y_tr, x_te, y_te, class_names=tuple(classes),
                     split=f"the folder's own {splits[0].name}/ ({len(x_tr):,} images) and {splits[1].name}/ "
                           f"({len(x_te):,} images) subfolders, used as given (no random split)")
    else:
        ds = arrays_to_dataset(root.name, labelled[0][0], labelled[0][1], classes, seed, whole)
    return replace(ds, mean=pre.mean, std=pre.std, preprocessing=pre.describe(),
                   skipped=tuple(bad[:SKIPPED_SHOWN]), skipped_count=len(bad))


def _split_order(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(test, train) positions of the seeded 75/25 split (the same order as arrays_to_dataset)."""
    order = np.random.default_rng(seed).permutation(n)
    n_test = max(1, n // 4)
    return order[:n_test], order[n_test:]


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
        if math.prod(dims) > MAX_INPUT_ELEMENTS:
            raise SpecError(f"--input-shape {text!r} asks for {math.prod(dims):,} values in one input, more than the "
                            f"{MAX_INPUT_ELEMENTS:,} allowed; give the shape of one small batch, e.g. 1,3,224,224")
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
            seed: int = 0, options: DataOptions | None = None) -> Subject:
    """Model, data and example inputs, resolved once: a Subject whose `data` is a Dataset (or None) and
    whose `example_inputs` is a tuple of tensors. `data` (a spec, arrays, a Dataset) overrides the data the
    model spec names, and `inputs` (a tensor or a tuple) its example inputs; the model must run on the data
    (checked on two samples). `options` say how the data is read (preprocessing, a separate test set); its
    transform and eval_data default to the Subject's. Resolving a resolved subject again changes nothing."""
    from dataclasses import replace

    subject = load_model(model, seed=seed)
    options = options or DataOptions()
    options = replace(options, transform=options.transform if options.transform is not None else subject.transform,
                      eval_data=options.eval_data if options.eval_data is not None else subject.eval_data)
    source = data if data is not None else subject.data
    dataset = load_data(source, seed, options) if source is not None else None
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
    from nnreport.device import model_device

    x = torch.from_numpy(np.ascontiguousarray(data.x_test[:2])).to(model_device(model))
    try:
        with scoped.eval_mode(model), torch.no_grad():
            raw = model(x)
    except (Exception, SystemExit) as exc:  # SystemExit: a model that calls sys.exit() in forward
        raise UsageError(f"the model cannot run on the data {data.name!r} (inputs {tuple(x.shape)} {x.dtype}): "
                         f"{first_line(exc)}") from None
    check_data_labels(data, raw)

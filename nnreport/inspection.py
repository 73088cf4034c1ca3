"""The inspection bundle: manifest.json plus one JSON (+ .npz) per analysis; torch-free."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, TypeVar

from nnreport import codec
from nnreport.errors import BundleError
from nnreport.readers import read_bytes, read_text

FORMAT_VERSION = 2  # 2: the graph result holds the packed graph (graph/packed.py)
MANIFEST = "manifest.json"
Status = Literal["ok", "skipped", "failed"]
T = TypeVar("T")


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int, ...]
    dtype: str


@dataclass(frozen=True)
class ModelInfo:
    """What the model card shows about the model and its data."""

    name: str
    class_name: str
    num_params: int
    trainable_params: int
    param_bytes: int
    buffer_bytes: int
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    model_spec: str = ""
    data_name: str | None = None
    data_description: str = ""
    data_kind: str | None = None
    num_train: int = 0
    num_test: int = 0
    class_names: tuple[str, ...] | None = None
    # Set when the inputs or outputs hold NaN or inf: what is not finite; the card shows it, and the
    # analyses that rest on the model's scores are marked failed instead of printing wrong numbers.
    nonfinite: str = ""
    # What the model was fed (preprocessing), how the data was split, unreadable files left out.
    data_notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Provenance:
    nnreport_version: str
    torch_version: str
    numpy_version: str
    python_version: str
    seed: int
    preset: str
    # The device the analyses ran on, the autocast precision, and (on GPUs) whether torch was set to use
    # deterministic algorithms only (None on the CPU, whose results are deterministic anyway).
    device: str = "cpu"
    precision: str = "fp32"
    deterministic: bool | None = None


@dataclass(frozen=True)
class AnalysisRecord:
    """How one analysis went: ok, skipped (with the reason) or failed (with the error)."""

    name: str
    title: str
    status: Status
    message: str = ""
    seconds: float | None = None
    fingerprint: str = ""
    traceback: str = ""
    # What the time plan chose for this analysis and why, e.g. "13×13 grid on 64 samples to fit the quick budget".
    plan: str = ""


@dataclass(frozen=True)
class Manifest:
    format_version: int
    title: str
    model: ModelInfo
    provenance: Provenance
    records: tuple[AnalysisRecord, ...]


@dataclass
class Inspection:
    """Everything computed about one model: the manifest and each analysis's result."""

    manifest: Manifest
    results: dict[str, Any] = field(default_factory=dict)

    def result(self, name: str) -> Any | None:
        return self.results.get(name)

    def get(self, name: str, kind: type[T]) -> T | None:
        """The result of analysis `name`, typed as `kind`; None when it did not run."""
        value = self.results.get(name)
        if value is not None and not isinstance(value, kind):
            raise TypeError(f"the {name} result is a {type(value).__name__}, not a {kind.__name__}")
        return value

    def require(self, name: str, kind: type[T]) -> T:
        """Like `get`, for a page that is only drawn when its analysis ran."""
        value = self.get(name, kind)
        if value is None:
            raise KeyError(f"the inspection has no {name} result")
        return value

    def record(self, name: str) -> AnalysisRecord | None:
        return next((r for r in self.manifest.records if r.name == name), None)

    @property
    def failed(self) -> list[AnalysisRecord]:
        return [r for r in self.manifest.records if r.status == "failed"]

    def without_timings(self) -> Inspection:
        records = tuple(replace(r, seconds=None) for r in self.manifest.records)
        return Inspection(replace(self.manifest, records=records), self.results)

    def save(self, directory: str | Path) -> None:
        """Write the bundle into `directory` (created if needed)."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        for name, result in sorted(self.results.items()):
            text, npz = codec.to_files(result)
            (out / f"{name}.json").write_text(text, encoding="utf-8")
            if len(npz) > 22:  # an empty zip is 22 bytes
                (out / f"{name}.npz").write_bytes(npz)
        (out / MANIFEST).write_text(codec.dumps_json(codec.encode(self.manifest)[0]), encoding="utf-8")

    @classmethod
    def load(cls, directory: str | Path) -> Inspection:
        """Read a bundle written by `save`; refuses a newer or older format with a clear message."""
        from nnreport.analyses import REGISTRY, load_all

        folder = Path(directory)
        if (folder / "inspection" / MANIFEST).is_file():
            folder = folder / "inspection"  # accept the report folder too
        path = folder / MANIFEST
        if not path.is_file() and not path.is_symlink():
            raise BundleError(f"{directory} is not an inspection bundle (no {MANIFEST}); pass a report's inspection/ folder")
        tree = _read_json(path)
        version = tree.get("format_version") if isinstance(tree, dict) else None
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise BundleError(
                f"{path} has bundle format {version}, newer than this nnreport reads ({FORMAT_VERSION}); upgrade nnreport"
            )
        if version < FORMAT_VERSION:
            raise BundleError(
                f"{path} has bundle format {version}, older than this nnreport reads ({FORMAT_VERSION}); "
                "build the report again (nnreport build) to re-inspect the model"
            )
        try:
            manifest = codec.decode(Manifest, tree, {})
        except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as exc:
            raise BundleError(f"{path} is corrupt: {type(exc).__name__}: {exc}") from None
        load_all()
        results = {}
        for record in manifest.records:
            if record.status != "ok" or record.name not in REGISTRY:
                continue
            npz = folder / f"{record.name}.npz"
            text = read_text(folder / f"{record.name}.json", MAX_JSON_BYTES, "bundle file", BundleError)
            arrays = _read_npz(npz) if npz.exists() or npz.is_symlink() else None
            try:
                results[record.name] = codec.from_files(REGISTRY[record.name].result_type, text, arrays)
            except Exception as exc:  # truncated zip, bad npy header, deep JSON, wrong types: all "corrupt"
                raise BundleError(f"cannot read the {record.name} result in {folder}: {type(exc).__name__}: {exc}") from None
        return cls(manifest, results)


# Bounded reads of a bundle that may have been tampered with: no file is read past these sizes.
MAX_JSON_BYTES = 256 << 20
MAX_NPZ_BYTES = 4 << 30
MAX_NPZ_UNPACKED = 8 << 30


def _read_json(path: Path) -> Any:
    text = read_text(path, MAX_JSON_BYTES, "bundle file", BundleError)
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise BundleError(f"{path} is corrupt: {type(exc).__name__}: {str(exc)[:160]}") from None


def _read_npz(path: Path) -> bytes:
    """The bytes of a result's .npz, refusing one that would unpack past MAX_NPZ_UNPACKED (a zip bomb)."""
    import io
    import zipfile

    data = read_bytes(path, MAX_NPZ_BYTES, "bundle file", BundleError)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            unpacked = sum(info.file_size for info in zf.infolist())
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise BundleError(f"{path} is corrupt: {exc}") from None
    if unpacked > MAX_NPZ_UNPACKED:
        raise BundleError(f"{path} unpacks to {unpacked:,} bytes, more than the {MAX_NPZ_UNPACKED:,} allowed")
    return data

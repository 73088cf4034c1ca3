"""The inspection bundle: manifest.json plus one JSON (+ .npz) per analysis; torch-free."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from nnreport import codec
from nnreport.errors import BundleError

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
Status = Literal["ok", "skipped", "failed"]


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
        """Read a bundle written by `save`; refuses a newer format with a clear message."""
        from nnreport.analyses import REGISTRY, load_all

        folder = Path(directory)
        if (folder / "inspection" / MANIFEST).is_file():
            folder = folder / "inspection"  # accept the report folder too
        path = folder / MANIFEST
        if not path.is_file():
            raise BundleError(f"{directory} is not an inspection bundle (no {MANIFEST}); pass a report's inspection/ folder")
        try:
            tree = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise BundleError(f"{path} is corrupt: {exc}") from None
        version = tree.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise BundleError(
                f"{path} has bundle format {version}, newer than this nnreport reads ({FORMAT_VERSION}); upgrade nnreport"
            )
        manifest = codec.decode(Manifest, tree, {})
        load_all()
        results = {}
        for record in manifest.records:
            if record.status != "ok" or record.name not in REGISTRY:
                continue
            npz = folder / f"{record.name}.npz"
            try:
                results[record.name] = codec.from_files(
                    REGISTRY[record.name].result_type,
                    (folder / f"{record.name}.json").read_text(encoding="utf-8"),
                    npz.read_bytes() if npz.exists() else None,
                )
            except (OSError, KeyError, ValueError, TypeError) as exc:
                raise BundleError(f"cannot read the {record.name} result in {folder}: {exc}") from None
        return cls(manifest, results)

"""ReportConfig, per-analysis configs, presets and TOML loading."""

from __future__ import annotations

import dataclasses
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from nnreport.device import Precision, check_device_spec, check_precision, parse_bytes
from nnreport.errors import UsageError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

Preset = Literal["quick", "standard", "thorough"]
PRESETS: tuple[str, ...] = get_args(Preset)


@dataclass
class ReportConfig:
    """Everything that shapes one report. Per-analysis options live in `analyses[name]`."""

    preset: Preset = "standard"
    seed: int = 0
    only: tuple[str, ...] | None = None
    skip: tuple[str, ...] = ()
    theme: str = "light"
    single_file: bool = False
    cache: bool = True
    # Analysis run times on the model card. They are the one thing that differs between two cold
    # builds; cached results keep their times, so a rebuild is still byte-identical.
    timings: bool = True
    title: str | None = None
    # Most samples any analysis takes from the data's test split.
    max_samples: int = 512
    analyses: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Where analyses compute: auto (CUDA when available, else the CPU), cpu, cuda, cuda:N or mps.
    device: str = "auto"
    # Autocast for forward-heavy work (accuracy, landscape grid, top-k streaming, region perturbation).
    precision: Precision = "fp32"
    # Working memory of one analysis at a time, e.g. "4GB" (None: from the device's free memory).
    memory_budget: str | int | None = None

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise UsageError(f"unknown preset {self.preset!r}; choose one of {', '.join(PRESETS)}")
        check_device_spec(self.device)
        check_precision(self.precision)
        if self.memory_budget is not None:
            parse_bytes(self.memory_budget)

    def analysis_config(self, name: str, config_type: type, planned: dict[str, Any] | None = None) -> Any:
        """The config of analysis `name`: its defaults, then the preset's, then the time plan's (`planned`),
        then the user's overrides."""
        values: dict[str, Any] = dict(getattr(config_type, "PRESETS", {}).get(self.preset, {}))
        values.update(planned or {})
        values.update(self.analyses.get(name, {}))
        return build_dataclass(config_type, values, where=f"[analyses.{name}]")


def build_dataclass(tp: type, values: dict[str, Any], where: str) -> Any:
    """Instantiate dataclass `tp` from plain values, with a one-line error for unknown keys."""
    names = {f.name for f in dataclasses.fields(tp)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise UsageError(f"{where}: unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
    hints = typing.get_type_hints(tp)
    converted = {k: tuple(v) if isinstance(v, list) and _is_tuple(hints.get(k)) else v for k, v in values.items()}
    try:
        return tp(**converted)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{where}: {exc}") from None


def _is_tuple(tp: Any) -> bool:
    return typing.get_origin(tp) is tuple or any(typing.get_origin(a) is tuple for a in typing.get_args(tp))


def load_toml(path: str | Path) -> ReportConfig:
    """Read a ReportConfig from TOML: top-level report options plus `[analyses.<name>]` tables."""
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"config file {p} does not exist; pass a TOML file, e.g. --config nnreport.toml")
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"config file {p} is not valid TOML: {exc}") from None
    return build_dataclass(ReportConfig, data, where=str(p))

"""ReportConfig, per-analysis configs, presets and TOML loading."""

from __future__ import annotations

import dataclasses
import enum
import sys
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

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
        check_device_spec(self.device)  # before the type checks: their messages name the choices
        check_precision(self.precision)
        if self.memory_budget is not None:
            parse_bytes(self.memory_budget)
        hints = typing.get_type_hints(ReportConfig)
        for f in dataclasses.fields(self):  # the Python API gets the same checks as a TOML file
            value = getattr(self, f.name)
            if not matches(hints[f.name], value):
                raise UsageError(f"ReportConfig: {f.name} = {value!r} is not {describe(hints[f.name])}")
        if self.preset not in PRESETS:
            raise UsageError(f"unknown preset {self.preset!r}; choose one of {', '.join(PRESETS)}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or not 0 <= self.seed < MAX_SEED:
            raise UsageError(f"seed {self.seed!r} is not a whole number from 0 to 2**63 - 1")
        if not isinstance(self.max_samples, int) or isinstance(self.max_samples, bool) or self.max_samples < 1:
            raise UsageError(f"max_samples {self.max_samples!r} is not a whole number of at least 1")

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
    for key, value in values.items():
        if not matches(hints.get(key, Any), value):
            raise UsageError(f"{where}: {key} = {value!r} is not {describe(hints[key])}")
    converted = {k: tuple(v) if isinstance(v, list) and _is_tuple(hints.get(k)) else v for k, v in values.items()}
    try:
        return tp(**converted)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{where}: {exc}") from None


MAX_SEED = 2**63


def matches(tp: Any, value: Any) -> bool:
    """Whether a plain value (from TOML or Python) fits the type hint `tp`; unknown kinds of hint pass."""
    origin, args = get_origin(tp), get_args(tp)
    if tp is Any:
        return True
    if tp is type(None) or tp is None:
        return value is None
    if origin in (Union, types.UnionType):
        return any(matches(a, value) for a in args)
    if origin is Literal:
        return any(value == a and type(value) is type(a) for a in args)
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    if origin in (tuple, list) or tp in (tuple, list):
        if not isinstance(value, (tuple, list)):
            return False
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            return len(args) == len(value) and all(matches(a, v) for a, v in zip(args, value, strict=True))
        return all(matches(args[0] if args else Any, v) for v in value)
    if origin is dict or tp is dict:
        key_tp, value_tp = args if len(args) == 2 else (Any, Any)
        return isinstance(value, Mapping) and all(matches(key_tp, k) and matches(value_tp, v) for k, v in value.items())
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return isinstance(value, tp) or value in {e.value for e in tp}
    return True


def describe(tp: Any) -> str:
    """A type hint as a user reads it: 'a bool', 'one of 'quick', 'standard'', 'a list of str'."""
    origin, args = get_origin(tp), get_args(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (Union, types.UnionType):
        return " or ".join(describe(a) for a in args)
    if tp is type(None):
        return "none"
    if origin in (tuple, list):
        return f"a list of {describe(args[0]).removeprefix('a ').removeprefix('an ')}" if args else "a list"
    if origin is dict:
        return "a table"
    name = getattr(tp, "__name__", str(tp))
    return {"bool": "a bool (true or false)", "int": "a whole number", "float": "a number", "str": "a string"}.get(name, name)


def check_tables(tables: Mapping[str, Any], known: Iterable[str], where: str) -> None:
    """Every [analyses.NAME] table must name a known analysis (a typo must not be silently ignored). The
    caller passes the registered names (`analyses.load_all()`): the config is core and imports no analysis."""
    names = set(known)
    unknown = sorted(set(tables) - names)
    if unknown:
        raise UsageError(f"{where}: unknown analysis table(s) {', '.join(f'[analyses.{n}]' for n in unknown)}; "
                         f"known: {', '.join(sorted(names))}")


def _is_tuple(tp: Any) -> bool:
    return typing.get_origin(tp) is tuple or any(typing.get_origin(a) is tuple for a in typing.get_args(tp))


def load_toml(path: str | Path) -> ReportConfig:
    """Read a ReportConfig from TOML: top-level report options plus `[analyses.<name>]` tables."""
    p = Path(path)
    if not p.exists():
        raise UsageError(f"config file {p} does not exist; pass a TOML file, e.g. --config nnreport.toml")
    from nnreport.readers import read_text

    try:
        data = tomllib.loads(read_text(p, MAX_CONFIG_BYTES, "config file", UsageError, follow=True))
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"config file {p} is not valid TOML: {exc}") from None
    return build_dataclass(ReportConfig, data, where=str(p))


MAX_CONFIG_BYTES = 1 << 20

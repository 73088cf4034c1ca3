"""Where and how precisely analyses compute: device choice (`auto`, `cpu`, `cuda[:N]`, `mps`), autocast
precision, and byte sizes such as `--memory-budget 4GB`. Torch-free at import."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Literal, get_args

from nnreport.errors import UsageError

if TYPE_CHECKING:
    import torch

    from nnreport.subject import Subject

Precision = Literal["fp32", "bf16", "fp16"]
PRECISIONS: tuple[str, ...] = get_args(Precision)
_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def check_device_spec(spec: str) -> str:
    """The spec itself when it is well formed (no torch needed); a one-line usage error otherwise."""
    if not isinstance(spec, str) or not _DEVICE.match(spec):
        raise UsageError(f"unknown device {spec!r}; choose auto, cpu, cuda, cuda:N or mps")
    return spec


def resolve_device(spec: str = "auto") -> str:
    """The concrete device for `spec`: `auto` takes CUDA when available, else the CPU. A device that is not
    on this machine is a usage error, never a silent fall-back to the CPU."""
    import torch

    check_device_spec(spec)
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    if spec == "cuda" and "LOCAL_RANK" in os.environ and torch.cuda.is_available():
        spec = f"cuda:{int(os.environ['LOCAL_RANK']) % max(1, torch.cuda.device_count())}"  # one GPU per process
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UsageError(f"device {spec!r} was asked for, but CUDA is not available on this machine "
                             "(use --device cpu or auto)")
        index = int(spec.split(":")[1]) if ":" in spec else 0
        if index >= torch.cuda.device_count():
            raise UsageError(f"device {spec!r} was asked for, but this machine has {torch.cuda.device_count()} "
                             "CUDA device(s)")
    if spec == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise UsageError("device 'mps' was asked for, but Apple's MPS backend is not available on this machine")
    if spec.startswith("cuda"):
        torch.cuda.set_device(torch.device(spec))  # nccl collectives use the current device
    return spec


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise UsageError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    return precision


@contextlib.contextmanager
def autocast(device: str, precision: str) -> Iterator[None]:
    """Mixed precision for forward-heavy work; fp32 runs as it is. Gradients for attribution stay fp32 (the
    relevance methods never enter this context)."""
    if precision == "fp32":
        yield
        return
    import torch

    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    with torch.autocast(device_type=device.split(":")[0], dtype=dtype):
        yield


def deterministic_algorithms() -> bool:
    """Whether torch is set to use deterministic algorithms only (the report says so on GPUs)."""
    import torch

    return bool(torch.are_deterministic_algorithms_enabled())


_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20,
          "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30, "t": 1 << 40, "tb": 1 << 40, "tib": 1 << 40}


def parse_bytes(text: str | int) -> int:
    """`4GB`, `512MiB`, `1.5g` or a plain byte count as bytes (binary units: GB = 2³⁰ bytes)."""
    if isinstance(text, int) and not isinstance(text, bool):
        if text <= 0:
            raise UsageError(f"memory budget must be positive, got {text}")
        return text
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", str(text))
    unit = match.group(2).lower() if match else ""
    if not match or unit not in _UNITS or float(match.group(1)) <= 0:
        raise UsageError(f"cannot read the memory size {text!r}; write e.g. 4GB, 512MB or 2GiB")
    return int(float(match.group(1)) * _UNITS[unit])


def format_bytes(n: float) -> str:
    for unit, size in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"


def available_memory(device: str) -> int:
    """Free memory on the device in bytes: free GPU memory, or MemAvailable on the CPU (Linux; 8 GB assumed
    elsewhere)."""
    import torch

    if device.startswith("cuda"):
        free, _total = torch.cuda.mem_get_info(torch.device(device))
        return int(free)
    if device == "mps":
        return int(getattr(torch.mps, "recommended_max_memory", lambda: 8 << 30)())
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 8 << 30


# Measured with benchmarks/scale.py (ResNet-18, 224 px, 256 images, quick): with 1 GB the report peaked
# at 2.7-3.0 GB resident (autograd and the LRP rules hold about twice the estimate); 512 MB keeps it lower.
CPU_BUDGET = 512 << 20


def default_budget(device: str) -> int:
    """The working memory one analysis may use at a time. On the CPU a quarter of what is available, at
    most 512 MB: the report's resident peak stays near the model plus a few budgets. On a GPU, half of the
    free memory. Rounded down to a power of two, so that batch sizes (and so the bytes of the results) do
    not change with small differences in free memory."""
    free = available_memory(device)
    budget = max(128 << 20, min(free // 4, CPU_BUDGET)) if device == "cpu" else max(256 << 20, free // 2)
    return 1 << (int(budget).bit_length() - 1)  # a power of two: the same batches from run to run


def model_device(model: torch.nn.Module) -> str:
    """The device of the model's first parameter or buffer (cpu for a model without either)."""
    for t in list(model.parameters()) + list(model.buffers()):
        return str(t.device)
    return "cpu"


def same_device(a: str, b: str) -> bool:
    """cuda and cuda:0 are the same device when device 0 is current."""
    import torch

    return torch.device(a) == torch.device(b) or (
        a.split(":")[0] == b.split(":")[0] == "cuda"
        and (torch.device(a).index or 0) == (torch.device(b).index or 0))


def on_device(subject: Subject, device: str) -> Subject:
    """The subject with its model on `device`: the model itself when it is already there, else a deep copy
    moved once (the user's model is left exactly where it was)."""
    import copy
    import dataclasses

    from nnreport.errors import first_line

    if same_device(model_device(subject.model), device):
        return subject
    try:
        moved = copy.deepcopy(subject.model).to(device)
    except Exception as exc:
        raise UsageError(f"the model cannot be moved to {device}: {first_line(exc)}") from None
    return dataclasses.replace(subject, model=moved)

"""One memory budget for every analysis: what one sample costs in a forward (or forward + backward) pass,
and the batch size that fits a budget."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from torch import nn


def saved_bytes(model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> int:
    """Bytes autograd keeps for the backward pass of one forward call (the tensors saved for backward):
    what a forward + backward pass holds at its peak, beyond the weights. Saved weights (a linear layer
    saves its weight, or a transposed view of it) are not counted: they are there once, whatever the batch
    (counted, they made torchvision's ViT-B/16 cost 445 MB a sample instead of 119 MB, ResNet-50 214 MB
    instead of 124 MB, and backward batches that much smaller)."""
    import torch

    total = [0]
    weights = {_storage(p) for p in model.parameters()} | {_storage(b) for b in model.buffers()}
    weights.discard(None)

    def pack(t: torch.Tensor) -> torch.Tensor:
        if _storage(t) not in weights:
            total[0] += t.numel() * t.element_size()
        return t

    xs = tuple(t.detach().clone().requires_grad_(t.is_floating_point()) for t in inputs)
    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(*xs)
    return total[0]


def _storage(t: torch.Tensor) -> int | None:
    """Where a tensor's memory starts (views of one tensor share it); None for tensors without storage."""
    try:
        return int(t.untyped_storage().data_ptr())
    except (RuntimeError, NotImplementedError):
        return None


def live_forward_bytes(model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> int:
    """An upper estimate of what a no-grad forward call holds at once: the three largest outputs of any
    module (a block's input, its output and a skip connection kept beside them) plus the inputs."""
    import torch

    from nnreport import scoped

    sizes: list[int] = []

    def post(_m: nn.Module, _args: object, out: object) -> None:
        sizes.append(_bytes_of(out))

    with scoped.hooks() as h, torch.no_grad():
        for m in model.modules():
            h.forward(m, post)
        model(*inputs)
    top = sorted(sizes, reverse=True)[:3]
    return sum(top) + sum(t.numel() * t.element_size() for t in inputs)


def bytes_per_sample(model: nn.Module, one: tuple[torch.Tensor, ...], backward: bool) -> int:
    """Working memory of one sample (`one`: inputs with a batch of one). Models that cannot be hooked
    (TorchScript) or traced for saved tensors are charged 1000× their input."""
    from nnreport import scoped

    try:
        with scoped.eval_mode(model):
            if backward:
                return max(1, saved_bytes(model, one) + live_forward_bytes(model, one))
            return max(1, live_forward_bytes(model, one))
    except (Exception, SystemExit):  # noqa: BLE001 - estimate, never fail an analysis over it (sys.exit() in forward too)
        return max(1, 1000 * sum(t.numel() * t.element_size() for t in one))


def reuse_freed_memory() -> bool:
    """Keep freed blocks of up to 32 MB in the process heap instead of returning them to the system (glibc
    only; a no-op elsewhere). Each batch allocates and frees the same activation sizes again; by default
    glibc maps blocks above its threshold afresh every time, and every page of a fresh mapping is a page
    fault: the issue's 224-px ResNet-18 report spent 75 s of 243 s in the kernel that way."""
    libc = _glibc()
    if libc is None:
        return False
    try:
        m_trim_threshold, m_mmap_threshold = -1, -3
        ok = libc.mallopt(m_mmap_threshold, 32 << 20) == 1
        return bool(libc.mallopt(m_trim_threshold, 256 << 20) == 1 and ok)
    except AttributeError:
        return False


def release_freed_memory() -> bool:
    """Hand the freed blocks the process heap keeps (reuse_freed_memory) back to the system (glibc's
    malloc_trim; a no-op elsewhere). Before a stage whose large vectors are fresh mappings (above the 32 MB
    threshold) rather than reused heap: the loss landscape's Hessian on ViT-B/16 otherwise ran beside
    0.6 GB of freed direction tensors still counted as resident."""
    libc = _glibc()
    if libc is None:
        return False
    try:
        return bool(libc.malloc_trim(0) == 1)
    except AttributeError:
        return False


def _glibc() -> Any:
    """The C library (a ctypes.CDLL) on Linux, for glibc's malloc settings; None elsewhere or if it cannot load."""
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def _bytes_of(value: Any) -> int:
    """Bytes of every tensor in a (nested) tuple, list or dict of values (a module's output). Here rather
    than context.tensors_in: the context imports this module, never the other way round."""
    import torch

    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return sum(_bytes_of(v) for v in value)
    return 0


def fit(budget: int, per_sample: int, cap: int) -> int:
    """The batch size that keeps `per_sample` × batch within `budget`: at least 1, at most `cap`."""
    return int(max(1, min(cap, budget // max(per_sample, 1))))

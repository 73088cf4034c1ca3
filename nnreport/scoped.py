"""Context managers that change the user's model temporarily and always undo the change."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from torch import nn

_HOOK_DICTS = (
    "_forward_hooks",
    "_forward_pre_hooks",
    "_backward_hooks",
    "_backward_pre_hooks",
    "_state_dict_hooks",
    "_load_state_dict_pre_hooks",
)


@contextmanager
def eval_mode(model: nn.Module, training: bool = False) -> Iterator[nn.Module]:
    """Put every submodule in eval (or train) mode; restore each module's own flag afterwards."""
    flags = [(m, m.training) for m in model.modules()]
    for module, _ in flags:
        # Set the flag directly: some modules (exported programs) refuse `.train()` calls.
        module.training = training
    try:
        yield model
    finally:
        for module, flag in flags:
            module.training = flag


@contextmanager
def frozen(model: nn.Module, requires_grad: bool = False) -> Iterator[nn.Module]:
    """Set requires_grad on every parameter; restore each one's flag afterwards."""
    flags = [(p, p.requires_grad) for p in model.parameters()]
    for p, _ in flags:
        p.requires_grad_(requires_grad)
    try:
        yield model
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


SMALL_MODEL_PARAMETERS = 2_000_000


@contextmanager
def small_model_threads(model: nn.Module, limit: int = SMALL_MODEL_PARAMETERS) -> Iterator[None]:
    """One intra-op thread while working on a small model (torch's setting restored afterwards).

    On small tensors thread hand-offs cost more than they save: measured on the demo's 2-core machine,
    activation maximisation took 1.3 s on one thread and 21-44 s on two when the machine was busy, and
    relevance used about 7x the CPU time for the same work."""
    if sum(p.numel() for p in model.parameters()) < limit:
        with threads(1):
            yield
    else:
        yield


@contextmanager
def threads(n: int) -> Iterator[None]:
    """Run with `n` intra-op torch threads; the previous setting is restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class HookSet:
    """Hooks registered through this object are all removed when its `with` block ends."""

    def __init__(self) -> None:
        self._handles: list[Any] = []

    def forward(self, module: nn.Module, hook: Callable[..., Any], **kw: Any) -> None:
        self._handles.append(module.register_forward_hook(hook, **kw))

    def forward_pre(self, module: nn.Module, hook: Callable[..., Any], **kw: Any) -> None:
        self._handles.append(module.register_forward_pre_hook(hook, **kw))

    def full_backward(self, module: nn.Module, hook: Callable[..., Any]) -> None:
        self._handles.append(module.register_full_backward_hook(hook))

    def tensor(self, tensor: torch.Tensor, hook: Callable[..., Any]) -> None:
        self._handles.append(tensor.register_hook(hook))

    def remove(self) -> None:
        while self._handles:
            self._handles.pop().remove()

    def __enter__(self) -> HookSet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


@contextmanager
def hooks() -> Iterator[HookSet]:
    """`with hooks() as h: h.forward(module, fn)` — every hook is removed on exit, even on errors."""
    hs = HookSet()
    try:
        yield hs
    finally:
        hs.remove()


@contextmanager
def restored_parameters(model: nn.Module, copies: Iterable[tuple[torch.Tensor, torch.Tensor]] = ()
                        ) -> Iterator[nn.Module]:
    """Allow in-place changes to parameters and buffers; copy the originals back afterwards.

    `copies`: (tensor, a copy of its current value) pairs the caller already holds and will not change;
    those are restored from the given copy instead of a new one (a model-sized copy saved)."""
    import torch

    given = {id(t): c for t, c in copies}
    saved = {name: given[id(t)] if id(t) in given else t.detach().clone() for name, t in _tensors(model)}
    try:
        yield model
    finally:
        with torch.no_grad():
            for name, t in _tensors(model):
                if name in saved:
                    t.copy_(saved[name])


def _tensors(model: nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    yield from model.named_parameters(remove_duplicate=True)
    for name, buf in model.named_buffers(remove_duplicate=True):
        if buf is not None:
            yield "buffer:" + name, buf


def model_state(model: nn.Module) -> dict[str, Any]:
    """Modes, requires_grad flags and hook counts of every submodule, for before/after checks."""
    return {
        "modes": [m.training for m in model.modules()],
        "grads": [p.requires_grad for p in model.parameters()],
        "hooks": [tuple(len(getattr(m, d, {})) for d in _HOOK_DICTS) for m in model.modules()],
    }


@contextmanager
def untouched(model: nn.Module) -> Iterator[nn.Module]:
    """Guard around an analysis: parameter and buffer values, train/eval modes and requires_grad
    flags are restored and stray hooks removed, even when the analysis raises."""
    hook_keys = [{d: set(getattr(m, d, {}).keys()) for d in _HOOK_DICTS} for m in model.modules()]
    modes = [(m, m.training) for m in model.modules()]
    grads = [(p, p.requires_grad) for p in model.parameters()]
    try:
        with restored_parameters(model):
            yield model
    finally:
        for module, flag in modes:
            module.training = flag
        for p, flag in grads:
            p.requires_grad_(flag)
        _remove_new_hooks(model, hook_keys)


def _remove_new_hooks(model: nn.Module, hook_keys: list[dict[str, set[Any]]]) -> None:
    for module, keys in zip(model.modules(), hook_keys, strict=True):
        for d, known in keys.items():
            table = getattr(module, d, None)
            if table is not None:
                for key in [k for k in table if k not in known]:
                    del table[key]

"""Data-parallel analyses under torchrun: each process computes its share of a list of work items and
every process receives all results, in order, so the merge is the same as in one process.

`torchrun --nproc_per_node=N -m nnreport build ...` on one machine, or with `--nnodes`, `--node_rank`
and `--rdzv_endpoint` across machines; gloo on CPUs, nccl when CUDA is available. Outside torchrun
(WORLD_SIZE unset or 1) everything runs in this process.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def maybe_init_distributed() -> tuple[int, int]:
    """(rank, world size). Under torchrun (WORLD_SIZE > 1 in the environment) the default process group
    is started once here: gloo on CPU, nccl when CUDA is available."""
    import torch
    import torch.distributed as dist

    if not dist.is_available():
        return 0, 1
    if not dist.is_initialized():
        if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
            return 0, 1
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), dist.get_world_size()


def rank_world() -> tuple[int, int]:
    """(rank, world size), without importing torch outside torchrun."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0, 1
    return maybe_init_distributed()


def share(count: int) -> list[int]:
    """The items of a list of `count` this process computes: i ≡ rank (mod world)."""
    rank, world = rank_world()
    return [i for i in range(count) if i % world == rank]


def gather(local: dict[int, Any], count: int) -> list[Any]:
    """Every process's {index: result}, merged into one list of `count` results (each item was computed by
    exactly one process). Results are small numpy arrays or plain values (sent pickled)."""
    rank, world = rank_world()
    if world == 1:
        return [local[i] for i in range(count)]
    import torch.distributed as dist

    parts: list[Any] = [None] * world
    dist.all_gather_object(parts, local)
    merged: dict[int, Any] = {}
    for part in parts:
        merged.update(part)
    return [merged[i] for i in range(count)]


def map_shared(fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """[fn(item) for item in items], the items split over the torchrun processes; all get every result."""
    _rank, world = rank_world()
    if world == 1:
        return [fn(item) for item in items]
    return _unwrap(gather({i: _attempt(fn, items[i]) for i in share(len(items))}, len(items)))


def stream_shared(fn: Callable[[int], R], count: int) -> Iterator[R]:
    """fn(0), fn(1), … fn(count - 1) in order. In one process they are computed one at a time as the caller
    consumes them (so memory does not grow with `count`); under torchrun each process computes its share
    and the results are gathered first."""
    _rank, world = rank_world()
    if world == 1:
        return (fn(i) for i in range(count))
    return iter(_unwrap(gather({i: _attempt(fn, i) for i in share(count)}, count)))


class _Failed:
    """An item whose computation raised: every process re-raises it after the gather (instead of one
    process leaving the others waiting in the collective)."""

    def __init__(self, exc: BaseException) -> None:
        try:
            import pickle

            pickle.dumps(exc)
            self.exc: BaseException = exc
        except Exception:  # noqa: BLE001 - an exception that cannot travel goes as its text
            self.exc = RuntimeError(f"{type(exc).__name__}: {exc}")


def _attempt(fn: Callable[[T], R], item: T) -> R | _Failed:
    try:
        return fn(item)
    except Exception as exc:  # noqa: BLE001 - re-raised on every rank by _unwrap
        return _Failed(exc)


def _unwrap(results: list[Any]) -> list[Any]:
    for r in results:
        if isinstance(r, _Failed):
            raise r.exc
    return results


def broadcast_floats(values: Iterable[float]) -> list[float]:
    """Rank 0's values on every process (e.g. a timing that decides a plan all processes must share)."""
    values = [float(v) for v in values]
    _rank, world = rank_world()
    if world == 1:
        return values
    import torch.distributed as dist

    box: list[Any] = [values]
    dist.broadcast_object_list(box, src=0)
    return [float(v) for v in box[0]]

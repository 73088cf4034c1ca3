"""Progress reporting through a callback: analyses never print."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Protocol, TextIO


@dataclass(frozen=True)
class ProgressEvent:
    """A stage starting (done=0), advancing, or finishing (done == total)."""

    stage: str
    done: int
    total: int
    message: str = ""
    # The inspector's closing event for a stage (ok, cached, skipped or failed); analyses never set it.
    final: bool = False


class ProgressFn(Protocol):
    def __call__(self, event: ProgressEvent) -> None: ...


def silent(event: ProgressEvent) -> None:
    """A progress callback that ignores everything."""


class StageReporter:
    """Helper handed to analyses: `step(i, n)` reports progress within the current stage."""

    def __init__(self, stage: str, callback: ProgressFn) -> None:
        self.stage = stage
        self._callback = callback

    def step(self, done: int, total: int, message: str = "") -> None:
        self._callback(ProgressEvent(self.stage, done, total, message))


class TerminalProgress:
    """Plain stage lines when stderr is not a terminal, a redrawn bar with an ETA when it is."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self._started: dict[str, float] = {}
        self._last_line = time.monotonic()

    def __call__(self, event: ProgressEvent) -> None:
        now = time.monotonic()
        start = self._started.setdefault(event.stage, now)
        finished = event.final
        if self.tty:
            self._bar(event, now - start, finished)
        elif event.done == 0 or finished or now - self._last_line > 10:
            state = "done" if finished else ("start" if event.done == 0 else f"{event.done}/{event.total}")
            extra = f" ({now - start:.1f}s)" if finished else ""
            note = f" {event.message}" if event.message else ""
            print(f"[nnreport] {event.stage}: {state}{extra}{note}", file=self.stream, flush=True)
            self._last_line = now

    def _bar(self, event: ProgressEvent, elapsed: float, finished: bool) -> None:
        total = max(event.total, 1)
        frac = min(event.done / total, 1.0)
        width = 24
        bar = "#" * int(frac * width) + "-" * (width - int(frac * width))
        eta = f" eta {elapsed / frac - elapsed:4.0f}s" if 0 < frac < 1 else ""
        line = f"\r{event.stage:<14} [{bar}] {event.done}/{event.total}{eta} {event.message[:30]:<30}"
        self.stream.write(line + ("\n" if finished else ""))
        self.stream.flush()

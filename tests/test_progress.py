"""Progress: plain stage lines off a terminal, a redrawn bar with an ETA on one; analyses never print."""

from __future__ import annotations

import io

import nnreport
from nnreport.config import ReportConfig
from nnreport.progress import ProgressEvent, TerminalProgress

from models import ZOO


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_lines_off_a_terminal_and_a_bar_on_one() -> None:
    plain, tty = io.StringIO(), FakeTTY()
    for stream in (plain, tty):
        p = TerminalProgress(stream)
        p(ProgressEvent("Loss landscape", 0, 4))
        p(ProgressEvent("Loss landscape", 2, 4, "random plane"))
        p(ProgressEvent("Loss landscape", 4, 4))
        p(ProgressEvent("Loss landscape", 1, 1, final=True))
    lines = plain.getvalue().splitlines()
    assert lines[0] == "[nnreport] Loss landscape: start"
    assert lines[-1].startswith("[nnreport] Loss landscape: done (") and len(lines) == 2  # no line per step
    bar = tty.getvalue()
    assert "\r" in bar and "[############------------] 2/4" in bar and "eta" in bar and bar.endswith("\n")


def test_inspection_reports_every_stage_through_the_callback(capsys: object) -> None:
    events: list[ProgressEvent] = []
    model, inputs = ZOO["tiny_cnn"]()
    nnreport.inspect(model, config=ReportConfig(preset="quick", only=("summary", "graph")), example_inputs=inputs,
                     progress=events.append)
    finals = [e.stage for e in events if e.final]
    assert finals == ["Model summary", "Graph"]
    out = capsys.readouterr()  # type: ignore[attr-defined]
    assert out.out == "" and out.err == ""  # analyses report through the callback, never print

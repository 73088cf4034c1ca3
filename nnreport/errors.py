"""Errors that reach the user as one line: what went wrong and how to fix it."""

from __future__ import annotations


class NNReportError(Exception):
    """A failure the user can act on; the CLI prints it as one line and exits 1."""

    exit_code = 1


class UsageError(NNReportError):
    """Bad command-line input (a spec, a path, an option); the CLI exits 2."""

    exit_code = 2


class SpecError(UsageError):
    """A model or data spec that cannot be loaded."""


class BundleError(UsageError):
    """An inspection bundle that cannot be read (missing, corrupt or from a newer nnreport)."""


class Skipped(Exception):
    """Raised by an analysis that does not apply to this model or data; the message says why."""


def first_line(exc: BaseException, limit: int = 200) -> str:
    """An exception as one short line, for one-line error messages (a model's sys.exit() named as such)."""
    if isinstance(exc, SystemExit):
        return f"the model called sys.exit({exc.code!r})"
    text = str(exc).strip()
    return text.splitlines()[0][:limit] if text else type(exc).__name__


def named(exc: BaseException, limit: int = 200) -> str:
    """`Type: first line` of an exception (just `Type` when it has no message)."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:limit]}" if text else type(exc).__name__

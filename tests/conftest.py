"""Shared fixtures: an isolated cache, the demo report, and a headless Chromium (Debian's, via playwright)."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# As the CLI does: OpenMP threads sleep while waiting instead of spinning (set before torch loads).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

sys.path.insert(0, str(Path(__file__).parent))

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--no-first-run",
]


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every test session gets its own result cache, so tests never see a developer's cache."""
    path = tmp_path_factory.mktemp("nnreport-cache")
    old = os.environ.get("NNREPORT_CACHE_DIR")
    os.environ["NNREPORT_CACHE_DIR"] = str(path)
    yield path
    if old is None:
        os.environ.pop("NNREPORT_CACHE_DIR", None)
    else:
        os.environ["NNREPORT_CACHE_DIR"] = old


def chromium_path() -> str | None:
    for candidate in (os.environ.get("NNREPORT_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """Headless Debian Chromium. Skips without one, except under CI=true, where a missing browser fails."""
    exe = chromium_path()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None  # type: ignore[assignment]
    if exe is None or sync_playwright is None:
        why = "no Chromium found (apt-get install chromium)" if exe is None else "playwright is not installed"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"browser tests need Chromium under CI: {why}")
        pytest.skip(why)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=CHROMIUM_FLAGS)
        yield b
        b.close()


@pytest.fixture(scope="session")
def demo_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The full demo report, built once per session with the quick preset."""
    from nnreport.cli import main

    out = tmp_path_factory.mktemp("demo") / "report"
    # NNREPORT_TEST_ONLY=summary,graph narrows the demo while working on one analysis.
    only = ["--only", os.environ["NNREPORT_TEST_ONLY"]] if os.environ.get("NNREPORT_TEST_ONLY") else []
    code = main(["demo", "--out", str(out), "--preset", "quick", *only])
    assert code == 0, f"demo exited {code}"
    return out

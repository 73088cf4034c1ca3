"""Shared fixtures: an isolated cache, one torch thread, the demo report, and a headless Chromium (Debian's,
via playwright). Tests that use the browser are marked `browser`, slow ones `slow`, so that
`python3 -m pytest -m "not browser and not slow"` is the fast tier."""

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


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """One intra-op torch thread for a module's tests (`pytestmark = pytest.mark.usefixtures("one_thread")`):
    on small tensors a second thread mostly spins, and on a busy 2-core machine tiny models get ~10x slower."""
    from nnreport.scoped import threads

    with threads(1):
        yield


# Slow tests, measured with `--durations=0` on the 2-core development machine (setup included): the ones
# over ~1 s, together about 60% of the suite's time; the test names cover all their parameters. Any test
# that uses a fixture of SLOW_FIXTURES (it builds a whole report) is slow too, and so is every test_zoo_*
# (each runs an analysis on every architecture of the test zoo).
SLOW_MODULES = {"test_landscape_distributed.py"}
SLOW_FIXTURES = {"demo_report"}
SLOW_TESTS = {
    "test_site.py::test_site_and_analysis_modules_import_without_torch",
    "test_site.py::test_two_cold_builds_and_a_cached_one_are_byte_identical",
    "test_relevance_lrp.py::test_numerically_sane_on_residual_net_with_batchnorm",
    "test_cli.py::test_torchscript_and_exported_program",
    "test_cli.py::test_build_from_file_callable_with_subject",
    "test_compare.py::test_the_documented_ci_recipe_runs",
    "test_landscape_page.py::test_page_has_every_part",
    "test_datasets.py::test_builtin_loads_and_is_deterministic",
    "test_cli.py::test_build_with_data_callable_and_package_module_spec",
    "test_finite_json.py::test_every_page_with_a_class_that_never_occurs",
    "test_golden.py::test_the_sample_report_rebuilds_byte_for_byte",
    "test_golden.py::test_the_theme_palette_reaches_pages_and_charts",
    "test_evaluation.py::test_regression_and_many_class_pages_are_clean_in_chromium",
    # Over 0.4 s each in the fast tier (pytest --durations on the 2-core machine), so that tier stays short.
    "test_scale.py::test_build_plan_prints_the_plan_and_writes_nothing",
    "test_evaluation.py::test_the_bundle_holds_plain_lists_and_the_output_is_deterministic",
    "test_data_streaming.py::test_peak_memory_does_not_grow_with_the_folder",
    "test_evaluation.py::test_many_classes_show_ranked_pairs_instead_of_the_grid",
    "test_inspector.py::test_every_analysis_leaves_the_model_untouched",
    "test_attention.py::test_vit_analysis_and_page",
    "test_scale.py::test_a_device_that_is_not_there_is_a_one_line_usage_error",
    "test_graph.py::test_a_stack_of_equal_blocks_is_stored_once",
    "test_landscape.py::test_sharpness_map_and_recomputed_batchnorm",
    "test_attention.py::test_recorded_maps_equal_multihead_attentions_own_weights",
    "test_evaluation.py::test_the_theme_palette_colours_the_page_and_charts",
    "test_evaluation.py::test_compare_says_why_evaluations_are_not_compared",
    "test_graph.py::test_export_and_eager_agree_on_simple_models",
    "test_evaluation.py::test_compare_shows_f1_deltas_the_confusion_difference_and_both_reliability_diagrams",
    "test_design.py::test_imports_run_one_way",
    "test_compare_graph.py::test_an_added_layer_is_green_and_a_removed_one_is_listed",
    "test_compare_landscape.py::test_one_side_without_a_landscape_says_so",
    "test_datasets.py::test_kinds_and_shapes",
    "test_graph.py::test_series_collapse_of_identical_chained_blocks",
    "test_finite_json.py::test_compare_overview_with_a_class_that_never_occurs",
    "test_evaluation.py::test_a_perfectly_calibrated_predictor_has_ece_near_zero",
    "test_compare_landscape.py::test_different_grids_give_a_reason_instead_of_plots",
    "test_data_streaming.py::test_build_reports_the_data_handling_on_the_card",
    "test_relevance.py::test_deterministic_for_a_seed",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test that opens Chromium `browser`, and the slow ones `slow`."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if "browser" in fixtures:
            item.add_marker(pytest.mark.browser)
        name = item.nodeid.split("::")[0].rpartition("/")[2]
        test = item.nodeid.split("[")[0].rpartition("/")[2]
        zoo = item.nodeid.split("::")[-1].startswith("test_zoo")
        if name in SLOW_MODULES or test in SLOW_TESTS or fixtures & SLOW_FIXTURES or zoo:
            item.add_marker(pytest.mark.slow)

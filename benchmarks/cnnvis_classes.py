"""CNNVis page build time against the number of classes: must grow near-linearly.

Before the fix, the x of every matrix cell recounted the bicluster gaps of all columns before it, so
the page was quadratic in the classes (100,000 class names took over 15 minutes). Prints the time for
each class count and the ratio to the previous count (x10 classes: about 10 is linear, 100 quadratic),
plus peak memory.

    python3 benchmarks/cnnvis_classes.py [--max 100000]
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np

from nnreport.cnnvis.results import CNNVisLayer, CNNVisResult, LayerGroup, NeuronCluster
from nnreport.inspection import AnalysisRecord, Inspection, Manifest, ModelInfo, Provenance
from nnreport.site.assets import Assets
from nnreport.site.build import environment, gather


def result(classes: int, clusters: int = 3) -> CNNVisResult:
    rng = np.random.default_rng(0)
    group = LayerGroup(layers=(0,), representative=0, labels=np.arange(clusters * 2) % clusters,
                       clusters=tuple(NeuronCluster((c,), (c,), rng.normal(size=classes), None, ())
                                      for c in range(clusters)),
                       order=tuple(range(clusters)), row_bicluster=(0,) * clusters)
    return CNNVisResult(
        layers=(CNNVisLayer("conv", "Conv2d", clusters * 2, 0, True),), similarity=np.ones((1, 1)), groups=(group,),
        edges=(), classes=tuple(f"class {i}" for i in range(classes)), by_label=True,
        class_order=tuple(range(classes)), column_bicluster=tuple(i * 3 // classes for i in range(classes)),
        samples=classes)


def inspection(r: CNNVisResult) -> Inspection:
    model = ModelInfo("m", "M", 0, 0, 0, 0, (), ())
    manifest = Manifest(1, "t", model, Provenance("0", "0", "0", "3", 0, "quick"),
                        (AnalysisRecord("cnnvis", "CNNVis overview", "ok"),))
    return Inspection(manifest, {"cnnvis": r})


def seconds(classes: int) -> tuple[float, float]:
    """(page context, page context + HTML) seconds for one build of the CNNVis page."""
    insp = inspection(result(classes))
    start = time.perf_counter()
    pages = [p for p in gather(insp, Assets()) if p.spec.slug == "cnnvis"]
    built = time.perf_counter() - start
    assert pages and pages[0].status == "ok", pages
    env = environment()
    env.globals.update(url=lambda p: p, page_url=lambda s: f"{s}.html", anchor=lambda s, f="": f"{s}.html#{f}")
    from nnreport.site.build import CSP, NavItem, SiteInfo
    from nnreport.site.themes import load_theme

    site = SiteInfo("t", (NavItem("cnnvis", "CNNVis", "ok"),), "cnnvis", load_theme("light"), insp, "0", False, CSP)
    env.get_template("cnnvis.html").render(layout="base.html", site=site, page=pages[0].context, spec=pages[0].spec)
    return built, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--max", type=int, default=100_000)
    args = parser.parse_args()
    previous = None
    n = 1000
    while n <= args.max:
        built, total = seconds(n)
        ratio = f"   x{total / previous:.1f} for x10 classes" if previous else ""
        print(f"{n:>7} classes: page context {built:6.2f} s, with HTML {total:6.2f} s{ratio}")
        previous, n = total, n * 10
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory {peak:.0f} MB")


if __name__ == "__main__":
    main()

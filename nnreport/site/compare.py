"""The compare site: what changed between two reports, plus both reports side by side (torch-free)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from nnreport import __version__
from nnreport.formatting import md
from nnreport.site import images
from nnreport.site.assets import Assets, ChartRef, ImageRef
from nnreport.site.build import (
    CSP,
    MARKER,
    SINGLE_FILE_NAME,
    NavItem,
    SiteInfo,
    cap_summary,
    data_uri,
    environment,
    links,
    marker_text,
    render_files,
    shared_files,
    single_file_page,
    write_atomic,
)
from nnreport.site.compare_evaluation import EvaluationComparison, compare_evaluations, evaluation_markdown
from nnreport.site.compare_graph import GraphComparison, compare_graphs, graph_markdown
from nnreport.site.compare_landscape import LandscapeComparison, compare_landscapes, landscape_markdown
from nnreport.site.pages import PageSpec, load_pages
from nnreport.site.themes import load_theme

# The side-by-side pages frame the two reports' own pages (files beside them); nothing else changes.
COMPARE_CSP = CSP + "; frame-src 'self'"

if TYPE_CHECKING:
    from pathlib import Path

    from nnreport.compare import Comparison
    from nnreport.inspection import Inspection


@dataclass(frozen=True)
class FlipView:
    index: int
    label: str
    pred_a: str
    pred_b: str
    picture: ImageRef | None
    verdict: str


@dataclass(frozen=True)
class ComparePage:
    result: Comparison
    flips: tuple[FlipView, ...]
    charts: tuple[ChartRef, ...]
    sides: tuple[tuple[str, str], ...]  # (slug, title) of pages both reports have
    title_a: str
    title_b: str
    landscape: LandscapeComparison | None = None
    graph: GraphComparison | None = None
    evaluation: EvaluationComparison | None = None


@dataclass(frozen=True)
class SidePage:
    slug: str
    title: str
    names: tuple[str, str]
    src_a: str
    src_b: str


def _class_name(names: tuple[str, ...] | None, i: int) -> str:
    return names[i] if names and 0 <= i < len(names) else str(i)


def _flip_picture(flip: Any, assets: Assets, cmap: images.ColourMap) -> ImageRef | None:
    """Input | A's map | B's map | B − A (each map scaled to its own largest magnitude first)."""
    if flip.image.size == 0:
        return None
    size = flip.image.shape[-1]
    scale = max(1, 96 // size)
    tiles = [images.upscale(images.to_rgb(flip.image), scale)]
    if flip.relevance_a.size and flip.relevance_b.size:
        ra = flip.relevance_a / (np.abs(flip.relevance_a).max() + 1e-12)
        rb = flip.relevance_b / (np.abs(flip.relevance_b).max() + 1e-12)
        for m in (ra, rb, rb - ra):
            tiles.append(images.upscale(images.colourize(m, cmap, -1.0, 1.0), scale))
    grid = images.tile(tiles, columns=len(tiles), pad=2)
    return assets.png(f"flip-{flip.index}", grid, f"test sample {flip.index}")


def _per_class_chart(result: Comparison, assets: Assets) -> ChartRef | None:
    import altair as alt

    if not result.per_class:
        return None
    rows = [{"class": c.name, "model": name, "accuracy": acc, "order": i}
            for i, c in enumerate(result.per_class) for name, acc in zip(result.names, (c.a, c.b), strict=True)]
    chart = alt.Chart(alt.Data(values=rows)).mark_bar().encode(
        x=alt.X("class:N", sort=alt.SortField("order")), xOffset=alt.XOffset("model:N"),
        y=alt.Y("accuracy:Q", scale=alt.Scale(domain=[0, 1])), color=alt.Color("model:N", title=None),
        tooltip=["class:N", "model:N", alt.Tooltip("accuracy:Q", format=".1%")],
    ).properties(width=max(220, 44 * len(result.per_class)), height=180, title="Test accuracy per class")
    return assets.chart(chart, "Test accuracy per class for both models",
                        f"{result.names[0]} and {result.names[1]} on the same {result.evaluated} test samples.")


def render_comparison(a: Inspection, b: Inspection, result: Comparison, out: str | Path, theme: str = "light",
                      single_file: bool = False, timings: bool = True) -> Path:
    """Write the compare site: index.html (the differences), side-<page>.html, a/ and b/ (both reports)."""
    if not timings:
        a, b = a.without_timings(), b.without_timings()
    theme_obj = load_theme(theme)
    # Both reports load the chart runtime, CSS and script from the comparison's own assets/.
    files_a = render_files(a, theme, single_file=single_file, static="../assets/")
    files_b = render_files(b, theme, single_file=single_file, static="../assets/")
    assets = Assets(palette=theme_obj.palette)
    names_a, names_b = a.manifest.model.class_names, b.manifest.model.class_names
    flips = tuple(FlipView(
        f.index, _class_name(names_a, f.label), _class_name(names_a, f.pred_a), _class_name(names_b, f.pred_b),
        _flip_picture(f, assets.for_page("compare"), theme_obj.palette.diverging),
        "fixed" if f.pred_b == f.label else ("broken" if f.pred_a == f.label else "changed"),
    ) for f in result.flips)
    chart = _per_class_chart(result, assets.for_page("compare"))
    sides = () if single_file else tuple(
        (p.slug, p.title) for p in load_pages() if p.slug != "index" and f"{p.slug}.html" in files_a.keys() & files_b.keys())
    context = ComparePage(result, flips, (chart,) if chart else (), sides, a.manifest.title, b.manifest.title,
                          compare_landscapes(a.result("landscape"), b.result("landscape"), assets.for_page("compare"),
                                             result.names),
                          compare_graphs(a.result("graph"), b.result("graph"), result.names),
                          compare_evaluations(a.result("evaluation"), b.result("evaluation"), assets.for_page("compare"),
                                              result.names))
    env = environment()
    nav = (NavItem("index", "Differences", "ok"),) + tuple(NavItem(f"side-{s}", t, "ok") for s, t in sides)
    page_spec = PageSpec("index", "Differences", (), 0, "compare.html", lambda *_: None)
    files: dict[str, bytes] = {}
    links(env, url=(lambda p: p) if not single_file else (lambda p: data_uri(p, assets.files[p])),
          page_url=lambda slug: f"{slug}.html", anchor=lambda slug, frag="": f"{slug}.html#{frag}")

    def render(template: str, spec: PageSpec, page: Any, layout: str = "base.html") -> str:
        site = SiteInfo(f"{result.names[0]} vs {result.names[1]} — nnreport compare", nav, spec.slug, theme_obj, b,
                        __version__, single_file, COMPARE_CSP)
        return env.get_template(template).render(layout=layout, site=site, page=page, spec=spec)

    if single_file:
        body = render("compare.html", page_spec, context, layout="fragment.html")
        embedded = {"a": files_a[SINGLE_FILE_NAME].decode(), "b": files_b[SINGLE_FILE_NAME].decode()}
        site = SiteInfo(f"{result.names[0]} vs {result.names[1]} — nnreport compare", (NavItem("index", "Differences", "ok"),),
                        "index", theme_obj, b, __version__, True, COMPARE_CSP)
        files[SINGLE_FILE_NAME] = single_file_page(env, "compare_single.html", site, body=body, embedded=embedded,
                                                   names=result.names).encode("utf-8")
    else:
        files["index.html"] = render("compare.html", page_spec, context).encode("utf-8")
        for slug, title in sides:
            spec = PageSpec(f"side-{slug}", title, (), 1, "compare_side.html", lambda *_: None)
            files[f"side-{slug}.html"] = render("compare_side.html", spec, SidePage(
                slug, title, result.names, f"a/{slug}.html", f"b/{slug}.html")).encode("utf-8")
        files.update(assets.files)
        files.update(shared_files(theme_obj))
    for prefix, sub in (("a", files_a), ("b", files_b)):
        files.update({f"{prefix}/{k}": v for k, v in sub.items() if k != MARKER})
    files["summary.md"] = comparison_markdown(a, b, result).encode("utf-8")
    files[MARKER] = marker_text(list(files))
    return write_atomic(files, out)


def comparison_markdown(a: Inspection, b: Inspection, result: Comparison) -> str:
    """A diff table for a pull-request comment (under 60,000 characters)."""
    names = (md(result.names[0]), md(result.names[1]))  # these lines embed the names
    text = environment().get_template("compare.md").render(
        r=result, a=a.manifest, b=b.manifest,
        landscape=landscape_markdown(a.result("landscape"), b.result("landscape"), names),
        graph=graph_markdown(a.result("graph"), b.result("graph"), names),
        evaluation=evaluation_markdown(a.result("evaluation"), b.result("evaluation"), names))
    return cap_summary(text)

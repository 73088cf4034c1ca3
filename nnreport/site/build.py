"""Build the site: gather every page's context, render the templates, then write atomically."""

from __future__ import annotations

import base64
import mimetypes
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from nnreport import __version__
from nnreport.inspection import AnalysisRecord, Inspection
from nnreport.resources import resource_dir
from nnreport.site.assets import Assets
from nnreport.site.output import MARKER, marker_text, write_atomic
from nnreport.site.pages import PageSpec, load_pages
from nnreport.site.themes import Theme, load_theme
from nnreport.templating import environment

SINGLE_FILE_NAME = "report.html"


@dataclass(frozen=True)
class NavItem:
    slug: str
    title: str
    status: str


@dataclass(frozen=True)
class SiteInfo:
    """What every template sees besides its page context."""

    title: str
    nav: tuple[NavItem, ...]
    current: str
    theme: Theme
    inspection: Inspection
    version: str
    single_file: bool
    csp: str
    # Where the shared files (chart runtime, CSS, page script) are: "assets/", or "../assets/" for the
    # two reports inside a comparison, which share the comparison's copy.
    static: str = "assets/"


@dataclass(frozen=True)
class StatusPage:
    """Shown instead of an analysis page when its analyses were skipped or failed."""

    records: tuple[AnalysisRecord, ...]


@dataclass(frozen=True)
class RenderedPage:
    spec: PageSpec
    status: str
    template: str
    context: Any


# No request can leave the page: everything is inline or a file beside it.
CSP = ("default-src 'none'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data:; font-src 'self' data:; connect-src 'none'; form-action 'none'; base-uri 'none'; "
       "worker-src blob:")


@cache
def chart_runtime() -> bytes:
    """The Vega + Vega-Lite + vega-embed bundle from vl-convert (one classic script, no imports)."""
    import vl_convert

    return vl_convert.javascript_bundle().encode("utf-8")  # type: ignore[call-arg]  # the stub omits the default


def links(env: jinja2.Environment, url: Callable[[str], str], page_url: Callable[[str], str],
          anchor: Callable[..., str]) -> None:
    """Set how templates link: `url(asset path)`, `page_url(slug)`, `anchor(slug, fragment)`. They are
    globals, so that macros imported from macros.html see them too."""
    env.globals.update(url=url, page_url=page_url, anchor=anchor)


def _page_status(spec: PageSpec, insp: Inspection) -> tuple[str, tuple[AnalysisRecord, ...]]:
    records = tuple(r for r in (insp.record(a) for a in spec.analyses) if r is not None)
    if not spec.analyses:
        return "ok", records
    if not records:
        return "absent", records
    if any(r.status == "ok" for r in records):
        return "ok", records
    return ("failed" if any(r.status == "failed" for r in records) else "skipped"), records


def gather(insp: Inspection, assets: Assets) -> list[RenderedPage]:
    """Build each page's context; a page whose builder raises becomes a status page with the error."""
    pages = []
    for spec in load_pages():
        status, records = _page_status(spec, insp)
        if status == "absent":
            continue
        if status != "ok":
            pages.append(RenderedPage(spec, status, "status.html", StatusPage(records)))
            continue
        try:
            pages.append(RenderedPage(spec, "ok", spec.template, spec.build(insp, assets.for_page(spec.slug))))
        except Exception as exc:  # a broken page must not take the site down
            failed = AnalysisRecord(f"{spec.slug} page", spec.title, "failed", f"drawing the page failed: {type(exc).__name__}: {exc}")
            pages.append(RenderedPage(spec, "failed", "status.html", StatusPage(records + (failed,))))
    return pages


def page_file(slug: str) -> str:
    return f"{slug}.html"


def shared_files(theme: Theme) -> dict[str, bytes]:
    """The files every page of a site shares: its CSS, the chart runtime and the page script."""
    return {
        "assets/nnreport.css": theme.css.encode("utf-8"),
        "assets/vega.js": chart_runtime(),
        "assets/nnreport.js": (resource_dir("templates") / "static" / "nnreport.js").read_bytes(),
    }


def render_files(insp: Inspection, theme: str = "light", single_file: bool = False,
                 static: str = "assets/") -> dict[str, bytes]:
    """Every file of the site (and the bundle under inspection/) as {relative path: bytes}.

    With `static` other than "assets/", the shared files are left out: the pages load them from there."""
    theme_obj = load_theme(theme)
    assets = Assets(palette=theme_obj.palette)
    pages = gather(insp, assets)
    nav = tuple(NavItem(p.spec.slug, p.spec.title, p.status) for p in pages)
    env = environment()
    files: dict[str, bytes] = {}
    if not single_file:
        links(env, url=lambda path: path, page_url=page_file,
              anchor=lambda slug, frag="": f"{page_file(slug)}#{frag}" if frag else page_file(slug))
    if single_file:
        files[SINGLE_FILE_NAME] = _single_file(env, pages, nav, insp, theme_obj, assets).encode("utf-8")
    else:
        for p in pages:
            site = SiteInfo(insp.manifest.title, nav, p.spec.slug, theme_obj, insp, __version__, False, CSP, static)
            files[page_file(p.spec.slug)] = _render_page(env, p, site, "base.html").encode("utf-8")
        files.update(assets.files)
        if static == "assets/":
            files.update(shared_files(theme_obj))
    files["summary.md"] = summary_markdown(insp, pages).encode("utf-8")
    files.update(_bundle_files(insp))
    files[MARKER] = marker_text(list(files))  # every file this build writes: what a rebuild may replace
    return files


def _render_page(env: jinja2.Environment, p: RenderedPage, site: SiteInfo, layout: str) -> str:
    """Render one page; a template error shows on a status page instead of stopping the build."""
    try:
        return env.get_template(p.template).render(layout=layout, site=site, page=p.context, spec=p.spec)
    except Exception as exc:
        records = p.context.records if isinstance(p.context, StatusPage) else ()
        failed = AnalysisRecord(f"{p.spec.slug} page", p.spec.title, "failed",
                                f"drawing the page failed: {type(exc).__name__}: {exc}")
        return env.get_template("status.html").render(layout=layout, site=site, page=StatusPage(records + (failed,)),
                                                      spec=p.spec)


def _single_file(env: jinja2.Environment, pages: list[RenderedPage], nav: tuple[NavItem, ...], insp: Inspection,
                 theme: Theme, assets: Assets) -> str:
    """All pages as sections of one HTML file, with images as data URIs and scripts inline."""
    links(env, url=lambda path: data_uri(path, assets.files[path]), page_url=lambda slug: f"#page-{slug}",
          anchor=lambda slug, frag="": f"#{frag}" if frag else f"#page-{slug}")
    sections = []
    for p in pages:
        site = SiteInfo(insp.manifest.title, nav, p.spec.slug, theme, insp, __version__, True, CSP)
        sections.append(_render_page(env, p, site, "fragment.html"))
    site = SiteInfo(insp.manifest.title, nav, "index", theme, insp, __version__, True, CSP)
    return single_file_page(env, "single.html", site, sections=list(zip(pages, sections, strict=True)))


def single_file_page(env: jinja2.Environment, template: str, site: SiteInfo, **context: Any) -> str:
    """One self-contained HTML file (reports and comparisons): `template`, which is single.html or extends
    it, with the theme's CSS, the chart runtime and the page script inline."""
    return env.get_template(template).render(
        site=site, css=site.theme.css, runtime=chart_runtime().decode("utf-8"),
        script=(resource_dir("templates") / "static" / "nnreport.js").read_text(encoding="utf-8"), **context,
    )


def data_uri(path: str, data: bytes) -> str:
    """An asset inlined for the single-file site."""
    mime = mimetypes.guess_type(path)[0] or "application/octet-stream"
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


SUMMARY_LIMIT = 60_000  # characters a pull-request comment can hold, with room to spare


def cap_summary(text: str) -> str:
    """A summary.md cut to SUMMARY_LIMIT characters, saying so."""
    return text if len(text) <= SUMMARY_LIMIT else text[: SUMMARY_LIMIT - 40] + "\n\n_(summary truncated)_\n"


def _bundle_files(insp: Inspection) -> dict[str, bytes]:
    with tempfile.TemporaryDirectory() as tmp:
        insp.save(tmp)
        return {f"inspection/{p.name}": p.read_bytes() for p in sorted(Path(tmp).iterdir())}


def summary_markdown(insp: Inspection, pages: list[RenderedPage]) -> str:
    """A short Markdown summary for a pull-request comment (kept under 60,000 characters)."""
    env = environment()
    extra = []
    for p in pages:
        if p.status == "ok" and p.spec.markdown is not None:
            try:
                extra.append(p.spec.markdown(insp).strip())
            except Exception as exc:  # the summary must not fail the build
                extra.append(f"_{p.spec.title}: summary unavailable ({type(exc).__name__})_")
    return cap_summary(env.get_template("summary.md").render(insp=insp, m=insp.manifest, extra=[e for e in extra if e]))


def render(insp: Inspection, out: str | Path, theme: str = "light", single_file: bool = False,
           timings: bool = True) -> Path:
    """Render an Inspection into the folder `out` (replacing an earlier report there atomically)."""
    if not timings:
        insp = insp.without_timings()
    return write_atomic(render_files(insp, theme, single_file), out)

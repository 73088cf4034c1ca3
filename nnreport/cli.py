"""The command line (argparse). No analysis logic here, and no torch import until a command needs it."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from nnreport import __version__
from nnreport.errors import NNReportError

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_ANALYSES_FAILED = 3  # the report was written, but at least one analysis failed (its page shows why)
EXIT_INTERRUPTED = 130

EPILOG = """exit status: 0 report written; 1 failure (nothing written over an existing report);
2 usage error; 3 report written but some analyses failed (their pages show the error); 130 interrupted.
"""


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"nnreport: error: {message} (see '{self.prog} --help')\n")


def _csv(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(",") if p.strip())


def _add_site_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--theme", help="light (default), dark or paper")
    p.add_argument("--single-file", action="store_true", default=None,
                   help="write one self-contained report.html (plus summary.md) instead of a multi-page site")
    p.add_argument("--debug", action="store_true", help="show the full traceback on errors")


def _add_inspect_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE.toml", help="report options and [analyses.NAME] tables")
    p.add_argument("--preset", choices=("quick", "standard", "thorough"), help="how much to compute (default standard)")
    p.add_argument("--only", type=_csv, metavar="A,B", help="run only these analyses (and what they need)")
    p.add_argument("--skip", type=_csv, metavar="A,B", help="do not run these analyses")
    p.add_argument("--seed", type=int, help="seed for every random choice (default 0)")
    p.add_argument("--no-cache", action="store_true", help="recompute every analysis instead of reusing cached results")
    p.add_argument("--no-timings", action="store_true",
                   help="leave analysis run times off the report (cold builds then compare byte-identical)")
    p.add_argument("--title", help="the report's title")
    p.add_argument("--device", metavar="DEVICE", help="auto (default: CUDA when available, else CPU), cpu, cuda, cuda:N or mps")
    p.add_argument("--precision", choices=("fp32", "bf16", "fp16"),
                   help="autocast for forward-heavy analyses (default fp32; attribution gradients stay fp32)")
    p.add_argument("--memory-budget", metavar="SIZE", help="working memory per analysis, e.g. 4GB (default: from free memory)")


def _add_data_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--eval-data", metavar="DATA", help="a separate test set (any data spec); --data is then all "
                   "training data, with no random split")
    p.add_argument("--transform", metavar="imagenet|FILE.py:callable",
                   help="the model's own preprocessing of images: imagenet (resize 256, centre-crop 224, ImageNet "
                   "mean/std) or a callable from a PIL image to a tensor (e.g. torchvision weights.transforms())")
    p.add_argument("--image-size", type=int, metavar="N", help="resize images' shorter side to N and centre-crop N×N")
    p.add_argument("--normalize", choices=("imagenet", "data", "none"),
                   help="image normalisation: ImageNet's mean/std, the data's own (default for image folders), or none")


def _data_options(args: argparse.Namespace, subject: Any = None) -> Any:
    """The data options of the command line, falling back on what a model spec's Subject says."""
    from nnreport.errors import UsageError
    from nnreport.loading import DataOptions

    has_data = bool(args.data) or getattr(subject, "data", None) is not None
    if args.eval_data and not has_data:
        raise UsageError("--eval-data needs --data (the training set it is evaluated against)")
    if not has_data and (args.transform or args.image_size is not None or args.normalize):
        raise UsageError("--transform, --image-size and --normalize preprocess data; pass --data too")
    return DataOptions(transform=args.transform or getattr(subject, "transform", None), image_size=args.image_size,
                       normalize=args.normalize, eval_data=args.eval_data or getattr(subject, "eval_data", None))


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="nnreport", description="Turn a PyTorch model into a self-contained, offline HTML report.",
                    epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"nnreport {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    b = sub.add_parser("build", help="inspect a model and write its report", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    b.add_argument("model", metavar="MODEL", help="file.py:callable, package.module:callable, model.pt2, "
                   "a TorchScript archive, or weights.pt with --factory")
    b.add_argument("--data", metavar="DATA", help="built-in name (digits, shapes, moons, circles, xor, spiral, gauss, "
                   "iris, cars), data.npz, data.pt, an image folder, or file.py:callable")
    _add_data_options(b)
    b.add_argument("--input-shape", metavar="SHAPE", help="synthetic inputs without data, e.g. 1,3,32,32 (several: 1,3;1,5)")
    b.add_argument("--factory", metavar="FILE.py:callable", help="builds the module that a state-dict MODEL is loaded into")
    b.add_argument("--unsafe-pickle", action="store_true", help="allow a fully pickled module (runs code from the file)")
    b.add_argument("--checkpoints", type=_csv, metavar="A.pt,B.pt",
                   help="training snapshots (state dicts, oldest first) for trajectories and the playground slider")
    b.add_argument("--out", default="nnreport-report", metavar="DIR", help="output folder (default ./nnreport-report)")
    b.add_argument("--plan", action="store_true", help="measure the model, print what each analysis will compute "
                   "to fit the preset's time budget, and exit")
    _add_inspect_options(b)
    _add_site_options(b)

    r = sub.add_parser("render", help="re-render a saved inspection (no recomputation, no torch)")
    r.add_argument("bundle", metavar="BUNDLE_DIR", help="a report's inspection/ folder (or the report folder)")
    r.add_argument("--out", required=True, metavar="DIR")
    r.add_argument("--no-timings", action="store_true", help="leave analysis run times off the report")
    _add_site_options(r)

    d = sub.add_parser("demo", help="train the built-in digits CNN and build its full report")
    d.add_argument("--out", default=None, metavar="DIR", help="output folder (default ./nnreport-demo)")
    d.add_argument("--playground", action="store_true", help="instead: a small MLP on the 2-D spiral data")
    _add_inspect_options(d)
    _add_site_options(d)

    c = sub.add_parser("compare", help="compare two models (or two saved reports) in one report",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("a", metavar="A", help="base: a model spec (or, with --bundles, a saved report or its inspection/)")
    c.add_argument("b", metavar="B", help="head: a model spec (or, with --bundles, a saved report or its inspection/)")
    c.add_argument("--bundles", action="store_true", help="A and B are saved reports: compare without recomputing")
    c.add_argument("--data", metavar="DATA", help="data both models are inspected on (see build --data)")
    _add_data_options(c)
    c.add_argument("--input-shape", metavar="SHAPE", help="synthetic inputs without data")
    c.add_argument("--factory", metavar="FILE.py:callable", help="builds the module for state-dict checkpoints")
    c.add_argument("--unsafe-pickle", action="store_true", help="allow fully pickled modules")
    c.add_argument("--names", metavar="A,B", help="labels for the two sides (default A,B), e.g. base,head")
    c.add_argument("--out", default="nnreport-compare", metavar="DIR", help="output folder (default ./nnreport-compare)")
    _add_inspect_options(c)
    _add_site_options(c)

    sub.add_parser("list", help="list analyses, themes and built-in datasets")
    return parser


def _config(args: argparse.Namespace) -> Any:
    from dataclasses import replace

    from nnreport.analyses import load_all
    from nnreport.config import ReportConfig, check_tables, load_toml

    config = load_toml(args.config) if getattr(args, "config", None) else ReportConfig()
    if getattr(args, "config", None):
        check_tables(config.analyses, load_all(), args.config)  # before any model is loaded
    overrides = {
        "preset": args.preset, "seed": args.seed, "only": args.only, "skip": args.skip, "theme": args.theme,
        "single_file": args.single_file, "title": args.title, "device": args.device, "precision": args.precision,
        "memory_budget": args.memory_budget,
    }
    config = replace(config, **{k: v for k, v in overrides.items() if v is not None})
    if args.no_cache:
        config = replace(config, cache=False)
    if args.no_timings:
        config = replace(config, timings=False)
    return config


def _progress() -> Any:
    from nnreport.progress import TerminalProgress

    return TerminalProgress()


def cmd_build(args: argparse.Namespace) -> int:
    from nnreport import api
    from nnreport.loading import load_checkpoints, load_model, resolve

    config = _config(args)
    _check_theme(config.theme)
    _check_out(args.out)
    _check_device(config.device)
    subject = load_model(args.model, factory=args.factory, unsafe_pickle=args.unsafe_pickle, seed=config.seed)
    if args.checkpoints:
        subject.checkpoints = load_checkpoints(args.checkpoints, subject.model)
    # The command line's data options (falling back on a model spec Subject's transform/eval_data) and its own
    # data, if any, resolved once here; api.inspect takes the resolved subject as it is.
    subject = resolve(subject, args.data, input_shape=args.input_shape, seed=config.seed,
                      options=_data_options(args, subject))
    try:
        insp = api.inspect(subject, None, config, progress=_progress(), model_spec=args.model,
                           on_plan=_show_plan(args.plan))
    except PlanShown:
        return EXIT_OK
    return _write(insp, args.out, config)


class PlanShown(Exception):
    """`build --plan`: the plan was printed; nothing is computed."""


def _show_plan(only: bool) -> Any:
    def show(plan: Any) -> None:
        if os.environ.get("RANK", "0") == "0":
            print("\n".join(plan.lines()), file=sys.stderr if not only else sys.stdout, flush=True)
        if only:
            raise PlanShown

    return show


def _check_device(spec: str) -> None:
    from nnreport.device import resolve_device

    resolve_device(spec)  # a device that is not there fails before the model is loaded


def _check_out(out: str) -> None:
    from nnreport.site.output import check_out

    check_out(out)  # refuse an unwritable or foreign --out before the long computation, not after


def _check_theme(name: str) -> None:
    from nnreport.site.themes import load_theme

    load_theme(name)  # fail before the long computation, not after


def _write(insp: Any, out: str, config: Any) -> int:
    from nnreport.api import render

    if os.environ.get("RANK", "0") != "0":
        return EXIT_OK  # under torchrun every rank computes its share; rank 0 gathers and writes the site

    path = render(insp, out, theme=config.theme, single_file=config.single_file, timings=config.timings)
    entry = path / ("report.html" if config.single_file else "index.html")
    failed = insp.failed
    print(f"nnreport: wrote {entry}", file=sys.stderr)
    if insp.manifest.model.nonfinite:
        print(f"nnreport: not finite: {insp.manifest.model.nonfinite}", file=sys.stderr)
        if not failed:
            return EXIT_ANALYSES_FAILED
    if failed:
        names = ", ".join(r.name for r in failed)
        print(f"nnreport: {len(failed)} analysis(es) failed ({names}); their pages show the errors", file=sys.stderr)
        return EXIT_ANALYSES_FAILED
    return EXIT_OK


def cmd_render(args: argparse.Namespace) -> int:
    from nnreport.api import render
    from nnreport.inspection import Inspection

    _check_out(args.out)
    insp = Inspection.load(args.bundle)
    theme = args.theme or "light"
    path = render(insp, args.out, theme=theme, single_file=bool(args.single_file), timings=not args.no_timings)
    print(f"nnreport: wrote {path / ('report.html' if args.single_file else 'index.html')}", file=sys.stderr)
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from nnreport import api
    from nnreport.demo import demo_subject

    config = _config(args)
    _check_theme(config.theme)
    out = args.out or ("nnreport-playground" if args.playground else "nnreport-demo")
    _check_out(out)
    _check_device(config.device)
    subject, data, name = demo_subject(playground=args.playground, seed=config.seed, progress=_progress())
    insp = api.inspect(subject, data, config, progress=_progress(), model_spec=f"nnreport demo ({name})",
                       on_plan=_show_plan(False))
    return _write(insp, out, config)


def cmd_list(args: argparse.Namespace) -> int:
    from nnreport.analyses import ordered
    from nnreport.datasets import BUILTIN_DESCRIPTIONS
    from nnreport.site.themes import load_theme, theme_names

    print("analyses:")
    for a in ordered():
        print(f"  {a.name:<14} {a.title}")
    print("themes:")
    for t in theme_names():
        print(f"  {t:<14} {load_theme(t).description}")
    print("built-in data:")
    for n, text in sorted(BUILTIN_DESCRIPTIONS.items()):
        print(f"  {n:<14} {text}")
    return EXIT_OK


def cmd_compare(args: argparse.Namespace) -> int:
    from nnreport.api import compare
    from nnreport.compare import parse_names

    config = _config(args)
    _check_theme(config.theme)
    _check_out(args.out)
    names = parse_names(args.names)
    if args.bundles:
        from nnreport.inspection import Inspection

        sides: tuple[Any, Any] = (Inspection.load(args.a), Inspection.load(args.b))
        data = args.data
    else:
        from nnreport.loading import load_data, load_model

        data = load_data(args.data, config.seed, _data_options(args)) if args.data else None
        sides = tuple(load_model(spec, factory=args.factory, unsafe_pickle=args.unsafe_pickle, seed=config.seed)
                      for spec in (args.a, args.b))  # type: ignore[assignment]
    report = compare(sides[0], sides[1], data=data, config=config, names=names, progress=_progress(),
                     input_shape=args.input_shape)
    path = report.save(args.out, theme=config.theme, single_file=config.single_file, timings=config.timings)
    print(f"nnreport: wrote {path / ('report.html' if config.single_file else 'index.html')}", file=sys.stderr)
    failed = report.a.failed + report.b.failed
    return EXIT_ANALYSES_FAILED if failed else EXIT_OK


COMMANDS = {"build": cmd_build, "render": cmd_render, "demo": cmd_demo, "compare": cmd_compare, "list": cmd_list}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return int(exc.code or 0)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    if args.command == "list":
        import nnreport.datasets  # noqa: F401  (registers the built-in data)
    debug = getattr(args, "debug", False) or bool(os.environ.get("NNREPORT_DEBUG"))
    # Waiting OpenMP threads sleep instead of spinning: on a busy 2-core machine spinning made small
    # forward passes ~20x slower (measured in benchmarks/landscape.py). Must be set before torch loads.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if args.command in ("build", "demo", "compare"):
        from nnreport.memory import reuse_freed_memory

        reuse_freed_memory()
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("nnreport: interrupted; any existing report was left as it was", file=sys.stderr)
        return EXIT_INTERRUPTED
    except SystemExit as exc:  # user code (a model, a data callable) called sys.exit(): never a silent 0
        if debug:
            raise
        print(f"nnreport: error: the model or a callable it runs called sys.exit({exc.code!r}); "
              "nothing was written", file=sys.stderr)
        return EXIT_FAILURE
    except NNReportError as exc:
        if debug:
            raise
        message = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())  # always one line
        print(f"nnreport: error: {message}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:  # anything else is a bug or an environment problem; keep it to one line
        if debug:
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(f"nnreport: error: {type(exc).__name__}: {first} (run with --debug for the traceback)", file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""Regenerate the committed sample reports (generated files: do not edit them by hand).

    python3 sample_reports/make.py            # all of them
    python3 sample_reports/make.py digits-cnn # one

Each report is built with --no-timings so that a rebuild on any machine gives the same bytes, and gets a
GENERATED.md naming the command that made it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPORTS: dict[str, list[str]] = {
    "digits-cnn": ["demo", "--no-timings"],
    "spiral-playground": ["demo", "--playground", "--no-timings"],
    # Both landscapes of landscape-skips/ (made by its own make.py) on one colour scale.
    "landscape-skips-compare": ["compare", "--bundles", "sample_reports/landscape-skips/residual",
                                "sample_reports/landscape-skips/plain", "--names", "residual,plain", "--no-timings"],
}


def make(name: str) -> None:
    out = HERE / name
    command = ["nnreport", *REPORTS[name], "--out", f"sample_reports/{name}"]
    # A rebuild replaces only a folder holding nothing but what a build wrote: take our note out first.
    (out / "GENERATED.md").unlink(missing_ok=True)
    subprocess.run([sys.executable, "-m", "nnreport", *REPORTS[name], "--out", str(out)], check=True, cwd=HERE.parent)
    (out / "GENERATED.md").write_text(
        f"# Generated report: do not edit\n\nThis folder was written by nnreport. Regenerate it from the repository root with\n\n"
        f"    {' '.join(command)}\n\nor `python3 sample_reports/make.py {name}`. Open `index.html` in a browser.\n",
        encoding="utf-8",
    )


if __name__ == "__main__":
    for name in sys.argv[1:] or list(REPORTS):
        make(name)

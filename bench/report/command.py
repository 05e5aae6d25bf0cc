"""``python -m bench report RESULTS… [-o FILE]``: from results files to the written page.

The output is checked first, before anything is read or imported for rendering, so a path that
cannot become the report costs one line and no pandas or plotly import.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..paths import check_creatable
from .data import latest, prepare
from .format import count
from .page import Page, ReportError, Rows, header
from .sections import SECTIONS

DEFAULT_OUTPUT = "results/report.html"


def build(frame, sources: list[str] | None = None, output: str | Path = DEFAULT_OUTPUT) -> Path:
    """Render a loaded results frame (``bench.results.load``) to ``output``; returns its path."""
    try:
        import plotly  # noqa: F401
    except ImportError:
        raise ReportError("the report needs plotly (pip install plotly); the runner does not") from None
    every_row = prepare(frame)
    rows = Rows(latest=latest(every_row), every_row=every_row)
    page = Page()
    sections = [(section.id, section.title, section.render(page, rows)) for section in SECTIONS]
    output = Path(output)
    try:
        page.write(output, "classic-cnn-bench report", header(rows, [str(s) for s in sources or []]), sections)
    except OSError as error:  # checked by check_output beforehand; a full disk or a race still lands here
        raise ReportError(f"{output}: cannot write the report ({error.strerror or error})") from None
    return output


def render(paths, output: str | Path = DEFAULT_OUTPUT, predict: bool = False) -> Path:
    """Read results files (or directories of them) and write the HTML report to ``output``;
    a :class:`ReportError` if they hold no row. ``predict``: first add the kernel inspector's
    prediction to each GPU Triton kernel row without one (:func:`with_predictions`)."""
    from ..results import expand_paths, load

    if isinstance(paths, (str, Path)):
        paths = [paths]
    frame = load(paths)
    if frame.empty:
        raise ReportError(f"no results rows to report in {', '.join(what_was_read(Path(p)) for p in paths)}")
    return build(with_predictions(frame) if predict else frame, [str(p) for p in expand_paths(paths)], output)


# The inspector's architecture for a GPU's compute capability (``kernels.inspect`` compiles for these).
INSPECTED_ARCHS = {"9.0": "sm_90a", "8.0": "sm_80"}


def with_predictions(frame):
    """``frame`` with ``predicted_ms`` filled, where empty, for each Triton kernel row of a GPU the
    inspector compiles for: its model's time for the row's case with today's kernels, at the
    row's own copy bandwidth (``kernels.inspect.predict_rows``; needs torch and triton)."""
    import pandas as pd

    try:
        from kernels.inspect import predict_rows
    except ImportError as error:
        raise ReportError(f"--predict needs the kernel inspector's torch and triton ({error})") from None
    frame = frame.copy()
    if "predicted_ms" not in frame:
        frame["predicted_ms"] = None
    for index, row in frame.iterrows():
        arch = INSPECTED_ARCHS.get(str(row.get("compute_capability")))
        if arch is None or pd.notna(row.get("predicted_ms")):
            continue
        predicted = predict_rows([row.to_dict()], arch=arch)
        if predicted:
            frame.at[index, "predicted_ms"] = predicted[0]["predicted_ms"]
    return frame


def what_was_read(path: Path) -> str:
    """A path given to :func:`render` that held no row, with what it held instead."""
    if not path.is_dir():
        return str(path)
    files = list(path.rglob("*.jsonl"))
    if not files:
        return f"{path} (a directory with no .jsonl file)"
    return f"{path} ({count(len(files), '.jsonl file')}, none with a row)"


def check_output(output: str | Path) -> Path:
    """``output`` can become the report: a path ending in .html, not a directory, whose directory
    exists or can be created and is writable; a one-line :class:`ReportError` otherwise."""
    path = Path(output)
    if path.is_dir():
        raise ReportError(f"-o {path}: is a directory; expected the path of an .html file to write")
    if path.suffix.lower() != ".html":
        raise ReportError(f"-o {path}: expected a file name ending in .html")
    if path.exists() and not os.access(path, os.W_OK):
        raise ReportError(f"-o {path}: the file is not writable (permission denied)")
    try:  # the report creates the missing directories; the first existing one decides
        check_creatable(path, "-o")
    except ValueError as error:
        raise ReportError(str(error)) from None
    return path


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("results", nargs="+", metavar="RESULTS",
                        help="results files (*.jsonl) or directories of them, from any runs, GPUs and machines")
    parser.add_argument("-o", "--output", default=DEFAULT_OUTPUT,
                        help="the HTML file to write, *.html; missing directories are created (default %(default)s)")
    parser.add_argument("--predict", action="store_true",
                        help="add the kernel inspector's predicted time to each GPU Triton kernel row first "
                             "(compiles each case; needs torch and triton), for the predicted-against-measured figure")
    return parser


def main(args: argparse.Namespace) -> int:
    """``python -m bench report``: the parsed arguments of :func:`add_arguments`."""
    check_output(args.output)  # before reading or rendering anything
    out = render(args.results, args.output, predict=args.predict)
    print(f"report: {out} ({out.stat().st_size / 2**20:.1f} MiB, self-contained)")
    return 0

"""``python -m bench report RESULTS… [-o results/report.html]``: one self-contained HTML page.

The page answers "which backend wins, where, on which GPU, and can I trust it" from any number
of results files: a plotly figure per section (summary, throughput, speedup heat maps, kernel
roofline, memory, correctness, across GPUs, environment) and sortable tables.

- Self-contained: plotly.js is inlined once; the page makes no network request and opens from a
  ``file://`` URL offline. Figures are JSON in a ``<script type="application/json">`` block
  (``<``, ``>``, ``&`` escaped), drawn by a few lines of inline JavaScript (``report.js``).
- Everything taken from the results (names, hosts, messages) is HTML-escaped, in tables and in
  plot text alike, so a results file cannot inject markup or script into the page.
- A section without data (a CPU-only run, no kernel rows, one GPU) says what is missing.
- plotly is imported only while rendering: the GPU runner never imports this package's plotting.

The modules: :mod:`.data` (the numbers: flags, speedups, normalization, thresholds; pandas, no
plotly), :mod:`.format` (how values are written), :mod:`.figures` (what the figures share),
:mod:`.page` (the page and its header), :mod:`.sections` (one module per section, in page order)
and :mod:`.command` (the command line: check the output, read, build, write).
"""

from .command import DEFAULT_OUTPUT, add_arguments, build, check_output, main, render
from .page import ReportError
from .sections import SECTIONS

__all__ = ["DEFAULT_OUTPUT", "SECTIONS", "ReportError", "add_arguments", "build", "check_output", "main", "render"]

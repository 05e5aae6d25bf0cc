"""The report's sections, one module each, in the order of the page.

A section module provides ``ID`` (its anchor, also the id the tests find it by), ``TITLE`` and
``render(page, rows) -> str``: the HTML below its heading, from :class:`bench.report.page.Rows`,
with its figures added to the :class:`bench.report.page.Page`. A section without data says what
is missing rather than leaving a blank. Adding a section is one module here and one entry in
``MODULES``; the heading's number is its place in that list.
"""

from __future__ import annotations

from ..page import Section
from . import (across, correctness, environment, heatmap, memory, predicted, protocols, roofline, ruler, scaling,
               summary, throughput)

MODULES = (summary, throughput, heatmap, roofline, ruler, predicted, memory, protocols, scaling, correctness, across,
           environment)

SECTIONS = tuple(Section(module.ID, f"{number}. {module.TITLE}", module.render)
                 for number, module in enumerate(MODULES, start=1))

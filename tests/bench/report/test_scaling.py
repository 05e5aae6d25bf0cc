"""The report's data-parallel scaling section (bench/report/sections/scaling.py), on its HTML text."""

from __future__ import annotations

from bench import report
from tests.bench.report.helpers import row, write_rows
from tests.bench.report.test_page import sections_of


def scaling_section(tmp_path, rows) -> str:
    path = write_rows(tmp_path / "scaling.jsonl", rows)
    return sections_of(report.render([path], tmp_path / "scaling.html").read_text())["scaling"]


def test_the_scaling_section_plots_images_per_second_against_ranks_and_gives_each_rows_efficiency(tmp_path):
    # A step 10% longer per added rank: 2 ranks give 2 / 1.1 = 90.9% of perfect scaling, 4 give 4 / 1.3 / 4.
    rows = [row(mode="train", median=5.0 * (1 + 0.1 * (n - 1)), world_size=n if n > 1 else None) for n in (1, 2, 4)]
    rows += [row(mode="train", backend="triton", status="oom", world_size=2),
             row(mode="train", name="vgg16", world_size=2),  # no one-rank row to compare with
             row(mode="train", name="alexnet_paper")]  # one rank only: not a scaling configuration
    for r in rows:
        r["scaling_efficiency"] = None  # as in a file merged from separate runs: the report computes it
    section = scaling_section(tmp_path, rows)
    assert 'class="plot"' in section
    cells = section[section.index("<tbody>"):]
    assert ">90.9%<" in cells and ">76.9%<" in cells
    assert ">23,273<" in cells and ">11,636<" in cells  # all ranks' images/s, and per rank
    assert ">oom<" in cells and "vgg16" in cells and "alexnet_paper" not in cells


def test_the_scaling_section_says_so_where_no_row_ran_on_more_than_one_rank(tmp_path):
    section = scaling_section(tmp_path, [row(mode="train"), row(mode="train", world_size=1)])
    assert "No training row on more than one rank in the inputs" in section
    assert 'class="plot"' not in section

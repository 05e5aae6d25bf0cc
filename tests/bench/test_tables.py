"""The terminal's tables (bench/tables.py): how a value is written and how columns line up."""

from __future__ import annotations

import pytest

from bench.tables import format_cell, format_table


@pytest.mark.parametrize("value, text", [
    (None, "-"),
    (1.5, "1.5"),
    (2.0, "2"),
    (0.12345, "0.123"),
    (-0.5, "-0.5"),
    (0.0001, "0"),
    (99.9994, "99.999"),
    (150.0, "150"),
    (1234.56, "1,234.6"),
    (2017, "2017"),  # years and sizes stay plain
    (9999, "9999"),
    (10_000, "10,000"),
    (-25_557_032, "-25,557,032"),
    (True, "True"),
    ("resnet50", "resnet50"),
])
def test_a_cell_is_written_by_its_type_and_size(value, text):
    assert format_cell(value) == text


def test_text_is_left_aligned_numbers_right_aligned_and_headers_rename_columns():
    rows = [{"name": "resnet50", "params": 25_557_032, "gmacs": 4.11},
            {"name": "vgg16", "params": 138_357_544, "gmacs": 15.47}]
    assert format_table(rows, ["name", "params", "gmacs"], ["model", "params", "GMACs"]).splitlines() == [
        "model          params  GMACs",
        "--------  -----------  -----",
        "resnet50   25,557,032   4.11",
        "vgg16     138,357,544  15.47",
    ]


def test_missing_values_marks_and_formatted_numbers_keep_a_column_numeric():
    rows = [{"backend": "torch", "speedup": "1.25x"}, {"backend": "triton", "speedup": "0.9x !"},
            {"backend": "compile", "speedup": "E"}, {"backend": "cudnn"}]
    assert format_table(rows, ["backend", "speedup"]).splitlines() == [
        "backend  speedup",
        "-------  -------",
        "torch      1.25x",
        "triton    0.9x !",
        "compile        E",
        "cudnn          -",
    ]


def test_a_column_of_text_and_numbers_is_left_aligned_and_lines_end_without_spaces():
    rows = [{"shape": "64x96x55x55", "note": "ok"}, {"shape": 7, "note": ""}]
    assert format_table(rows, ["shape", "note"]).splitlines() == [
        "shape        note",
        "-----------  ----",
        "64x96x55x55  ok",
        "7",
    ]


def test_no_rows_is_the_header_and_its_rule():
    assert format_table([], ["name", "median_ms"]) == "name  median_ms\n----  ---------"

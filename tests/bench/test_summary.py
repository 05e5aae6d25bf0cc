"""The run's closing tables (bench/summary.py) on hand-made rows."""

from __future__ import annotations

from bench.summary import model_summary
from tests.bench.report.helpers import row


def lines_of(table: str) -> list[list[str]]:
    return [line.split() for line in table.splitlines()[2:-1]]


def test_data_parallel_rows_get_a_line_each_with_their_ranks_and_scaling():
    one = row(mode="train", batch=32, median=100.0, world_size=1)  # 320 images/s
    two = row(mode="train", batch=32, median=125.0, world_size=2)  # 512 images/s on 2 ranks
    # A cluster's rows arrive in any order: the two-rank row may come first, without its efficiency.
    assert two["scaling_efficiency"] is None
    table = model_summary([two, one])
    assert table.splitlines()[0].split()[:6] == ["model", "mode", "dtype", "batch", "ranks", "device"]
    assert table.splitlines()[0].split()[-1] == "scaling"
    assert [(line[4], line[6], line[-1]) for line in lines_of(table)] == [("2", "512.0", "80%"), ("1", "320.0", "-")]
    assert "images/s from device time, all ranks; batch per rank" in table


def test_without_data_parallel_rows_the_table_has_no_ranks_column():
    table = model_summary([row(mode="train")])
    assert "ranks" not in table and "scaling" not in table

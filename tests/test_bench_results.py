"""The results schema: rows written, read back and merged; bad files named by file and line."""

from __future__ import annotations

import json

import pytest

from bench import results


def row(name="resnet18", status="ok", **measurement):
    config = {"kind": "model", "name": name, "backend": "torch", "mode": "infer", "dtype": "fp32",
              "batch_size": 2, "memory_format": "nchw", "input_size": 64, "device": "cpu"}
    return results.make_row(config, {"status": status, "median_ms": 1.5, "times_ms": [1.4, 1.5, 1.6],
                                     **measurement}, {"run_id": "r1", "device_name": "cpu"})


def test_round_trip_through_a_file_and_into_one_dataframe(tmp_path):
    first, second = tmp_path / "a.jsonl", tmp_path / "b" / "c.jsonl"
    with results.ResultsWriter(first) as writer:
        writer.write(row("resnet18"))
        writer.write(row("vgg11", status="oom", message="CUDA out of memory"))
    with results.ResultsWriter(second) as writer:
        writer.write(row("alexnet"))
    assert results.read_rows(first)[1]["message"] == "CUDA out of memory"
    frame = results.load([first, tmp_path / "b"])
    assert list(frame["name"]) == ["resnet18", "vgg11", "alexnet"]
    assert list(frame.columns) == list(results.COLUMNS) + ["source"]
    assert frame.loc[0, "times_ms"] == [1.4, 1.5, 1.6]
    assert frame.loc[2, "source"] == str(second)


def test_every_row_has_every_column_and_unknown_ones_are_refused():
    assert list(row()) == list(results.COLUMNS)
    with pytest.raises(KeyError, match="not in the schema"):
        row(colour="red")
    with pytest.raises(ValueError, match="status 'fine' is not one of"):
        row(status="fine")


@pytest.mark.parametrize("line, message", [
    ("{oops", r"2: not JSON"),
    ('{"name": "x"}', r"2: not a results row \(no schema_version\)"),
    ('{"schema_version": 99, "kind": "model"}', r"2: schema_version 99, this version reads 1"),
    ('{"schema_version": 1, "kind": "model"}', r"2: row lacks name, backend, mode, status"),
])
def test_corrupt_or_foreign_lines_are_named(tmp_path, line, message):
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(row()) + "\n" + line + "\n")
    with pytest.raises(results.ResultsError, match=rf"{path}:{message}"):
        results.load(path)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(results.ResultsError, match="no such results file"):
        results.load(tmp_path / "nothing.jsonl")


def test_config_key_separates_what_differs():
    assert results.config_key(row()) == results.config_key(row())
    assert results.config_key(row()) != results.config_key(row("vgg11"))

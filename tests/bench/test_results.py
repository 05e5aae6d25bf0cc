"""The results schema: rows written, read back and merged; bad files named by file and line."""

from __future__ import annotations

import errno
import json
import os
import subprocess

import pytest

from bench import results


def row(name="resnet18", status="ok", **measurement):
    config = {"kind": "model", "name": name, "backend": "torch", "mode": "infer", "dtype": "fp32",
              "batch_size": 2, "memory_format": "nchw", "input_size": 64, "device": "cpu"}
    return results.make_row(config, {"status": status, "device_ms": 1.5, "device_times_ms": [1.4, 1.5, 1.6],
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
    assert frame.loc[0, "device_times_ms"] == [1.4, 1.5, 1.6]
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
    ('{"schema_version": 99, "kind": "model"}', r"2: schema_version 99, this version reads 1, 2"),
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


def test_derived_columns_come_from_the_row_and_its_run():
    """images/s of a model row; a kernel row's rates, and those over the run's copy bandwidth and
    (fp16/bf16 only: an fp32 row has no tensor-core rate to be held to) its bf16 matrix rate."""
    assert row()["throughput"] == pytest.approx(2 / 1.5e-3)
    environment = {"copy_bandwidth_gbps": 4000.0, "bf16_matmul_tflops": 800.0}
    for dtype, matmul_percent in (("bf16", 25.0), ("fp16", 25.0), ("fp32", None)):
        config = {"kind": "kernel", "name": "lrn", "backend": "triton", "mode": "infer", "dtype": dtype,
                  "batch_size": 64}
        kernel = results.make_row(config, {"status": "ok", "device_ms": 1.0, "bytes_moved": 10**9,
                                           "flops": 2 * 10**11}, environment)
        assert kernel["throughput"] is None
        assert kernel["achieved_gbps"] == pytest.approx(1000.0) and kernel["achieved_tflops"] == pytest.approx(200.0)
        assert kernel["percent_of_copy_bandwidth"] == pytest.approx(25.0)
        assert kernel["percent_of_matmul_rate"] == (matmul_percent and pytest.approx(matmul_percent))
    skipped = results.make_row(config, {"status": "skipped", "message": "no GPU"}, environment)
    assert all(skipped[c] is None for c in ("throughput", "achieved_gbps", "percent_of_copy_bandwidth"))


def test_config_key_separates_what_differs():
    assert results.config_key(row()) == results.config_key(row())
    assert results.config_key(row()) != results.config_key(row("vgg11"))


# -- a row cut off by a full disk or a kill ------------------------------------------------------

@pytest.fixture
def small_disk(tmp_path):
    """An 8 KiB tmpfs, where a row write runs out of space halfway (needs root and mount)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8k", "tmpfs", str(disk)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip() or mounted.returncode}); "
                    "the planted partial line stands in for the full disk")
    try:
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def cut_off_file(directory, how: str):
    """A results file whose last row was cut off halfway: by a full disk (a real tmpfs) or
    planted. Returns the file and the rows completely written before the cut."""
    path = directory / "run.jsonl"
    if how == "planted":
        written = [row("resnet18"), row("vgg11")]
        path.write_text("".join(json.dumps(r) + "\n" for r in written) + json.dumps(row("alexnet"))[:700])
        return path, written
    filler = directory / "filler"
    filler.write_bytes(b"x" * 4096)  # deleted once the disk is full, so the next run has room
    written = []
    with pytest.raises(OSError) as error:
        with results.ResultsWriter(path) as writer:
            for number in range(100):
                writer.write(row(f"model{number}"))
                written.append(row(f"model{number}"))
    assert error.value.errno == errno.ENOSPC
    assert isinstance(error.value, results.ResultsWriteError)  # bench run's one line: which file, what happened
    assert error.value.strerror == f"writing {path}: No space left on device"
    filler.unlink()
    assert not path.read_bytes().endswith(b"\n") and path.read_bytes().count(b"\n") == len(written)
    return path, written


@pytest.mark.parametrize("how", ["full disk", "planted"])
def test_a_cut_off_last_row_loses_no_complete_row_and_the_next_run_writes_clean_rows(
        request, tmp_path, caplog, how):
    directory = request.getfixturevalue("small_disk") if how == "full disk" else tmp_path
    path, written = cut_off_file(directory, how)
    cut = len(written) + 1
    assert results.read_rows(path) == written
    assert f"{path}:{cut}: skipped an incomplete last line" in caplog.text
    assert len(caplog.records) == 1 and "\n" not in caplog.records[0].getMessage()

    caplog.clear()
    with results.ResultsWriter(path) as writer:  # the next run, or --resume
        writer.write(row("densenet121"))
    assert f"{path}:{cut}: a row cut off by an interrupted write" in caplog.text
    lines = path.read_bytes().split(b"\n")
    assert json.loads(lines[cut]) == row("densenet121")  # its own line, whole

    caplog.clear()
    assert results.read_rows(path) == written + [row("densenet121")]
    assert [r["name"] for r in results.load_rows([directory])] == [r["name"] for r in written] + ["densenet121"]
    assert f"{path}:{cut}: skipped a row cut off by an interrupted write" in caplog.text


def test_a_writer_that_failed_halfway_starts_its_next_row_on_a_fresh_line(tmp_path, monkeypatch, caplog):
    path = tmp_path / "run.jsonl"
    real_write = os.write
    with results.ResultsWriter(path) as writer:
        writer.write(row("resnet18"))
        monkeypatch.setattr(results.os, "write", lambda fd, data: real_write(fd, bytes(data)[:100]) and
                            (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left on device")))
        with pytest.raises(OSError):
            writer.write(row("vgg11"))
        monkeypatch.setattr(results.os, "write", real_write)
        writer.write(row("alexnet"))
    assert [r["name"] for r in results.read_rows(path)] == ["resnet18", "alexnet"]
    assert f"{path}:2: skipped a row cut off" in caplog.text


def test_each_row_is_written_whole_in_one_call(tmp_path, monkeypatch):
    """Two writes per row would let a kill between them leave half a row on disk."""
    calls = []
    real_write = os.write
    monkeypatch.setattr(results.os, "write", lambda fd, data: calls.append(bytes(data)) or real_write(fd, data))
    with results.ResultsWriter(tmp_path / "run.jsonl") as writer:
        writer.write(row("resnet18"))
        writer.write(row("vgg11"))
    assert [json.loads(c) for c in calls] == [row("resnet18"), row("vgg11")]
    assert all(c.endswith(b"\n") and c.count(b"\n") == 1 for c in calls)


def test_a_complete_last_row_without_its_newline_is_kept(tmp_path):
    path = tmp_path / "run.jsonl"
    path.write_text(json.dumps(row("resnet18")))  # e.g. written by another tool
    assert results.read_rows(path) == [row("resnet18")]
    with results.ResultsWriter(path) as writer:
        writer.write(row("vgg11"))
    assert results.read_rows(path) == [row("resnet18"), row("vgg11")]


@pytest.mark.parametrize("middle", [
    "{oops",
    json.dumps(row("alexnet"))[:700],  # cut off, then terminated by something other than the writer
])
def test_a_malformed_line_before_other_rows_is_an_error_naming_file_and_line(tmp_path, middle):
    path = tmp_path / "run.jsonl"
    path.write_text(json.dumps(row()) + "\n" + middle + "\n" + json.dumps(row("vgg11")) + "\n")
    with pytest.raises(results.ResultsError, match=rf"^{path}:2: not JSON"):
        results.load_rows(path)


def test_bytes_that_are_not_utf8_are_an_error_naming_file_and_line(tmp_path):
    path = tmp_path / "run.jsonl"
    path.write_bytes(json.dumps(row()).encode() + b"\n" + b'{"name": "r\xe9snet"}\n')
    with pytest.raises(results.ResultsError, match=rf"^{path}:2: not UTF-8 text \(byte 0xe9 at column 12\)$"):
        results.load_rows(path)
    benchmark = tmp_path / "bench.json"
    benchmark.write_bytes(b'{"benchmarks": [], "machine_info": {"node": "h\xe9"}}')
    with pytest.raises(results.ResultsError, match=rf"^{benchmark}: not a pytest-benchmark JSON file"):
        results.load_rows(benchmark)


# -- --resume: only this device's rows of this suite --------------------------------------------

def row_on(device_name, device_uuid=None, suite="smoke", name="resnet18", device="cuda:0"):
    config = {"kind": "model", "name": name, "backend": "torch", "mode": "infer", "dtype": "fp32",
              "batch_size": 2, "memory_format": "nchw", "input_size": 64, "device": device, "suite": suite}
    return results.make_row(config, {"status": "ok"}, {"device_name": device_name, "device_uuid": device_uuid})


def test_resume_counts_a_configuration_done_only_on_this_device_and_suite():
    config = {k: v for k, v in row_on("cpu").items() if k in results.CONFIG_COLUMNS}
    here = {"device_name": "NVIDIA H100", "device_uuid": "GPU-1"}
    assert results.unfinished([config], [row_on("NVIDIA H200", "GPU-9")], [here]) == [config]
    assert results.unfinished([config], [row_on("NVIDIA H100", "GPU-2")], [here]) == [config]  # its twin
    assert results.unfinished([config], [row_on("NVIDIA H100", "GPU-1", suite="kernels")], [here]) == [config]
    assert results.unfinished([config], [row_on("NVIDIA H100", "GPU-1", device="cuda:3")], [here]) == []
    assert results.unfinished([config], [row_on("NVIDIA H100", None)], [here]) == []  # no NVML then
    twins = [here, {**here, "device_uuid": "GPU-2"}]  # --device all
    assert results.unfinished([config], [row_on("NVIDIA H100", "GPU-2")], twins) == []


def test_resume_into_a_directory_picks_only_this_device_s_file_of_this_suite(tmp_path):
    from bench.cli import output_path

    def plant(name, row, age_s):
        with results.ResultsWriter(tmp_path / name) as writer:
            writer.write(row)
        os.utime(tmp_path / name, (1.8e9 - age_s, 1.8e9 - age_s))
        return tmp_path / name

    mine = plant("smoke-cpu-20260101-000000.jsonl", row_on("cpu", device="cpu"), age_s=400)
    plant("smoke-NVIDIA-H200-20260102-000000.jsonl", row_on("NVIDIA H200", "GPU-9"), age_s=100)  # the newest
    plant("smoke-big-cpu-20260103-000000.jsonl", row_on("cpu", suite="smoke-big", device="cpu"), age_s=200)
    plant("smoke-cpu-20260104-000000.jsonl", row_on("cpu", suite="other", device="cpu"), age_s=300)  # renamed
    assert output_path(str(tmp_path), "smoke", ["cpu"], resume=True) == mine
    mine.unlink()
    fresh = output_path(str(tmp_path), "smoke", ["cpu"], resume=True)
    assert fresh.parent == tmp_path and fresh.name.startswith("smoke-cpu-") and not fresh.exists()

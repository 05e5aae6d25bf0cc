"""The report's data preparation (bench/report/data.py) and its HTML, without a browser.

Flags, speedups, normalization across GPUs, roofline references and per-run environment
warnings are checked on small hand-made rows; rendering is checked for empty and partial inputs,
escaping and self-containment on the HTML text itself. The browser tests are test_report_browser.py.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from bench import cli, report, results
from bench.report import data
from bench.summary import status_cell
from tests import REPO

SAMPLES = REPO / "results" / "samples"

GPU_ENV = {"run_id": "r1", "host": "h1", "device_name": "NVIDIA H200", "copy_bandwidth_gbps": 4000.0,
           "cpu": "some cpu", "sm_clock_max_mhz": 1980}


def row(name="resnet50", backend="torch", mode="infer", status="ok", median=10.0, iqr=0.1, samples=20,
        batch=64, kind="model", env=None, started="2025-01-01T00:00:00+0000", **measurement) -> dict:
    config = {"kind": kind, "name": name, "shape": None if kind == "model" else "64x64x56x56", "backend": backend,
              "mode": mode, "dtype": "bf16", "batch_size": batch, "memory_format": "channels_last",
              "input_size": 224 if kind == "model" else None, "device": "cuda:0"}
    values = {"status": status, "started_at": started}
    if status in ("ok", "incorrect"):
        values.update(median_ms=median, iqr_ms=iqr, samples=samples, times_ms=[median] * samples)
        if kind == "model":
            values["throughput"] = batch / (median / 1e3)
    else:
        values["message"] = f"{status} happened"
    values.update(measurement)
    return results.make_row(config, values, {**GPU_ENV, **(env or {})})


def frame(*rows) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=list(results.COLUMNS) + ["source"])


def prepared(*rows) -> pd.DataFrame:
    return data.prepare(frame(*rows))


# --- flags --------------------------------------------------------------------------------------

def test_a_clean_row_has_no_flag():
    assert data.row_flags(row()) == []


@pytest.mark.parametrize("changes, flag", [
    ({"iqr": 10.0 * data.NOISY_IQR_RATIO * 1.01}, "noisy"),
    ({"samples": data.MIN_SAMPLES - 1}, "noisy"),
    ({"throttle_reasons": ["sw_power_cap"]}, "throttled"),
    ({"sm_clock_mhz_min": 1500, "sm_clock_mhz_max": 1980}, "clocks moved"),
    ({"status": "incorrect"}, "incorrect"),
    ({"status": "oom"}, "oom"),
    ({"status": "error"}, "error"),
    ({"status": "skipped"}, "skipped"),
])
def test_each_flag(changes, flag):
    assert flag in data.row_flags(row(**changes))


def test_thresholds_are_boundaries_not_approximations():
    at_limit = row(iqr=10.0 * data.NOISY_IQR_RATIO)  # exactly the ratio: not noisy
    assert "noisy" not in data.row_flags(at_limit)
    steady = row(sm_clock_mhz_min=1980 * (1 - data.CLOCK_SPREAD_RATIO), sm_clock_mhz_max=1980)
    assert "clocks moved" not in data.row_flags(steady)
    assert data.row_flags(row(throttle_reasons=[])) == []


def test_flags_combine_in_one_order():
    assert data.combine_flags(["noisy"], ["throttled", "incorrect"], ["noisy"]) == ["incorrect", "noisy", "throttled"]


# --- preparation --------------------------------------------------------------------------------

def test_prepare_keeps_the_latest_row_of_a_configuration_per_platform():
    old = row(median=20.0, started="2025-01-01T00:00:00+0000")
    new = row(median=10.0, started="2025-01-02T00:00:00+0000")
    other_gpu = row(median=30.0, env={"device_name": "NVIDIA A100-SXM4-80GB"})
    cpu = row(median=900.0, env={"device_name": "cpu", "cpu": "Xeon"})
    assert len(prepared(new, old, other_gpu, cpu)) == 4
    f = data.latest(prepared(new, old, other_gpu, cpu))
    assert len(f) == 3
    assert sorted(f["platform"]) == ["CPU Xeon", "NVIDIA A100-SXM4-80GB", "NVIDIA H200"]
    assert f[f["platform"] == "NVIDIA H200"]["median_ms"].item() == 10.0
    assert isinstance(f["batch_size"][0], int) and isinstance(f["samples"][0], int)


def test_prepare_takes_quartiles_as_the_timing_does():
    r = row(times_ms=[1.0, 2.0, 3.0, 4.0, 100.0], median=3.0)
    f = prepared(r)
    assert (f["q1_ms"][0], f["q3_ms"][0]) == (2.0, 4.0)
    assert data.quartiles([5.0]) == (5.0, 5.0) and data.quartiles(None) == (None, None)


def test_prepare_of_no_rows_is_an_empty_frame_with_the_report_columns():
    f = data.latest(data.prepare(results.load([])))
    assert f.empty and {"platform", "flags", "q1_ms"} <= set(f.columns)
    assert data.model_summary(f) == [] and data.speedups(f) == [] and data.correctness(f) == []
    assert data.across_platforms(f) == ([], None) and data.roofline(f) == ([], {}) and data.environment(f) == []


# --- speedups -----------------------------------------------------------------------------------

def test_speedup_is_torch_time_over_backend_time_and_flags_follow_both_rows():
    f = prepared(row(median=10.0, iqr=2.0), row(backend="triton", median=8.0),
                 row(backend="compile", median=5.0, status="incorrect"))
    by = {p["backend"]: p for p in data.speedups(f)}
    assert by["triton"]["speedup"] == pytest.approx(1.25)
    assert by["triton"]["flags"] == ["noisy"]  # torch's noise makes the ratio noisy too
    assert by["compile"]["speedup"] == pytest.approx(2.0)
    assert by["compile"]["flags"] == ["incorrect", "noisy"]


def test_no_speedup_where_either_side_did_not_measure():
    f = prepared(row(status="error"), row(backend="triton", median=8.0),
                 row(name="vgg16", median=10.0), row(name="vgg16", backend="compile", status="oom"))
    by = {(p["name"], p["backend"]): p for p in data.speedups(f)}
    assert by[("resnet50", "triton")]["speedup"] is None and "error" in by[("resnet50", "triton")]["flags"]
    assert by[("vgg16", "compile")]["speedup"] is None and by[("vgg16", "compile")]["flags"] == ["oom"]


def test_model_summary_matches_the_terminal_summary():
    rows = [row(median=10.0), row(backend="triton", median=8.0, status="incorrect"),
            row(backend="compile", status="skipped")]
    (line,) = data.model_summary(prepared(*rows))
    assert line["triton_speedup"] == pytest.approx(1.25) and line["compile_speedup"] is None
    for backend, r in zip(("torch", "triton", "compile"), rows):
        assert line[f"{backend}_cell"] == status_cell(r)
    assert line["flags"] == ["incorrect", "skipped"]
    assert line["messages"] == ["compile: skipped happened"]


def test_speedups_compare_kernels_per_shape():
    f = prepared(row(kind="kernel", name="bn_relu", mode="train-backward", median=2.0),
                 row(kind="kernel", name="bn_relu", mode="train-backward", backend="triton", median=1.0),
                 row(kind="kernel", name="bn_relu", mode="infer", backend="triton", median=1.0))
    pairs = {p["mode"]: p for p in data.speedups(f)}
    assert pairs["train-backward"]["speedup"] == pytest.approx(2.0)
    assert pairs["infer"]["speedup"] is None  # no torch row of that mode


# --- across platforms ---------------------------------------------------------------------------

def test_normalization_to_the_platform_with_the_most_rows():
    a100 = {"device_name": "NVIDIA A100-SXM4-80GB"}
    f = prepared(row(median=10.0), row(median=20.0, env=a100),
                 row(name="vgg16", median=10.0), row(name="vgg16", median=40.0, env=a100),
                 row(name="alexnet", median=1.0),  # only on the H200: not compared
                 row(name="densenet121", median=1.0), row(name="densenet121", status="error", env=a100))
    entries, reference = data.across_platforms(f)
    assert reference == "NVIDIA A100-SXM4-80GB"  # two shared rows each: the first by name
    by = {(e["name"], e["platform"]): e for e in entries}
    assert set(by) == {("resnet50", "NVIDIA H200"), ("resnet50", "NVIDIA A100-SXM4-80GB"),
                       ("vgg16", "NVIDIA H200"), ("vgg16", "NVIDIA A100-SXM4-80GB")}
    assert by[("resnet50", "NVIDIA H200")]["relative"] == pytest.approx(2.0)
    assert by[("vgg16", "NVIDIA H200")]["relative"] == pytest.approx(4.0)
    assert by[("vgg16", "NVIDIA A100-SXM4-80GB")]["relative"] == pytest.approx(1.0)
    assert by[("vgg16", "NVIDIA H200")]["unit"] == "images/s"
    entries, reference = data.across_platforms(f, reference="NVIDIA H200")
    relative = {(e["name"], e["platform"]): e["relative"] for e in entries}
    assert relative[("resnet50", "NVIDIA A100-SXM4-80GB")] == pytest.approx(0.5)
    assert relative[("vgg16", "NVIDIA A100-SXM4-80GB")] == pytest.approx(0.25)


def test_one_platform_has_nothing_to_compare():
    assert data.across_platforms(prepared(row(), row(backend="triton"))) == ([], None)


def test_kernels_compare_by_bandwidth():
    f = prepared(row(kind="kernel", name="lrn", bytes_moved=10**10),  # 1000 GB/s in 10 ms
                 row(kind="kernel", name="lrn", bytes_moved=3 * 10**10, env={"device_name": "NVIDIA H100 PCIe"}))
    entries, reference = data.across_platforms(f)
    assert reference == "NVIDIA H100 PCIe"  # one shared row each: the first by name
    assert {e["platform"]: e["relative"] for e in entries} == {"NVIDIA H100 PCIe": 1.0,
                                                               "NVIDIA H200": pytest.approx(1 / 3)}
    assert {e["unit"] for e in entries} == {"GB/s"}


# --- roofline -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name, gbps", [
    ("NVIDIA H200", 4800), ("NVIDIA H100 80GB HBM3", 3350), ("NVIDIA H100 PCIe", 2000),
    ("NVIDIA A100-SXM4-80GB", 2039), ("NVIDIA A100-SXM4-40GB", 1555), ("NVIDIA A100 80GB PCIe", 1935),
    ("NVIDIA A100-PCIE-40GB", 1555), ("NVIDIA L40S", 864), ("NVIDIA L4", 300), ("Tesla T4", 320),
    ("cpu", None), ("Some Future GPU", None), (None, None),
])
def test_device_peaks(name, gbps):
    assert data.device_peak(name)[0] == gbps


def test_roofline_references_per_platform():
    kernel = dict(kind="kernel", name="conv2d", bytes_moved=10**9, flops=5 * 10**10)  # 100 GB/s, 5 TFLOP/s
    f = prepared(row(**kernel), row(backend="triton", **kernel, env={"run_id": "r2", "copy_bandwidth_gbps": 4200.0}),
                 row(backend="compile", **{**kernel, "bytes_moved": None}),
                 row(backend="torch", mode="train", status="error", kind="kernel", name="conv2d"),
                 row(env={"device_name": "cpu", "copy_bandwidth_gbps": 6.0}, **kernel))
    rows, references = data.roofline(f)
    assert len(rows) == 3  # the failed row and the one without GB/s are not points
    assert references["NVIDIA H200"] == {"copy_gbps": 4100.0, "peak_gbps": 4800.0,
                                         "peak_tflops": {"fp32": 67, "tf32": 494, "bf16": 989, "fp16": 989}}
    assert references["CPU some cpu"] == {"copy_gbps": 6.0, "peak_gbps": None, "peak_tflops": {}}


# --- correctness and environment ---------------------------------------------------------------

def test_correctness_rows_are_those_checked_against_the_reference():
    f = prepared(row(), row(backend="triton", rel_error=1e-2, tolerance=0.1),
                 row(mode="train", grad_rel_error=3e-3), row(backend="compile", status="error"))
    checked = data.correctness(f)
    assert [(r["backend"], r["mode"], r["fast"]) for r in checked] == [("triton", "infer", True),
                                                                        ("torch", "train", False)]


def test_errors_are_held_to_their_own_tolerance():
    shared = row(backend="triton", mode="train", rel_error=0.01, grad_rel_error=0.05, tolerance=0.1)
    assert data.tolerance_of(shared, "grad_rel_error") == 0.1  # no gradient bound: the output's, as the worker
    assert data.error_ratio(shared) == pytest.approx(0.5)
    own = {**shared, "grad_tolerance": 0.02}
    assert data.tolerance_of(own, "grad_rel_error") == 0.02 and data.error_ratio(own) == pytest.approx(2.5)
    assert data.tolerance_of(row(rel_error=0.01)) is None and data.error_ratio(row(rel_error=0.01)) is None


def test_environment_warns_where_the_gpu_throttled_or_clocks_moved():
    hot = {"run_id": "hot"}
    f = prepared(row(sm_clock_mhz_min=1970, sm_clock_mhz_max=1980, throttle_reasons=[]),
                 row(env=hot, throttle_reasons=["sw_power_cap"], sm_clock_mhz_min=1400, sm_clock_mhz_max=1980),
                 row(env=hot, name="vgg16", throttle_reasons=["sw_power_cap", "hw_slowdown"],
                     sm_clock_mhz_min=1900, sm_clock_mhz_max=1980),
                 row(env={"run_id": "synthetic-x"}))
    runs = {r["run_id"]: r for r in data.environment(f)}
    assert runs["r1"]["warnings"] == [] and not runs["r1"]["synthetic"]
    assert runs["hot"]["throttle_reasons"] == ["hw_slowdown", "sw_power_cap"]
    assert runs["hot"]["warnings"][0] == "GPU throttled: hw_slowdown (1 rows), sw_power_cap (2 rows)"
    assert "1400-1980 MHz" in runs["hot"]["warnings"][1] and "(1 rows moved" in runs["hot"]["warnings"][1]
    assert runs["synthetic-x"]["synthetic"]


# --- rendering without a browser ----------------------------------------------------------------

def sections_of(text: str) -> dict[str, str]:
    parts = {}
    for sid, _, _ in report.SECTIONS:
        start = text.index(f'<section id="{sid}"')
        parts[sid] = text[start:text.index("</section>", start)]
    return parts


def test_a_frame_of_no_rows_renders_every_section_saying_what_is_missing(tmp_path):
    out = report.build(results.load([]), [], tmp_path / "empty.html")
    for sid, section in sections_of(out.read_text()).items():
        assert 'class="missing"' in section, sid
        assert 'class="plot"' not in section, sid


def test_cpu_only_input_says_there_is_nothing_to_compare(tmp_path):
    out = report.render([SAMPLES / "cpu-smoke.jsonl"], tmp_path / "cpu.html")
    sections = sections_of(out.read_text())
    assert "only one platform in the inputs" in sections["across"]
    assert "No kernel rows in the inputs" in sections["roofline"]
    assert "No SM clock samples" in sections["environment"]
    assert 'class="plot"' in sections["summary"] and 'class="plot"' in sections["throughput"]


def test_results_text_is_escaped_everywhere(tmp_path):
    attack = '<img src=x onerror=alert(1)></script><script>alert(2)</script>'
    rows = [row(name="resnet50" + attack, env={"host": attack, "run_id": attack}),
            row(name="resnet50" + attack, backend="triton", status="error", message=attack, env={"host": attack}),
            row(kind="kernel", name="lrn" + attack, bytes_moved=10**8, env={"device_name": "GPU" + attack})]
    path = tmp_path / "hostile.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    text = report.render([path], tmp_path / "hostile.html").read_text()
    assert "<img src=x" not in text and "<script>alert" not in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text  # shown as text in the tables
    figures = text[text.index('<script type="application/json" id="figures">'):]
    figures = figures[:figures.index("</script>")]
    assert "<" not in figures.split(">", 1)[1]  # the figures' JSON carries no raw angle bracket


def test_page_is_self_contained(tmp_path):
    out = report.render([SAMPLES / "synthetic-2gpu.jsonl"], tmp_path / "r.html")
    text = out.read_text()
    assert text.count("<script") == 3  # plotly.js, the figures' JSON, the page's own script
    assert "<script src" not in text and "<link" not in text and "@import" not in text
    assert text.count("plotly.js v") == 1  # inlined once
    for section in sections_of(text).values():
        assert 'class="plot"' in section


def test_the_runner_never_imports_plotly():
    code = ("import sys, bench.cli, bench.runner, bench.worker, bench.report, bench.report.data; "
            "sys.exit('plotly' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO).returncode == 0


def test_committed_synthetic_sample_is_marked_synthetic():
    rows = results.read_rows(SAMPLES / "synthetic-2gpu.jsonl")
    assert rows and all(r["host"] == "synthetic" and r["run_id"].startswith("synthetic-") for r in rows)
    assert {r["device_name"] for r in rows} == {"NVIDIA H200", "NVIDIA A100-SXM4-80GB"}
    statuses = {r["status"] for r in rows}
    assert statuses == {"ok", "incorrect", "oom", "error", "skipped"}
    assert any(r["throttle_reasons"] for r in rows) and any(r["kind"] == "kernel" for r in rows)


# --- the command line: one line and exit 2 for an output it cannot write or no rows to show -------

def write_rows(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def report_cli(capsys, *args) -> tuple[int, str]:
    code = cli.main(["report", *map(str, args)])
    return code, capsys.readouterr().err


def test_rows_with_null_key_fields_render_as_missing(tmp_path):
    rows = [row(batch=b, backend=backend, peak_memory_bytes=2**30)
            for b in (64, 128) for backend in ("torch", "triton")]
    rows += [row(kind="kernel", name="lrn", backend=backend, bytes_moved=10**8) for backend in ("torch", "triton")]
    nulls = [dict(r, batch_size=None) for r in rows] + [dict(rows[0], name=None), dict(rows[1], dtype=None)]
    out = report.render([write_rows(tmp_path / "nulls.jsonl", rows + nulls)], tmp_path / "nulls.html")
    text = out.read_text()
    assert "batch ?" in text and "batch None" not in text and "bNone" not in text


@pytest.mark.parametrize("output, message", [
    ("{tmp}", r"-o {tmp}: is a directory; expected the path of an \.html file to write$"),
    ("{tmp}/report.txt", r"-o {tmp}/report\.txt: expected a file name ending in \.html$"),
    ("{tmp}/report", r"-o {tmp}/report: expected a file name ending in \.html$"),
    ("{tmp}/a-file/report.html", r"-o {tmp}/a-file/report\.html: {tmp}/a-file is not a directory$"),
])
def test_an_output_that_cannot_be_the_report_is_refused_before_rendering(tmp_path, capsys, output, message):
    (tmp_path / "a-file").write_text("")
    rows = write_rows(tmp_path / "rows.jsonl", [row()])
    code, err = report_cli(capsys, rows, "-o", output.format(tmp=tmp_path))
    assert code == 2 and err.count("\n") == 1, err
    assert re.fullmatch("error: " + message.format(tmp=re.escape(str(tmp_path))) + "\n", err), err
    assert not list(tmp_path.glob("*.htm*")) and not list(tmp_path.glob("*.txt"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only directory")
def test_an_output_in_a_read_only_directory_is_refused(tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    code, err = report_cli(capsys, write_rows(tmp_path / "rows.jsonl", [row()]), "-o", locked / "r.html")
    assert code == 2 and err == f"error: -o {locked / 'r.html'}: cannot write in {locked} (Permission denied)\n"


def test_a_bad_output_is_refused_without_importing_pandas_or_plotly(tmp_path):
    code = ("import sys, bench.cli\n"
            f"code = bench.cli.main(['report', {str(SAMPLES)!r}, '-o', {str(tmp_path)!r}])\n"
            "print(code, 'pandas' in sys.modules, 'plotly' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert done.stdout.splitlines()[-1] == "2 False False", done.stdout + done.stderr


def test_a_write_that_fails_anyway_is_one_line(tmp_path, capsys, monkeypatch):
    def full_disk(self, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_text", full_disk)
    code, err = report_cli(capsys, SAMPLES / "cpu-smoke.jsonl", "-o", tmp_path / "r.html")
    assert (code, err) == (2, f"error: {tmp_path / 'r.html'}: cannot write the report (No space left on device)\n")


def no_rows(directory: Path, setup: str) -> Path:
    """A directory (or file) to report on that holds no results row."""
    if setup == "a directory with another file":
        (directory / "notes.txt").write_text("x")
    if setup in ("a directory of empty files", "an empty file"):
        (directory / "a.jsonl").write_text("")
        (directory / "b.jsonl").write_text("\n")
    return directory / "a.jsonl" if setup == "an empty file" else directory


@pytest.mark.parametrize("setup, what", [
    ("an empty directory", "{d} (a directory with no .jsonl file)"),
    ("a directory with another file", "{d} (a directory with no .jsonl file)"),
    ("a directory of empty files", "{d} (2 .jsonl files, none with a row)"),
    ("an empty file", "{d}/a.jsonl"),
])
def test_no_rows_to_report_exits_2_naming_what_was_read(tmp_path, capsys, setup, what):
    inputs = tmp_path / "in"
    inputs.mkdir()
    code, err = report_cli(capsys, no_rows(inputs, setup), "-o", tmp_path / "r.html")
    assert (code, err) == (2, f"error: no results rows to report in {what.format(d=inputs)}\n")
    assert not (tmp_path / "r.html").exists()

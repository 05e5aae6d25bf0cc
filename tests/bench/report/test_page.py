"""The report's HTML without a browser (bench/report/page.py and its sections): every section for
empty and partial inputs, escaping and self-containment, checked on the HTML text itself. The
browser tests are test_browser.py."""

from __future__ import annotations

import subprocess
import sys

from bench import report, results
from tests import REPO
from tests.bench.report.helpers import SAMPLES, row, write_rows


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
    text = report.render([write_rows(tmp_path / "hostile.jsonl", rows)], tmp_path / "hostile.html").read_text()
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


def test_rows_with_null_key_fields_render_as_missing(tmp_path):
    rows = [row(batch=b, backend=backend, peak_memory_bytes=2**30)
            for b in (64, 128) for backend in ("torch", "triton")]
    rows += [row(kind="kernel", name="lrn", backend=backend, bytes_moved=10**8) for backend in ("torch", "triton")]
    nulls = [dict(r, batch_size=None) for r in rows] + [dict(rows[0], name=None), dict(rows[1], dtype=None)]
    out = report.render([write_rows(tmp_path / "nulls.jsonl", rows + nulls)], tmp_path / "nulls.html")
    text = out.read_text()
    assert "batch ?" in text and "batch None" not in text and "bNone" not in text


def test_the_ruler_section_plots_device_against_host_and_counts_the_cross_checked_rows(tmp_path):
    rows = [row(kind="kernel", name="conv2d", backend="triton", median=0.082, timing_method="graph", host_ms=0.2,
                do_bench_ms=0.080, do_bench_cudagraph_ms=0.081),
            row(kind="kernel", name="conv2d", backend="torch", median=0.235, timing_method="graph", host_ms=0.24,
                do_bench_ms=0.082),
            row(kind="kernel", name="lrn", backend="triton", median=1.0, timing_method="cupti", host_ms=1.0)]
    text = report.render([write_rows(tmp_path / "ruler.jsonl", rows)], tmp_path / "r.html").read_text()
    section = sections_of(text)["ruler"]
    assert 'class="plot"' in section
    assert "1 of 2 cross-checked rows within 5% of do_bench" in section
    assert "host bound" in sections_of(text)["roofline"]  # the first row's flag, in the kernel table


def test_the_ruler_section_says_what_is_missing_on_a_cpu(tmp_path):
    sections = sections_of(report.render([SAMPLES / "cpu-kernels.jsonl"], tmp_path / "cpu.html").read_text())
    assert "No GPU kernel row with both a device and a host time" in sections["ruler"]


def test_the_predicted_section_plots_rows_with_a_prediction_and_gives_the_models_mean_and_worst(tmp_path):
    rows = [row(kind="kernel", name="bn_relu", backend="triton", median=0.2, predicted_ms=0.1),
            row(kind="kernel", name="lrn", backend="triton", median=0.1, predicted_ms=0.1),
            row(kind="kernel", name="lrn", backend="torch", median=0.3)]
    text = report.render([write_rows(tmp_path / "p.jsonl", rows)], tmp_path / "p.html").read_text()
    section = sections_of(text)["predicted"]
    assert 'class="plot"' in section
    assert "2 rows: geometric mean of measured / predicted 1.41, worst 2.00; 2 within 2.5x." in section
    empty = report.render([write_rows(tmp_path / "n.jsonl", rows[2:])], tmp_path / "n.html").read_text()
    assert "No kernel row with both a measured device time and a prediction" in sections_of(empty)["predicted"]

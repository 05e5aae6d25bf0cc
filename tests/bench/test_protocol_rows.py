"""Rows under the papers' test protocols through ``bench run`` on the CPU, as a user runs them, and
the report's table of what each protocol costs beside the papers' errors."""

from __future__ import annotations

from bench import report, results
from tests.bench.helpers import run_bench
from tests.bench.report.helpers import row, write_rows


def test_a_10_crop_row_evaluates_ten_views_per_image_and_dense_skips_what_it_cannot_run(tmp_path):
    out = tmp_path / "protocols.jsonl"
    result = run_bench("run", "--models", "resnet18,alexnet", "--backends", "torch", "--modes", "infer",
                       "--dtypes", "fp32", "--batch-sizes", "2", "--input-size", "64", "--protocols", "single,10crop,dense",
                       "--repeats", "3", "--device", "cpu", "--out", out)
    assert result.returncode == 0, result.stderr
    rows = {(r["name"], r["protocol"]): r for r in results.read_rows(out)}
    ten = rows["resnet18", "10crop"]
    assert ten["status"] == "ok" and ten["views_per_image"] == 10 and ten["throughput"] > 0
    assert rows["resnet18", "single"]["views_per_image"] == 1 and rows["resnet18", "dense"]["views_per_image"] == 6
    skipped = rows["alexnet", "dense"]
    assert skipped["status"] == "skipped"
    assert "dense evaluation at input size 64: its smallest view (73x98) does not fit the network" in skipped["message"]
    assert "protocol" in result.stdout  # the summary table has the protocol column


def test_a_protocol_on_training_rows_is_refused_in_one_line(tmp_path):
    result = run_bench("run", "--models", "resnet18", "--modes", "train", "--protocols", "10crop", "--device", "cpu",
                       "--out", tmp_path / "r.jsonl")
    assert result.returncode == 2
    assert result.stderr.strip() == ("error: protocols: protocol '10crop' is a test protocol: it runs with mode "
                                     "infer only, not 'train'")


def test_the_report_sets_each_protocols_cost_beside_the_papers_error(tmp_path):
    base = dict(kind="model", mode="infer", backend="torch", batch=64)
    rows = [row(name="googlenet_paper", median=10.0, protocol="single", views_per_image=1, **base),
            row(name="googlenet_paper", median=1200.0, protocol="144crop", views_per_image=144, **base)]
    text = report.render([write_rows(tmp_path / "p.jsonl", rows)], tmp_path / "p.html").read_text()
    section = text[text.index('<section id="protocols"'):]
    section = section[:section.index("</section>")]
    assert 'class="plot"' in section
    assert ">120x<" in section  # 1200 ms against 10 ms for the same 64 images
    assert "- / 7.89" in section  # GoogLeNet's Table 3: 1 model, 144 crops, top-5 7.89%

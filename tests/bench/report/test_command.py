"""The report's command line (bench/report/command.py): one line and exit 2 for an output it
cannot write or no rows to show."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench import cli
from tests import REPO
from tests.bench.report.helpers import SAMPLES, row, write_rows


def report_cli(capsys, *args) -> tuple[int, str]:
    code = cli.main(["report", *map(str, args)])
    return code, capsys.readouterr().err


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


def test_predict_adds_the_inspectors_time_to_gpu_triton_kernel_rows_only(tmp_path):
    """``report --predict`` compiles the row's case for the GPU's architecture (here sm_90a for an
    H200 row) and fills predicted_ms; a torch row, and a row of a GPU the inspector does not
    compile for, keep none."""
    import pandas as pd

    from bench.report.command import with_predictions

    case = dict(kind="kernel", name="bn_relu", shape="64x64x112x112 relu", mode="infer", dtype="bf16",
                memory_format="channels_last", batch_size=64, device_ms=0.2, status="ok", copy_bandwidth_gbps=4254.0)
    frame = pd.DataFrame([case | {"backend": "triton", "compute_capability": "9.0"},
                          case | {"backend": "torch", "compute_capability": "9.0"},
                          case | {"backend": "triton", "compute_capability": "7.5"}])
    predicted = with_predictions(frame)["predicted_ms"].tolist()
    memory_floor_ms = 2 * 64 * 64 * 112 * 112 * 2 / 4254e9 * 1e3  # read x, write y, bf16, at the row's bandwidth
    assert memory_floor_ms <= predicted[0] < 10 * memory_floor_ms
    assert predicted[1:] == [None, None]

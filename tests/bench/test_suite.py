"""Suites are data: loading, overrides, expansion, and every bad name."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from bench import cli, suite as suites
from bench.ops.conv2d import depthwise_cases
from tests import REPO


def test_every_suite_loads_and_expands():
    assert {"smoke", "default", "full", "kernels", "device-check"} <= set(suites.list_suites())
    for name in ("smoke", "default", "full"):
        configs = suites.expand(suites.load_suite(name))
        assert configs and all(c["kind"] == "model" for c in configs)


def test_full_covers_every_model_backend_dtype_mode_and_batch():
    import models

    configs = suites.expand(suites.load_suite("full"))
    assert {c["name"] for c in configs} == set(models.list_models())
    assert {c["backend"] for c in configs} == {"torch", "triton", "compile"}
    assert {c["dtype"] for c in configs} == {"bf16", "fp32"}
    assert {c["mode"] for c in configs} == {"infer", "train"}
    assert {c["batch_size"] for c in configs} == {64, 256}
    assert {c["memory_format"] for c in configs} == {"channels_last"}
    assert len(configs) == len(models.list_models()) * 3 * 2 * 2 * 2


def test_default_has_every_family_on_every_backend_and_the_hot_path_models_in_training_and_fp32():
    import models

    def family(name: str) -> str:
        return models.get_entry(name).paper.family

    configs = suites.expand(suites.load_suite("default"))
    inference = [c for c in configs if (c["mode"], c["dtype"]) == ("infer", "bf16")]
    names = sorted({c["name"] for c in inference})
    families = {family(name) for name in names}
    assert len(names) == len(families) == len({family(name) for name in models.list_models()})
    assert {(c["name"], c["backend"]) for c in inference} == {(n, b) for n in names for b in ("torch", "triton", "compile")}
    hot_path = {"alexnet_paper", "se_resnext50_32x4d", "densenet121", "resnext50_32x4d"}
    assert {c["name"] for c in configs if c["mode"] == "train"} == hot_path <= set(names)
    assert {c["dtype"] for c in configs} == {"bf16", "fp32"}
    assert {c["batch_size"] for c in configs} == {64}


def test_overrides_replace_the_lists_in_every_matrix_without_duplicates():
    configs = suites.expand(suites.load_suite("smoke"),
                            suites.Overrides(models=["resnet18"], backends=["torch"], dtypes=["bf16", "fp32"],
                                             batch_sizes=[1], input_size=32))
    keys = [(c["name"], c["backend"], c["mode"], c["dtype"], c["batch_size"], c["input_size"]) for c in configs]
    assert sorted(keys) == sorted([("resnet18", "torch", m, d, 1, 32) for m in ("infer", "train")
                                   for d in ("bf16", "fp32")])


def test_models_take_their_native_size_unless_the_suite_sets_one():
    configs = suites.expand(suites.load_suite("default"), suites.Overrides(models=["inception_v3", "alexnet_paper"]))
    assert {(c["name"], c["input_size"]) for c in configs} == {("inception_v3", 299), ("alexnet_paper", 227)}


@pytest.mark.parametrize("overrides, message", [
    (suites.Overrides(models=["resnet5"]), r"unknown model 'resnet5'; did you mean resnet50"),
    (suites.Overrides(backends=["cudnn"]), r"unknown backend 'cudnn'; choose from torch, triton, compile"),
    (suites.Overrides(dtypes=["fp8"]), r"unknown dtype 'fp8'; choose from fp32, tf32, fp16, bf16"),
    (suites.Overrides(modes=["eval"]), r"unknown mode 'eval'; choose from infer, train"),
    (suites.Overrides(memory_formats=["nhwc"]), r"unknown memory format 'nhwc'; choose from nchw, channels_last"),
    (suites.Overrides(batch_sizes=[0]), r"batch size must be a positive integer, got 0"),
])
def test_bad_overrides_name_the_valid_choices(overrides, message):
    with pytest.raises(ValueError, match=message):
        suites.expand(suites.load_suite("smoke"), overrides)


def test_unknown_suite_lists_the_suites():
    with pytest.raises(suites.SuiteError, match=r"unknown suite 'fast'; choose from default, device-check, families, full, kernels"):
        suites.load_suite("fast")


def test_unknown_op_lists_the_ops():
    with pytest.raises(suites.SuiteError, match=r"unknown op 'gelu'; choose from bn_relu, conv2d, lrn, squeeze_excite"):
        suites.expand(suites.load_suite("kernels"), suites.Overrides(ops=["gelu"]))


def test_the_kernels_suites_conv2d_matrix_adds_the_depthwise_cases_at_both_batch_sizes():
    (matrix,) = [m for m in suites.load_suite("kernels")["matrix"] if m["ops"] == ["conv2d"]]
    assert matrix["batch_sizes"] == [64, 256]
    for batch in (64, 256):
        cases = suites.matrix_cases(matrix, batch)
        depthwise = [c for c in cases if c["groups"] == c["x"][1]]
        assert [c["shape"] for c in depthwise] == [c["shape"] for c in depthwise_cases(["resnet50"], batch)]
        assert len(cases) - len(depthwise) == 17  # every grouped convolution of the four models
        assert len({c["shape"] for c in cases}) == len(cases)


def test_the_device_check_has_a_small_depthwise_slice():
    configs = suites.expand(suites.load_suite("device-check"), suites.Overrides(ops=["conv2d"]))
    depthwise = {c["shape"] for c in configs if c["case"]["groups"] == c["case"]["x"][1]}
    assert depthwise == {f"64x{c}x56x56 k=3x3 s={s} p=1 d=1 g={c} -> {c}" for c, s in ((64, 1), (128, 2))}


def kernel_suite(**matrix):
    return {"name": "mine", "matrix": [{"kind": "kernel", "backends": ["torch"], "modes": ["infer"],
                                        "dtypes": ["fp32"], "batch_sizes": [1], **matrix}]}


def test_a_shapes_override_that_matches_nothing_says_so():
    with pytest.raises(suites.SuiteError, match=r"^--shapes \*x9x9 \*: matches none of the kernel cases of suite "
                                                r"mine \(ops conv2d\); a shape reads like '64x256x56x56 "):
        suites.expand(kernel_suite(ops=["conv2d"], depthwise_from=["resnet50"]),
                      suites.Overrides(ops=["conv2d"], shapes=["*x9x9 *"]))


def test_depthwise_from_alone_and_a_shape_filter():
    configs = suites.expand(kernel_suite(ops=["conv2d"], depthwise_from=["resnet50"], shapes=["*x512x7x7 *"]))
    assert [c["shape"] for c in configs] == ["1x512x7x7 k=3x3 s=1 p=1 d=1 g=512 -> 512",
                                             "1x512x7x7 k=5x5 s=1 p=2 d=1 g=512 -> 512"]
    both = suites.expand(kernel_suite(ops=["conv2d"], shapes_from=["alexnet_paper"], depthwise_from=["resnet50"]))
    assert len(both) == 3 + 14
    other_op = suites.expand(kernel_suite(ops=["conv2d"], shapes_from=["alexnet_paper"], depthwise_from=["resnet50"]),
                             suites.Overrides(ops=["lrn"]))
    assert {c["name"] for c in other_op} == {"lrn"}  # depthwise cases are conv2d's only


@pytest.mark.parametrize("matrix, message", [
    (dict(ops=["conv2d"], depthwise_from=["resnet5"]),
     r"^suite mine: matrix 1: depthwise_from: unknown model 'resnet5'; did you mean resnet50"),
    (dict(ops=["conv2d"], depthwise_from="resnet50"),
     r"^suite mine: matrix 1: depthwise_from: expected a list of model names or \"all\", got 'resnet50'$"),
    (dict(ops=["lrn"], shapes_from=["alexnet_paper"], depthwise_from=["resnet50"]),
     r"^suite mine: matrix 1: depthwise_from: only op conv2d has depthwise cases; the matrix's ops are \['lrn'\]$"),
    (dict(ops=["conv2d"], depthwise_form=["resnet50"]),
     r"^suite mine: matrix 1: unknown key 'depthwise_form' in a kernel matrix; choose from kind, ops, shapes_from, "
     r"depthwise_from, shapes, "),
    (dict(ops=["conv2d"]), r"^suite mine: matrix 1: a kernel matrix needs shapes_from or depthwise_from"),
    (dict(ops=["gelu"], shapes_from=["alexnet_paper"]),
     r"^suite mine: matrix 1: ops: unknown op 'gelu'; choose from bn_relu, conv2d, lrn, squeeze_excite$"),
    (dict(ops=["conv2d"], depthwise_from=["resnet50"], shapes=["*x9x9 *"]),
     r"^suite mine: matrix 1: shapes \['\*x9x9 \*'\] match none of the conv2d cases of its matrix at batch 1$"),
])
def test_bad_kernel_matrices_say_what_is_accepted_in_one_line(matrix, message):
    with pytest.raises(suites.SuiteError, match=message) as error:
        suites.expand(kernel_suite(**matrix))
    assert "\n" not in str(error.value)


# --- the suite file's schema: checked at load, one line naming file, matrix and key -------------

GOOD_MODEL_MATRIX = """
[[matrix]]
models = ["resnet18"]
backends = ["torch"]
modes = ["infer"]
dtypes = ["fp32"]
batch_sizes = [1]
"""


def write_suite(directory, text: str, name: str = "bad"):
    path = directory / f"{name}.toml"
    path.write_text(text)
    return path


def model_matrix(**changes) -> str:
    """The good matrix as TOML with keys replaced (a value of None drops the key)."""
    keys = {"models": '["resnet18"]', "backends": '["torch"]', "modes": '["infer"]', "dtypes": '["fp32"]',
            "batch_sizes": "[1]", **changes}
    return "[[matrix]]\n" + "".join(f"{k} = {v}\n" for k, v in keys.items() if v is not None)


def kernel_matrix(**changes) -> str:
    return model_matrix(**{"kind": '"kernel"', "models": None, "ops": '["lrn"]', "shapes_from": '["alexnet_paper"]',
                           **changes})


# Each bad suite is a good first matrix and a bad second one, so the message must say which.
@pytest.mark.parametrize("matrix, message", [
    (model_matrix(dtypes=None), r"matrix 2: missing key 'dtypes'; a model matrix needs models, backends, modes, "
                                r"dtypes, batch_sizes$"),
    (kernel_matrix(batch_sizes=None), r"matrix 2: missing key 'batch_sizes'; a kernel matrix needs ops, backends, "
                                      r"modes, dtypes, batch_sizes and shapes_from or depthwise_from$"),
    (kernel_matrix(shapes_from=None), r"matrix 2: a kernel matrix needs shapes_from or depthwise_from"),
    (model_matrix(batch_sizes="[0]"), r"matrix 2: batch_sizes: expected a list of positive integers, got \[0\]$"),
    (model_matrix(batch_sizes='["4"]'), r"matrix 2: batch_sizes: expected a list of positive integers, got \['4'\]$"),
    (model_matrix(batch_sizes="4"), r"matrix 2: batch_sizes: expected a list of positive integers, got 4$"),
    (model_matrix(batch_sizes="[true]"), r"matrix 2: batch_sizes: expected a list of positive integers, got \[True\]$"),
    (model_matrix(dtypes="[]"), r"matrix 2: dtypes: expected a list of fp32, tf32, fp16, bf16, got \[\]$"),
    (model_matrix(backends='"torch"'), r"matrix 2: backends: expected a list of torch, triton, compile, got 'torch'$"),
    (model_matrix(backends='["cudnn"]'), r"matrix 2: backends: unknown backend 'cudnn'; choose from torch, triton, "
                                         r"compile$"),
    (model_matrix(modes='["eval"]'), r"matrix 2: modes: unknown mode 'eval'; choose from infer, train$"),
    (model_matrix(memory_formats='["nhwc"]'), r"matrix 2: memory_formats: unknown memory format 'nhwc'; choose from "
                                              r"nchw, channels_last$"),
    (model_matrix(models="5"), r"matrix 2: models: expected a list of model names or \"all\", got 5$"),
    (kernel_matrix(ops='"lrn"'), r"matrix 2: ops: expected a list of op names, got 'lrn'$"),
    (model_matrix(input_size="0"), r"matrix 2: input_size: expected a positive integer, got 0$"),
    (model_matrix(input_size='"224"'), r"matrix 2: input_size: expected a positive integer, got '224'$"),
    (model_matrix(input_size="224.0"), r"matrix 2: input_size: expected a positive integer, got 224.0$"),
    (model_matrix(kind='"kernels"'), r"matrix 2: kind: unknown kind 'kernels'; choose from model, kernel$"),
    (model_matrix(ops='["lrn"]'), r"matrix 2: unknown key 'ops' in a model matrix; choose from kind, models, "),
    (kernel_matrix(shapes="3"), r"matrix 2: shapes: expected a list of glob patterns on shape strings, got 3$"),
    (kernel_matrix(depthwise_from='["resnet50"]'),
     r"matrix 2: depthwise_from: only op conv2d has depthwise cases; the matrix's ops are \['lrn'\]$"),
    (model_matrix(models=None) + "[matrix.models]\nresnet18 = 1\n",
     r"matrix 2: models: expected a list of model names or \"all\", got a table$"),
    ("matrix = [1]\n", r"matrix 2: expected a table \[\[matrix\]\], got 1$"),
])
def test_a_bad_matrix_is_refused_at_load_naming_file_matrix_and_key(tmp_path, matrix, message):
    path = write_suite(tmp_path, GOOD_MODEL_MATRIX + matrix) if not matrix.startswith("matrix =") else None
    if path is None:  # an inline array cannot follow [[matrix]] tables: the good matrix is inline too
        path = write_suite(tmp_path, 'matrix = [{models = ["resnet18"], backends = ["torch"], modes = ["infer"], '
                                     'dtypes = ["fp32"], batch_sizes = [1]}, 1]\n')
    with pytest.raises(suites.SuiteError) as error:
        suites.load_suite("bad", tmp_path)
    assert str(error.value).startswith(f"{path}: "), str(error.value)
    assert re.search(message, str(error.value)), str(error.value)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("text, message", [
    ('[matrix]\nmodels = ["resnet18"]\n', r": matrix: expected an array of tables \[\[matrix\]\], got a table "
                                          r"\[matrix\]$"),
    ("matrix = 5\n", r": matrix: expected an array of tables \[\[matrix\]\], got 5$"),
    ("matrix = []\n", r": no \[\[matrix\]\] entries$"),
    ('description = "x"\n', r": no \[\[matrix\]\] entries$"),
    ("[matrx]\n" + GOOD_MODEL_MATRIX, r": unknown key 'matrx'; choose from description, timing, matrix$"),
    ("description = 3\n" + GOOD_MODEL_MATRIX, r": description: expected a string, got 3$"),
    ("timing = 5\n" + GOOD_MODEL_MATRIX, r": timing: expected a table \[timing\], got 5$"),
    ("[timing]\nrepeats = 0\n" + GOOD_MODEL_MATRIX, r": timing: repeats: expected an integer >= 1, got 0$"),
    ("[timing]\nwarmup = -1\n" + GOOD_MODEL_MATRIX, r": timing: warmup: expected an integer >= 0, got -1$"),
    ("[timing]\nwarmup = 2.5\n" + GOOD_MODEL_MATRIX, r": timing: warmup: expected an integer >= 0, got 2.5$"),
    ("[timing]\ntimeout_s = 0\n" + GOOD_MODEL_MATRIX, r": timing: timeout_s: expected a number of seconds > 0, "
                                                      r"got 0$"),
    ('[timing]\ntimeout_s = "600"\n' + GOOD_MODEL_MATRIX, r": timing: timeout_s: expected a number of seconds > 0, "
                                                          r"got '600'$"),
    ("[timing]\nmin_time_s = nan\n" + GOOD_MODEL_MATRIX, r": timing: min_time_s: expected a number of seconds >= 0, "
                                                         r"got nan$"),
    ("[timing]\nflush_l2 = 1\n" + GOOD_MODEL_MATRIX, r": timing: flush_l2: expected true or false, got 1$"),
    ("[timing]\nrepeat = 5\n" + GOOD_MODEL_MATRIX, r": timing: unknown key 'repeat'; choose from warmup, repeats, "),
    ("[[matrix]\nmodels = 1\n", r": not valid TOML \(.* \(at line 1, column \d+\)\)$"),
    ('[[matrix]]\nmodels = ["a"]\nbackends = torch\n', r": not valid TOML \(.*\(at line 3, column \d+\)\)$"),
])
def test_a_bad_suite_file_is_refused_at_load_naming_the_file_and_key(tmp_path, text, message):
    path = write_suite(tmp_path, text)
    with pytest.raises(suites.SuiteError) as error:
        suites.load_suite("bad", tmp_path)
    assert str(error.value).startswith(f"{path}: "), str(error.value)
    assert re.search(message, str(error.value)), str(error.value)
    assert "\n" not in str(error.value)


def test_a_suite_file_that_is_not_utf8_names_the_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_bytes(b'description = "caf\xe9"\n' + GOOD_MODEL_MATRIX.encode())
    with pytest.raises(suites.SuiteError, match=rf"^{re.escape(str(path))}: not valid TOML \(not UTF-8: .*\)$"):
        suites.load_suite("bad", tmp_path)


def test_every_shipped_suite_passes_the_schema():
    for name in suites.list_suites():
        suite = suites.load_suite(name)
        assert suite["name"] == name and suite["matrix"]


def test_loading_and_checking_a_suite_imports_no_torch(tmp_path):
    write_suite(tmp_path, GOOD_MODEL_MATRIX + model_matrix(batch_sizes="[0]"))
    code = ("import sys, bench.suite as s\n"
            "for name in s.list_suites(): s.load_suite(name)\n"
            f"try: s.load_suite('bad', {str(tmp_path)!r})\n"
            "except s.SuiteError as e: print(e)\n"
            "print('torch' in sys.modules, 'models' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert done.stdout.splitlines()[-1] == "False False", done.stdout + done.stderr
    assert "matrix 2: batch_sizes" in done.stdout


def test_the_cli_refuses_a_bad_suite_in_one_line_before_any_work(tmp_path, monkeypatch, capsys):
    write_suite(tmp_path, "[[matrix]\n")
    monkeypatch.setattr(suites, "SUITES_DIR", tmp_path)
    assert cli.main(["run", "--suite", "bad", "--device", "cpu", "--out", str(tmp_path / "r.jsonl")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path / 'bad.toml'}: not valid TOML (") and err.count("\n") == 1, err
    assert not (tmp_path / "r.jsonl").exists()


def test_an_unknown_model_in_a_suite_file_names_file_matrix_and_key(tmp_path):
    path = write_suite(tmp_path, GOOD_MODEL_MATRIX + model_matrix(models='["resnet5"]'))
    with pytest.raises(suites.SuiteError, match=rf"^{re.escape(str(path))}: matrix 2: models: unknown model "
                                                r"'resnet5'; did you mean resnet50"):
        suites.expand(suites.load_suite("bad", tmp_path))


def test_overrides_outside_the_suite_are_checked_too():
    with pytest.raises(suites.SuiteError, match=r"^input size must be a positive integer, got 0$"):
        suites.expand(suites.load_suite("smoke"), suites.Overrides(input_size=0))

"""Suites are data: ``bench/suites/<name>.toml``, each a list of matrices to expand.

A matrix is the cartesian product of its lists (models or ops x backends x modes x dtypes x
batch sizes x memory formats); command-line options override the same list in every matrix.
:func:`expand` turns a suite into the flat list of configurations the runner measures.

A kernel matrix takes its cases (:func:`matrix_cases`) from models: ``shapes_from`` (each op at
the shapes where it occurs in these models) and ``depthwise_from`` (conv2d only: depthwise 3x3
and 5x5 convolutions derived from these models' 3x3 layers, groups = channels); ``shapes``, if
given, keeps only the cases whose shape string matches one of its glob patterns.

:func:`load_suite` checks a suite file against its schema (the keys and value types below)
without importing torch, so a mistake in the file is one line that names the file, the matrix
(``matrix 2``: the second ``[[matrix]]``, counting from 1) and the key, before any work starts.
Model and op names need the model zoo and the op registry (``bench.ops``): :func:`expand` checks those.
"""

from __future__ import annotations

import fnmatch
import itertools
import math
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from .results import CONFIGURATION

SUITES_DIR = Path(__file__).parent / "suites"

# The backends bench/backends.py registers, named here in report order without importing torch
# (a test checks that the two agree).
BACKENDS = ("torch", "triton", "compile")
MODEL_MODES = ("infer", "train")
DTYPES = ("fp32", "tf32", "fp16", "bf16")
MEMORY_FORMATS = ("nchw", "channels_last")
KINDS = ("model", "kernel")
# The papers' test protocols of inference model rows: ``models.protocols.PROTOCOLS``, named here
# so that checking a suite imports no torch (a test holds the two equal).
PROTOCOLS = ("single", "10crop", "144crop", "dense")
# How a GPU row's device time is taken (``bench.timing``): "auto" picks per row, the others force one.
DEVICE_TIMINGS = ("auto", "graph", "cupti", "events")

TIMING_DEFAULTS = {"warmup": 5, "repeats": 20, "min_time_s": 0.0, "max_time_s": 10.0, "timeout_s": 600,
                   "flush_l2": False, "device_timing": "auto", "cross_check": False}
# A CPU's repetitions rarely agree to 1 %: there timing stops at ``repeats`` and ``min_time_s``
# unless a suite sets a cap, so CPU suites keep their length (``ci_rel`` still flags what is noisy).
CPU_TIMING_DEFAULTS = {"max_time_s": 0.0}

SUITE_KEYS = ("description", "timing", "matrix")
MATRIX_KEYS = {
    "model": ("kind", "models", "backends", "modes", "dtypes", "batch_sizes", "memory_formats", "input_size",
              "protocols", "world_sizes"),
    "kernel": ("kind", "ops", "shapes_from", "depthwise_from", "shapes", "backends", "modes", "dtypes",
               "batch_sizes", "memory_formats"),
}
REQUIRED_MATRIX_KEYS = {
    "model": ("models", "backends", "modes", "dtypes", "batch_sizes"),
    "kernel": ("ops", "backends", "modes", "dtypes", "batch_sizes"),  # and shapes_from or depthwise_from
}
# The lists whose values come from a fixed set: key -> (what one value is called, the choices).
CHOICE_KEYS = {"backends": ("backend", BACKENDS), "modes": ("mode", MODEL_MODES), "dtypes": ("dtype", DTYPES),
               "memory_formats": ("memory format", MEMORY_FORMATS)}


class SuiteError(ValueError):
    """A suite or override that names something that does not exist or has the wrong type."""


@dataclass(frozen=True)
class Overrides:
    models: list[str] | None = None
    ops: list[str] | None = None
    backends: list[str] | None = None
    modes: list[str] | None = None
    dtypes: list[str] | None = None
    batch_sizes: list[int] | None = None
    memory_formats: list[str] | None = None
    input_size: int | None = None
    shapes: list[str] | None = None  # glob patterns on the kernel cases' shape strings
    protocols: list[str] | None = None  # test protocols of inference model rows (models.protocols)
    world_sizes: list[int] | None = None  # data-parallel ranks of training model rows (bench.distributed)


def list_suites(directory: str | os.PathLike | None = None) -> list[str]:
    return sorted(p.stem for p in Path(directory or SUITES_DIR).glob("*.toml"))


def load_suite(name: str, directory: str | os.PathLike | None = None) -> dict:
    """The suite ``NAME.toml`` in ``directory`` (default ``bench/suites``), checked against the
    schema (:func:`check_suite`); the returned dict also holds its ``name`` and ``path``."""
    path = Path(directory or SUITES_DIR) / f"{name}.toml"
    if not path.is_file():
        raise SuiteError(f"unknown suite {name!r}; choose from {', '.join(list_suites(directory))}")
    try:
        with open(path, "rb") as f:
            suite = tomllib.load(f)
    except tomllib.TOMLDecodeError as error:
        raise SuiteError(f"{path}: not valid TOML ({error})") from None
    except UnicodeDecodeError as error:
        raise SuiteError(f"{path}: not valid TOML (not UTF-8: {error})") from None
    except OSError as error:
        raise SuiteError(f"{path}: cannot read it ({error.strerror})") from None
    unknown = [k for k in suite if k not in SUITE_KEYS]
    if unknown:
        raise SuiteError(f"{path}: unknown key {', '.join(map(repr, unknown))}; choose from {', '.join(SUITE_KEYS)}")
    suite["name"], suite["path"] = name, str(path)
    check_suite(suite)
    return suite


def suite_source(suite: dict) -> str:
    """What an error names as the suite: its file, else ``suite NAME`` (a suite built in code)."""
    return suite.get("path") or f"suite {suite['name']}"


def shown(value) -> str:
    """A TOML value as an error message shows it: tables by kind, anything else by its repr."""
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return "an array of tables"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_seconds(value) -> bool:
    return (is_int(value) or isinstance(value, float)) and math.isfinite(value)


# timing key -> (test, what it expects)
TIMING_SCHEMA = {
    "warmup": (lambda v: is_int(v) and v >= 0, "an integer >= 0"),
    "repeats": (lambda v: is_int(v) and v >= 1, "an integer >= 1"),
    "min_time_s": (lambda v: is_seconds(v) and v >= 0, "a number of seconds >= 0"),
    "max_time_s": (lambda v: is_seconds(v) and v >= 0, "a number of seconds >= 0"),
    "timeout_s": (lambda v: is_seconds(v) and v > 0, "a number of seconds > 0"),
    "flush_l2": (lambda v: isinstance(v, bool), "true or false"),
    "device_timing": (lambda v: v in DEVICE_TIMINGS, "one of " + ", ".join(DEVICE_TIMINGS)),
    "cross_check": (lambda v: isinstance(v, bool), "true or false"),
}


def check_suite(suite: dict) -> None:
    """The suite's description, timing and matrices have the schema's keys and types; a one-line
    :class:`SuiteError` naming the file (or suite), the matrix and the key otherwise."""
    source = suite_source(suite)
    if "description" in suite and not isinstance(suite["description"], str):
        raise SuiteError(f"{source}: description: expected a string, got {shown(suite['description'])}")
    timing = suite.get("timing", {})
    if not isinstance(timing, dict):
        raise SuiteError(f"{source}: timing: expected a table [timing], got {shown(timing)}")
    for key, value in timing.items():
        if key not in TIMING_SCHEMA:
            raise SuiteError(f"{source}: timing: unknown key {key!r}; choose from {', '.join(TIMING_SCHEMA)}")
        test, expected = TIMING_SCHEMA[key]
        if not test(value):
            raise SuiteError(f"{source}: timing: {key}: expected {expected}, got {shown(value)}")
    matrices = suite.get("matrix")
    if matrices is None or matrices == []:
        raise SuiteError(f"{source}: no [[matrix]] entries")
    if not isinstance(matrices, list):
        got = "a table [matrix]" if isinstance(matrices, dict) else shown(matrices)
        raise SuiteError(f"{source}: matrix: expected an array of tables [[matrix]], got {got}")
    for index, matrix in enumerate(matrices, start=1):
        if not isinstance(matrix, dict):
            raise SuiteError(f"{source}: matrix {index}: expected a table [[matrix]], got {shown(matrix)}")
        try:
            check_matrix(matrix)
        except SuiteError as error:
            raise SuiteError(f"{source}: matrix {index}: {error}") from None


def check_choices(what: str, values, choices) -> None:
    bad = [v for v in values if v not in choices]
    if bad:
        raise SuiteError(f"unknown {what} {', '.join(map(repr, bad))}; choose from {', '.join(map(str, choices))}")


def is_model_list(value) -> bool:
    """``"all"`` or a list of names: what models, shapes_from and depthwise_from hold."""
    return value == "all" or isinstance(value, list) and all(isinstance(v, str) for v in value)


def _model_names(value, key: str | None = None) -> list[str]:
    """``"all"`` or a list of model names; ``key``, the suite key it comes from, prefixes any error."""
    import models

    if not is_model_list(value):
        raise SuiteError(f"{key or 'models'}: expected a list of model names or \"all\", got {shown(value)}")
    names = models.list_models() if value == "all" else list(value)
    try:
        for name in names:
            models.get_entry(name)  # a clear error with close matches
    except ValueError as error:
        raise SuiteError(f"{key}: {error}" if key else str(error)) from None
    return names


def check_matrix(matrix: dict) -> str:
    """The matrix's kind, after checking its keys and the types of their values (names of models
    and ops are :func:`expand`'s to check); a one-line :class:`SuiteError` naming the key otherwise."""
    kind = matrix.get("kind", "model")
    if not isinstance(kind, str) or kind not in KINDS:
        raise SuiteError(f"kind: unknown kind {shown(kind)}; choose from {', '.join(KINDS)}")
    unknown = [k for k in matrix if k not in MATRIX_KEYS[kind]]
    if unknown:
        raise SuiteError(f"unknown key {', '.join(map(repr, unknown))} in a {kind} matrix; "
                         f"choose from {', '.join(MATRIX_KEYS[kind])}")
    needs = ", ".join(REQUIRED_MATRIX_KEYS[kind]) + (" and shapes_from or depthwise_from" if kind == "kernel" else "")
    for key in REQUIRED_MATRIX_KEYS[kind]:
        if key not in matrix:
            raise SuiteError(f"missing key {key!r}; a {kind} matrix needs {needs}")
    if kind == "kernel" and "shapes_from" not in matrix and "depthwise_from" not in matrix:
        raise SuiteError("a kernel matrix needs shapes_from or depthwise_from (the models its shapes come from)")
    for key in ("models", "shapes_from", "depthwise_from"):
        if key in matrix and not (is_model_list(matrix[key]) and matrix[key]):
            raise SuiteError(f"{key}: expected a list of model names or \"all\", got {shown(matrix[key])}")
    if "ops" in matrix and not (isinstance(matrix["ops"], list) and matrix["ops"]
                                and all(isinstance(v, str) for v in matrix["ops"])):
        raise SuiteError(f"ops: expected a list of op names, got {shown(matrix['ops'])}")
    for key, (what, choices) in CHOICE_KEYS.items():
        if key not in matrix:
            continue
        values = matrix[key]
        if not (isinstance(values, list) and values and all(isinstance(v, str) for v in values)):
            raise SuiteError(f"{key}: expected a list of {', '.join(choices)}, got {shown(values)}")
        try:
            check_choices(what, values, choices)
        except SuiteError as error:
            raise SuiteError(f"{key}: {error}") from None
    batch_sizes = matrix["batch_sizes"]
    if not (isinstance(batch_sizes, list) and batch_sizes and all(is_int(b) and b >= 1 for b in batch_sizes)):
        raise SuiteError(f"batch_sizes: expected a list of positive integers, got {shown(batch_sizes)}")
    if "protocols" in matrix:
        check_protocols(matrix["protocols"], matrix["modes"])
    if "world_sizes" in matrix:
        check_world_sizes(matrix["world_sizes"], matrix["modes"])
    if "input_size" in matrix and not (is_int(matrix["input_size"]) and matrix["input_size"] >= 1):
        raise SuiteError(f"input_size: expected a positive integer, got {shown(matrix['input_size'])}")
    shapes = matrix.get("shapes", [])
    if not (isinstance(shapes, list) and all(isinstance(p, str) for p in shapes)):
        raise SuiteError(f"shapes: expected a list of glob patterns on shape strings, got {shown(shapes)}")
    if "depthwise_from" in matrix and "conv2d" not in matrix["ops"]:
        raise SuiteError(f"depthwise_from: only op conv2d has depthwise cases; the matrix's ops are {matrix['ops']}")
    return kind


def matrix_cases(matrix: dict, batch_size: int, ops: list[str] | None = None,
                 shapes: list[str] | None = None) -> list[dict]:
    """The cases of a kernel matrix at ``batch_size``: its ops (or ``ops``) at the shapes of its
    ``shapes_from`` models, plus for conv2d the depthwise cases derived from ``depthwise_from``,
    each (op, shape) once; only those matching a pattern of ``shapes`` (else the matrix's own)."""
    from .ops import capture_cases
    from .ops.conv2d import depthwise_cases

    ops = ops or matrix["ops"]
    cases = capture_cases(ops, _model_names(matrix.get("shapes_from", []), "shapes_from"), batch_size)
    if "conv2d" in ops and matrix.get("depthwise_from"):
        known = {(c["op"], c["shape"]): c for c in cases}
        for case in depthwise_cases(_model_names(matrix["depthwise_from"], "depthwise_from"), batch_size):
            if ("conv2d", case["shape"]) in known:  # a model's own depthwise layer: one case, both sources
                known["conv2d", case["shape"]]["models"] += case["models"]
            else:
                cases.append(case)
    patterns = shapes or matrix.get("shapes")
    if patterns:
        cases = [c for c in cases if any(fnmatch.fnmatchcase(c["shape"], p) for p in patterns)]
    return cases


def check_overrides(overrides: Overrides) -> None:
    """The overrides that need neither the model zoo nor the kernels: choices and sizes."""
    for key, (what, choices) in CHOICE_KEYS.items():
        values = getattr(overrides, key)
        if values is not None:
            check_choices(what, values, choices)
    for b in overrides.batch_sizes or []:
        if not is_int(b) or b < 1:
            raise SuiteError(f"batch size must be a positive integer, got {b!r}")
    if overrides.input_size is not None and not (is_int(overrides.input_size) and overrides.input_size >= 1):
        raise SuiteError(f"input size must be a positive integer, got {overrides.input_size!r}")


def timing_for(suite: dict, device: str) -> dict:
    """A suite's timing settings on ``device``: the defaults, then a CPU's where it is one, then
    the suite's own ``[timing]``."""
    return {**TIMING_DEFAULTS, **(CPU_TIMING_DEFAULTS if device == "cpu" else {}), **suite.get("timing", {})}


def expand(suite: dict, overrides: Overrides = Overrides(), device: str = "cpu") -> list[dict]:
    """Every configuration of the suite, overrides applied, in a stable order."""
    from .ops import list_ops

    check_suite(suite)
    check_overrides(overrides)
    if overrides.models is not None:
        _model_names(overrides.models)
    if overrides.protocols is not None:
        check_protocols(overrides.protocols, overrides.modes or list(MODEL_MODES))
    if overrides.world_sizes is not None:
        check_world_sizes(overrides.world_sizes, overrides.modes or list(MODEL_MODES))
    if overrides.ops is not None:
        check_choices("op", overrides.ops, list_ops())
    timing = timing_for(suite, device)
    configs = []
    for index, matrix in enumerate(suite["matrix"], start=1):
        try:
            configs += _matrix_configs(matrix, overrides, {"device": device, **timing})
        except SuiteError as error:  # the overrides are checked above: this is the matrix's own
            raise SuiteError(f"{suite_source(suite)}: matrix {index}: {error}") from None
    unique = {}
    for config in configs:  # overrides can make two matrices ask for the same thing
        unique.setdefault(tuple(str(config.get(c)) for c in CONFIGURATION), config)
    configs = list(unique.values())
    if not configs and overrides.shapes:
        raise SuiteError(f"--shapes {','.join(overrides.shapes)}: matches none of the kernel cases of suite "
                         f"{suite['name']}" + (f" (ops {', '.join(overrides.ops)})" if overrides.ops else "")
                         + "; a shape reads like '64x256x56x56 k=3x3 s=1 p=1 d=1 g=32 -> 256'")
    if not configs:
        raise SuiteError(f"suite {suite['name']}: the overrides leave no configuration to run")
    return configs


def check_protocols(protocols, modes: list[str]) -> None:
    """Test protocols: known ones, and other than ``single`` only where inference is measured (a
    training step has no test protocol). The rule of ``models.protocols.check_protocol``, applied
    here without importing torch."""
    if not (isinstance(protocols, list) and protocols and all(isinstance(p, str) for p in protocols)):
        raise SuiteError(f"protocols: expected a list of {', '.join(PROTOCOLS)}, got {shown(protocols)}")
    try:
        check_choices("protocol", protocols, PROTOCOLS)
    except SuiteError as error:
        raise SuiteError(f"protocols: {error}") from None
    tested = [p for p in protocols if p != "single"]
    if tested and "infer" not in modes:
        raise SuiteError(f"protocols: protocol {tested[0]!r} is a test protocol: it runs with mode infer only, "
                         f"not {modes[0]!r}")


def check_world_sizes(world_sizes, modes: list[str]) -> None:
    """Data-parallel world sizes: positive integers, and only where training is measured (an
    inference row has no gradients to share)."""
    if not (isinstance(world_sizes, list) and world_sizes and all(is_int(n) and n >= 1 for n in world_sizes)):
        raise SuiteError(f"world_sizes: expected a list of positive integers, got {shown(world_sizes)}")
    if "train" not in modes:
        raise SuiteError(f"world_sizes: data-parallel ranks share gradients: they run with mode train only, "
                         f"not {modes[0]!r}")


def _matrix_configs(matrix: dict, overrides: Overrides, base: dict) -> list[dict]:
    """The configurations of one checked matrix; ``base``, the device and timing of each."""
    from .ops import get_op, list_ops

    kind = check_matrix(matrix)
    backends = overrides.backends or matrix["backends"]
    modes = overrides.modes or matrix["modes"]
    dtypes = overrides.dtypes or matrix["dtypes"]
    batch_sizes = overrides.batch_sizes or matrix["batch_sizes"]
    formats = overrides.memory_formats or matrix.get("memory_formats", ["channels_last"])
    base = {"kind": kind, **base}
    kernels_only = overrides.ops is not None or overrides.shapes is not None
    configs = []
    if kind == "model":
        if overrides.models is None and kernels_only:
            return []  # only kernels were asked for
        names = _model_names(overrides.models) if overrides.models else _model_names(matrix["models"], "models")
        input_size = overrides.input_size if overrides.input_size is not None else matrix.get("input_size")
        protocols = overrides.protocols or matrix.get("protocols", ["single"])
        check_protocols(protocols, modes)
        world_sizes = overrides.world_sizes or matrix.get("world_sizes", [None])
        for name, backend, mode, dtype, batch, fmt in itertools.product(
                names, backends, modes, dtypes, batch_sizes, formats):
            # Training has no test protocol, and inference no ranks; one rank's row runs first, so a
            # multi-rank row finds it (results.scaling_efficiency).
            for protocol, world_size in itertools.product(
                    protocols if mode == "infer" else ["single"],
                    sorted(world_sizes) if mode == "train" and world_sizes != [None] else [None]):
                configs.append({**base, "name": name, "shape": None, "backend": backend, "mode": mode,
                                "dtype": dtype, "batch_size": batch, "memory_format": fmt,
                                "input_size": input_size or _native_size(name), "protocol": protocol,
                                "world_size": world_size})
        return configs
    if not kernels_only and overrides.models is not None:
        return []  # only models were asked for
    if not overrides.ops:
        try:
            check_choices("op", matrix["ops"], list_ops())
        except SuiteError as error:
            raise SuiteError(f"ops: {error}") from None
    ops = overrides.ops or matrix["ops"]
    for batch in batch_sizes:
        cases = matrix_cases(matrix, batch, ops, overrides.shapes)
        if not cases and matrix.get("shapes") and not kernels_only:
            raise SuiteError(f"shapes {matrix['shapes']} match none of the {', '.join(matrix['ops'])} cases of "
                             f"its matrix at batch {batch}")
        for case in cases:
            for backend, mode, dtype, fmt in itertools.product(backends, modes, dtypes, formats):
                for kernel_mode in get_op(case["op"]).modes(mode):
                    configs.append({**base, "name": case["op"], "shape": case["shape"], "case": case,
                                    "backend": backend, "mode": kernel_mode, "dtype": dtype,
                                    "batch_size": batch, "memory_format": fmt, "input_size": None})
    return configs


def _native_size(name: str) -> int:
    import models

    return models.get_entry(name).input_size

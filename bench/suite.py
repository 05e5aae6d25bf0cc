"""Suites are data: ``bench/suites/<name>.toml``, each a list of matrices to expand.

A matrix is the cartesian product of its lists (models or ops x backends x modes x dtypes x
batch sizes x memory formats); command-line options override the same list in every matrix.
:func:`expand` turns a suite into the flat list of configurations the runner measures.

A kernel matrix takes its cases (:func:`kernel_cases`) from models: ``shapes_from`` (each op at
the shapes where it occurs in these models) and ``depthwise_from`` (conv2d only: depthwise 3x3
and 5x5 convolutions derived from these models' 3x3 layers, groups = channels); ``shapes``, if
given, keeps only the cases whose shape string matches one of its glob patterns.
"""

from __future__ import annotations

import fnmatch
import itertools
import tomllib
from dataclasses import dataclass
from pathlib import Path

SUITES_DIR = Path(__file__).parent / "suites"

BACKENDS = ("torch", "triton", "compile")
MODEL_MODES = ("infer", "train")
DTYPES = ("fp32", "tf32", "fp16", "bf16")
MEMORY_FORMATS = ("nchw", "channels_last")
KINDS = ("model", "kernel")

CONFIG_KEY = ("kind", "name", "shape", "backend", "mode", "dtype", "batch_size", "memory_format", "input_size")
TIMING_DEFAULTS = {"warmup": 5, "repeats": 20, "min_time_s": 0.0, "timeout_s": 600, "flush_l2": False,
                   "cuda_graphs": False}


MATRIX_KEYS = {
    "model": ("kind", "models", "backends", "modes", "dtypes", "batch_sizes", "memory_formats", "input_size"),
    "kernel": ("kind", "ops", "shapes_from", "depthwise_from", "shapes", "backends", "modes", "dtypes",
               "batch_sizes", "memory_formats"),
}


class SuiteError(ValueError):
    """A suite or override that names something that does not exist."""


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


def list_suites() -> list[str]:
    return sorted(p.stem for p in SUITES_DIR.glob("*.toml"))


def load_suite(name: str) -> dict:
    path = SUITES_DIR / f"{name}.toml"
    if not path.is_file():
        raise SuiteError(f"unknown suite {name!r}; choose from {', '.join(list_suites())}")
    with open(path, "rb") as f:
        suite = tomllib.load(f)
    suite["name"] = name
    unknown = set(suite.get("timing", {})) - set(TIMING_DEFAULTS)
    if unknown:
        raise SuiteError(f"suite {name}: unknown timing keys {sorted(unknown)}; known: {sorted(TIMING_DEFAULTS)}")
    if not suite.get("matrix"):
        raise SuiteError(f"suite {name}: no [[matrix]] entries")
    return suite


def check_choices(what: str, values, choices) -> None:
    bad = [v for v in values if v not in choices]
    if bad:
        raise SuiteError(f"unknown {what} {', '.join(map(repr, bad))}; choose from {', '.join(map(str, choices))}")


def _model_names(value, key: str | None = None) -> list[str]:
    """``"all"`` or a list of model names; ``key``, the suite key it comes from, prefixes any error."""
    import models

    if not (value == "all" or isinstance(value, list) and all(isinstance(v, str) for v in value)):
        raise SuiteError(f"{key or 'models'}: expected a list of model names or \"all\", got {value!r}")
    names = models.list_models() if value == "all" else list(value)
    try:
        for name in names:
            models.get_entry(name)  # a clear error with close matches
    except ValueError as error:
        raise SuiteError(f"{key}: {error}" if key else str(error)) from None
    return names


def check_matrix(matrix: dict) -> str:
    """The matrix's kind, after checking that it names only keys of its kind (and a kernel
    matrix, the models it takes shapes from); a one-line :class:`SuiteError` otherwise."""
    kind = matrix.get("kind", "model")
    check_choices("kind", [kind], KINDS)
    unknown = [k for k in matrix if k not in MATRIX_KEYS[kind]]
    if unknown:
        raise SuiteError(f"unknown key {', '.join(map(repr, unknown))} in a {kind} matrix; "
                         f"choose from {', '.join(MATRIX_KEYS[kind])}")
    if kind == "kernel":
        if "shapes_from" not in matrix and "depthwise_from" not in matrix:
            raise SuiteError("a kernel matrix needs shapes_from or depthwise_from (the models its shapes come from)")
        for key in ("shapes_from", "depthwise_from"):
            if key in matrix:
                _model_names(matrix[key], key)
        if "depthwise_from" in matrix and "conv2d" not in matrix.get("ops", []):
            raise SuiteError(f"depthwise_from: only op conv2d has depthwise cases; the matrix's ops are "
                             f"{matrix.get('ops')}")
        shapes = matrix.get("shapes", [])
        if not (isinstance(shapes, list) and all(isinstance(p, str) for p in shapes)):
            raise SuiteError(f"shapes: expected a list of glob patterns on shape strings, got {shapes!r}")
    return kind


def kernel_cases(matrix: dict, batch_size: int, ops: list[str] | None = None,
                 shapes: list[str] | None = None) -> list[dict]:
    """The cases of a kernel matrix at ``batch_size``: its ops (or ``ops``) at the shapes of its
    ``shapes_from`` models, plus for conv2d the depthwise cases derived from ``depthwise_from``,
    each (op, shape) once; only those matching a pattern of ``shapes`` (else the matrix's own)."""
    from .kernel_cases import capture_cases, depthwise_cases

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


def expand(suite: dict, overrides: Overrides = Overrides(), device: str = "cpu") -> list[dict]:
    """Every configuration of the suite, overrides applied, in a stable order."""
    from .kernel_cases import OPS

    timing = {**TIMING_DEFAULTS, **suite.get("timing", {})}
    configs = []
    for matrix in suite["matrix"]:
        try:
            kind = check_matrix(matrix)
        except SuiteError as error:
            raise SuiteError(f"suite {suite['name']}: {error}") from None
        backends = overrides.backends or matrix["backends"]
        modes = overrides.modes or matrix["modes"]
        dtypes = overrides.dtypes or matrix["dtypes"]
        batch_sizes = overrides.batch_sizes or matrix["batch_sizes"]
        formats = overrides.memory_formats or matrix.get("memory_formats", ["channels_last"])
        check_choices("backend", backends, BACKENDS)
        check_choices("mode", modes, MODEL_MODES)
        check_choices("dtype", dtypes, DTYPES)
        check_choices("memory format", formats, MEMORY_FORMATS)
        for b in batch_sizes:
            if not isinstance(b, int) or b < 1:
                raise SuiteError(f"batch size must be a positive integer, got {b!r}")
        base = {"kind": kind, "device": device, **timing}
        kernels_only = overrides.ops is not None or overrides.shapes is not None
        if kind == "model":
            if overrides.models is None and kernels_only:
                continue  # only kernels were asked for
            names = _model_names(overrides.models or matrix["models"])
            input_size = overrides.input_size or matrix.get("input_size")
            for name, backend, mode, dtype, batch, fmt in itertools.product(
                    names, backends, modes, dtypes, batch_sizes, formats):
                configs.append({**base, "name": name, "shape": None, "backend": backend, "mode": mode,
                                "dtype": dtype, "batch_size": batch, "memory_format": fmt,
                                "input_size": input_size or _native_size(name)})
        else:
            if not kernels_only and overrides.models is not None:
                continue  # only models were asked for
            ops = overrides.ops or matrix["ops"]
            check_choices("op", ops, sorted(OPS))
            for batch in batch_sizes:
                cases = kernel_cases(matrix, batch, ops, overrides.shapes)
                if not cases and matrix.get("shapes") and not kernels_only:
                    raise SuiteError(f"suite {suite['name']}: shapes {matrix['shapes']} match none of the "
                                     f"{', '.join(matrix['ops'])} cases of its matrix at batch {batch}")
                for case in cases:
                    for backend, mode, dtype, fmt in itertools.product(backends, modes, dtypes, formats):
                        for kernel_mode in OPS[case["op"]].modes(mode):
                            configs.append({**base, "name": case["op"], "shape": case["shape"], "case": case,
                                            "backend": backend, "mode": kernel_mode, "dtype": dtype,
                                            "batch_size": batch, "memory_format": fmt, "input_size": None})
    unique = {}
    for config in configs:  # overrides can make two matrices ask for the same thing
        unique.setdefault(tuple(str(config.get(c)) for c in CONFIG_KEY), config)
    configs = list(unique.values())
    if not configs:
        raise SuiteError(f"suite {suite['name']}: the overrides leave no configuration to run")
    return configs


def _native_size(name: str) -> int:
    import models

    return models.get_entry(name).input_size

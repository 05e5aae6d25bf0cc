"""Suites are data: ``bench/suites/<name>.toml``, each a list of matrices to expand.

A matrix is the cartesian product of its lists (models or ops x backends x modes x dtypes x
batch sizes x memory formats); command-line options override the same list in every matrix.
:func:`expand` turns a suite into the flat list of configurations the runner measures.
"""

from __future__ import annotations

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


def _model_names(value) -> list[str]:
    import models

    names = models.list_models() if value == "all" else list(value)
    for name in names:
        models.get_entry(name)  # a clear error with close matches
    return names


def expand(suite: dict, overrides: Overrides = Overrides(), device: str = "cpu") -> list[dict]:
    """Every configuration of the suite, overrides applied, in a stable order."""
    from .kernel_cases import OPS, capture_cases

    timing = {**TIMING_DEFAULTS, **suite.get("timing", {})}
    configs = []
    for matrix in suite["matrix"]:
        kind = matrix.get("kind", "model")
        check_choices("kind", [kind], KINDS)
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
        if kind == "model":
            if overrides.models is None and overrides.ops is not None:
                continue  # only kernels were asked for
            names = _model_names(overrides.models or matrix["models"])
            input_size = overrides.input_size or matrix.get("input_size")
            for name, backend, mode, dtype, batch, fmt in itertools.product(
                    names, backends, modes, dtypes, batch_sizes, formats):
                configs.append({**base, "name": name, "shape": None, "backend": backend, "mode": mode,
                                "dtype": dtype, "batch_size": batch, "memory_format": fmt,
                                "input_size": input_size or _native_size(name)})
        else:
            if overrides.ops is None and overrides.models is not None:
                continue  # only models were asked for
            ops = overrides.ops or matrix["ops"]
            check_choices("op", ops, sorted(OPS))
            sources = _model_names(matrix["shapes_from"])
            for batch in batch_sizes:
                for case in capture_cases(ops, sources, batch):
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

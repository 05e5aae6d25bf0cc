"""Writes ``results/samples/synthetic-2gpu.jsonl``: a SYNTHETIC results file for two GPUs, for the
report's tests.

Nothing in it was measured. It exists so that the HTML report (``python -m bench report``) can be
built and tested on a CPU machine with every section populated: two GPUs (an H200 and an
A100-SXM4-80GB), model rows for a few models x backends x modes x dtypes x batch sizes, kernel
rows with bytes moved and FLOPs counted by ``bench.ops`` at the models' real shapes,
some ``incorrect``, ``oom``, ``error`` and ``skipped`` rows, noisy rows, and an A100 run whose
GPU throttled (``sw_power_cap``) with its SM clock moving. Every row is marked: host
``synthetic``, run ids ``synthetic-...``, git commit ``synthetic``. The numbers are plausible
in size, not real: never quote them.

    python3 tools/make_synthetic_samples.py        # rewrites results/samples/synthetic-2gpu.jsonl

Deterministic (fixed seed): rerunning gives the same file.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.ops import capture_cases, get_op  # noqa: E402
from bench.results import ResultsWriter, make_row, scaling_efficiency  # noqa: E402
from bench.workloads import GRAD_TOLERANCE, MODEL_TOLERANCE  # noqa: E402
from kernels import TOLERANCE  # noqa: E402

OUT = ROOT / "results" / "samples" / "synthetic-2gpu.jsonl"

GPUS = {
    "NVIDIA H200": dict(slug="h200", speed=1.75, copy=4120.5, cc="9.0", memory=150_754_820_096, sm_max=1980,
                        mem_max=3201, power=700.0, temp=36, throttle=False),
    "NVIDIA A100-SXM4-80GB": dict(slug="a100", speed=1.0, copy=1712.3, cc="8.0", memory=85_899_345_920,
                                  sm_max=1410, mem_max=1593, power=400.0, temp=47, throttle=True),
}
# images/s of eager torch on the A100, bf16, inference, batch 256 (plausible, not measured)
MODELS = {"resnet50": 2600.0, "se_resnext50_32x4d": 1450.0, "densenet121": 2100.0, "inception_v3": 1750.0,
          "alexnet_paper": 9800.0, "vgg16": 760.0}
INPUT_SIZE = {"inception_v3": 299, "alexnet_paper": 227}
ACTIVATION_MB = {"resnet50": 105, "se_resnext50_32x4d": 150, "densenet121": 140, "inception_v3": 120,
                 "alexnet_paper": 12, "vgg16": 130}  # fp32 infer activations per image, roughly
PARAMS = {"resnet50": 25.6e6, "se_resnext50_32x4d": 27.6e6, "densenet121": 8.0e6, "inception_v3": 27.2e6,
          "alexnet_paper": 61.0e6, "vgg16": 138.4e6}
SPEEDUP = {  # over eager, (infer, train): triton replaces BN+ReLU / SE / LRN / grouped conv
    ("triton", "resnet50"): (1.08, 1.05), ("triton", "se_resnext50_32x4d"): (1.21, 1.12),
    ("triton", "densenet121"): (1.15, 1.07), ("triton", "inception_v3"): (1.06, 1.03),
    ("triton", "alexnet_paper"): (1.32, 1.18), ("triton", "vgg16"): (0.98, 0.99),
    ("compile", "resnet50"): (1.22, 1.15), ("compile", "se_resnext50_32x4d"): (1.35, 1.24),
    ("compile", "densenet121"): (1.41, 1.28), ("compile", "inception_v3"): (1.25, 1.17),
    ("compile", "alexnet_paper"): (1.12, 1.06), ("compile", "vgg16"): (1.03, 1.01),
}
KERNEL_SOURCES = {"bn_relu": "resnet50", "lrn": "alexnet_paper", "conv2d": "resnext50_32x4d",
                  "squeeze_excite": "se_resnet50"}
# fraction of the measured copy bandwidth each backend reaches, per op (plausible, not measured)
KERNEL_EFFICIENCY = {
    "bn_relu": {"torch": 0.68, "triton": 0.88, "compile": 0.84},
    "lrn": {"torch": 0.31, "triton": 0.83, "compile": 0.62},
    "conv2d": {"torch": 0.36, "triton": 0.47, "compile": 0.33},
    "squeeze_excite": {"torch": 0.42, "triton": 0.81, "compile": 0.74},
}


def times(rng: random.Random, median_ms: float, n: int, spread: float) -> dict:
    samples = [float(f"{median_ms * rng.lognormvariate(0.0, spread):.5g}") for _ in range(n)]
    q = statistics.quantiles(samples, n=4, method="inclusive")
    return {"device_times_ms": samples, "device_ms": statistics.median(samples),
            "iqr_ms": q[2] - q[0], "samples": n}


def environment(gpu: str, spec: dict, run_id: str) -> dict:
    return {"run_id": run_id, "host": "synthetic", "cpu": "synthetic CPU", "python": "3.11.9",
            "torch_version": "2.11.0+cu128", "triton_version": "3.6.0", "cuda_version": "12.8",
            "cudnn_version": 91002, "git_commit": "synthetic", "git_dirty": False, "device_name": gpu,
            "device_uuid": f"GPU-synthetic-{spec['slug']}", "driver_version": "570.124.06",
            "compute_capability": spec["cc"], "device_memory_bytes": spec["memory"],
            "sm_clock_max_mhz": spec["sm_max"], "memory_clock_max_mhz": spec["mem_max"],
            "sm_clock_mhz": spec["sm_max"], "memory_clock_mhz": spec["mem_max"], "power_limit_w": spec["power"],
            "temperature_c": spec["temp"], "copy_bandwidth_gbps": spec["copy"]}


def clocks(rng: random.Random, spec: dict, hot: bool) -> dict:
    if spec["throttle"] and hot:
        low = int(spec["sm_max"] * rng.uniform(0.78, 0.86))
        return {"sm_clock_mhz_min": low, "sm_clock_mhz_max": spec["sm_max"], "throttle_reasons": ["sw_power_cap"]}
    return {"sm_clock_mhz_min": spec["sm_max"] - 15, "sm_clock_mhz_max": spec["sm_max"], "throttle_reasons": []}


def model_rows(rng: random.Random, gpu: str, spec: dict, env: dict, clock: list) -> list[dict]:
    rows = []
    for name, base in MODELS.items():
        for backend in ("torch", "triton", "compile"):
            for mode in ("infer", "train"):
                for dtype in ("bf16", "fp32"):
                    for batch in (64, 256):
                        config = {"kind": "model", "name": name, "shape": None, "backend": backend, "mode": mode,
                                  "dtype": dtype, "batch_size": batch, "memory_format": "channels_last",
                                  "input_size": INPUT_SIZE.get(name, 224), "device": "cuda:0", "protocol": "single"}
                        measurement = {"started_at": time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime(clock[0]))}
                        wall = rng.uniform(8, 25) + (40 if backend == "compile" else 0)
                        clock[0] += wall
                        measurement["wall_s"] = round(wall, 3)
                        failure = _model_failure(gpu, name, backend, mode, dtype, batch)
                        if failure and failure[0] in ("oom", "error", "skipped"):
                            measurement.update(status=failure[0], message=failure[1])
                            rows.append(make_row(config, measurement, env))
                            continue
                        throughput = base * spec["speed"] * (0.36 if mode == "train" else 1.0)
                        throughput *= 0.2 if dtype == "fp32" else 1.0
                        throughput *= 0.86 if batch == 64 else 1.0
                        if backend != "torch":
                            throughput *= SPEEDUP[(backend, name)][mode == "train"] * rng.uniform(0.97, 1.03)
                        hot = mode == "train" and (batch == 256 or name == "vgg16")
                        noisy = name == "alexnet_paper" and batch == 64 and mode == "infer"
                        timing = times(rng, 1e3 * batch / throughput, 12, 0.12 if noisy else 0.006)
                        if spec["throttle"] and hot:
                            timing = times(rng, timing["device_ms"] * 1.09, 12, 0.02)
                        activations = ACTIVATION_MB[name] * 2**20 * batch * (3.2 if mode == "train" else 0.35)
                        activations *= 0.55 if dtype == "bf16" else 1.0
                        activations *= 0.8 if backend == "compile" else 1.0
                        weights = PARAMS[name] * 4 * (4 if mode == "train" else 1)
                        peak = int(activations + weights)
                        # the harness's methods: a replayed graph for inference, events for training
                        measurement.update(status="ok", **timing, timing_method="graph" if mode == "infer" else "events",
                                           host_ms=timing["device_ms"] * rng.uniform(0.97, 1.0),
                                           throughput=batch / (timing["device_ms"] / 1e3),
                                           peak_memory_bytes=peak,
                                           peak_reserved_bytes=int(peak * rng.uniform(1.05, 1.2)),
                                           **clocks(rng, spec, hot))
                        if not (backend == "torch" and dtype == "fp32"):  # the reference has no error
                            error = {"bf16": 9e-3, "fp32": 2e-6}[dtype] * rng.uniform(0.5, 2.0)
                            measurement.update(rel_error=error, max_abs_error=error * 8,
                                               top1_agreement=1.0 if dtype == "fp32"
                                               else round(rng.uniform(0.97, 1.0), 4))
                            if mode == "train":
                                measurement["grad_rel_error"] = error * rng.uniform(1.5, 3.0)
                            if backend != "torch":
                                measurement["tolerance"] = MODEL_TOLERANCE[dtype]
                        if failure and failure[0] == "incorrect":
                            measurement.update(status="incorrect", grad_rel_error=failure[2], message=failure[1])
                        rows.append(make_row(config, measurement, env))
    return rows


def _model_failure(gpu, name, backend, mode, dtype, batch):
    if name == "vgg16" and backend == "compile" and mode == "train" and dtype == "fp32" and batch == 256 \
            and "A100" in gpu:
        return ("oom", "OutOfMemoryError: CUDA out of memory. Tried to allocate 6.13 GiB. GPU 0 has a total "
                       "capacity of 79.25 GiB of which 3.02 GiB is free.")
    if name == "inception_v3" and backend == "compile" and mode == "train" and dtype == "bf16" and batch == 64:
        return ("error", "BackendCompilerFailed: backend='inductor' raised: AssertionError: synthetic failure "
                         "<in the aux head> & co")
    if name == "alexnet_paper" and backend == "triton" and dtype == "fp32" and mode == "train":
        return ("skipped", "triton: no LRN backward kernel for fp32 in this synthetic sample")
    if name == "densenet121" and backend == "triton" and mode == "train" and dtype == "bf16" and batch == 256:
        return ("incorrect", "relative error 0.231 exceeds the bf16 tolerance 0.1", 0.231)
    return None


def kernel_rows(rng: random.Random, gpu: str, spec: dict, env: dict, clock: list) -> list[dict]:
    rows = []
    for op_name, source in KERNEL_SOURCES.items():
        op = get_op(op_name)
        for case in capture_cases([op_name], [source], 64)[:3]:
            for mode in op.modes("train") + op.modes("infer"):
                for backend in ("triton", "torch", "compile"):
                    config = {"kind": "kernel", "name": op_name, "shape": case["shape"], "backend": backend,
                              "mode": mode, "dtype": "bf16", "batch_size": 64, "memory_format": "channels_last",
                              "input_size": None, "device": "cuda:0"}
                    measurement = {"started_at": time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime(clock[0]))}
                    wall = rng.uniform(1, 4) + (12 if backend == "compile" else 0)
                    clock[0] += wall
                    measurement["wall_s"] = round(wall, 3)
                    if "A100" in gpu and op_name == "conv2d" and backend == "compile" and mode == "train-backward" \
                            and case is not None and "s=2" in case["shape"]:
                        measurement.update(status="error", message="InductorError: synthetic: LoweringException "
                                                                   "in convolution_backward")
                        rows.append(make_row(config, measurement, env))
                        continue
                    bytes_moved = op.bytes_moved(case, mode, 2)
                    flops = op.flops(case, mode)
                    efficiency = KERNEL_EFFICIENCY[op_name][backend] * rng.uniform(0.92, 1.05)
                    if mode == "train-backward":
                        efficiency *= 0.9
                    timing = times(rng, bytes_moved / (efficiency * spec["copy"] * 1e9) * 1e3, 20, 0.01)
                    seconds = timing["device_ms"] / 1e3
                    error = 3e-3 * rng.uniform(0.5, 1.5)
                    # host time: the op's Python path (tens of microseconds) or the GPU, whichever is longer
                    host_ms = max(timing["device_ms"] * rng.uniform(0.97, 1.0), rng.uniform(0.03, 0.08))
                    measurement.update(status="ok", **timing, timing_method="graph", host_ms=host_ms,
                                       peak_memory_bytes=int(bytes_moved * 1.5),
                                       peak_reserved_bytes=int(bytes_moved * 2), rel_error=error,
                                       max_abs_error=error * 4, tolerance=TOLERANCE["bf16"],
                                       bytes_moved=bytes_moved, flops=flops, achieved_gbps=bytes_moved / seconds / 1e9,
                                       achieved_tflops=flops / seconds / 1e12,
                                       percent_of_copy_bandwidth=100 * bytes_moved / seconds / 1e9 / spec["copy"],
                                       **clocks(rng, spec, hot=mode == "train-backward"))
                    if mode != "infer":
                        measurement["grad_rel_error"] = error * 1.4 if mode == "train-backward" else None
                    if "A100" in gpu and op_name == "squeeze_excite" and backend == "triton" \
                            and mode == "train-backward" and "hidden=32" in case["shape"]:
                        measurement.update(status="incorrect", grad_rel_error=0.051,
                                           message="relative error 0.051 exceeds the bf16 tolerance 0.016")
                    rows.append(make_row(config, measurement, env))
    return rows


def protocol_rows(rng: random.Random, gpu: str, env: dict, clock: list, single: list[dict]) -> list[dict]:
    """Inference under the papers' test protocols, bf16, batch 64, torch and triton: each single-crop
    row's images/s over the protocol's MACs per image (the model card's), times a plausible
    efficiency (larger views run a little more efficiently)."""
    import models

    rows = []
    for base in single:
        if not (base["status"] == "ok" and base["mode"] == "infer" and base["dtype"] == "bf16"
                and base["batch_size"] == 64 and base["backend"] in ("torch", "triton")
                and base["name"] in ("alexnet_paper", "resnet50", "vgg16")):
            continue
        costs = models.model_card(base["name"])["protocols"]
        for protocol in ("10crop", "144crop", "dense"):
            config = {k: base[k] for k in ("kind", "name", "shape", "backend", "mode", "dtype", "batch_size",
                                           "memory_format", "input_size", "device")} | {"protocol": protocol}
            work = costs[protocol]["gmacs_per_image"] / costs["single"]["gmacs_per_image"]
            throughput = base["throughput"] / work * rng.uniform(1.0, 1.15)
            timing = times(rng, 1e3 * 64 / throughput, 12, 0.006)
            measurement = {"started_at": time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime(clock[0])),
                           "wall_s": round(rng.uniform(10, 40), 3), "status": "ok", **timing,
                           "timing_method": "graph", "host_ms": timing["device_ms"] * 0.99,
                           "views_per_image": costs[protocol]["views_per_image"],
                           "throughput": 64 / (timing["device_ms"] / 1e3),
                           "peak_memory_bytes": base["peak_memory_bytes"] * (3 if protocol == "dense" else 1)}
            clock[0] += measurement["wall_s"]
            rows.append(make_row(config, measurement, env))
    return rows


# fraction of perfect scaling on 2 and 4 ranks, per model (plausible, not measured): a model with many
# weights per image (VGG's and AlexNet's fully connected layers) waits longer for its all-reduce
SCALING = {"resnet50": (0.96, 0.93), "vgg16": (0.86, 0.75), "alexnet_paper": (0.79, 0.64)}


def scaling_rows(rng: random.Random, gpu: str, spec: dict, env: dict, clock: list, single: list[dict]) -> list[dict]:
    """Data-parallel training on 2 and 4 ranks (``--world-size``), torch, bf16, batch 64 per rank: each
    one-rank row's images/s times the ranks times a plausible efficiency (lower on the A100, whose
    links are slower)."""
    rows = []
    for base in single:
        if not (base["status"] == "ok" and base["mode"] == "train" and base["dtype"] == "bf16"
                and base["batch_size"] == 64 and base["backend"] == "torch" and base["name"] in SCALING):
            continue
        for ranks, efficiency in zip((2, 4), SCALING[base["name"]]):
            efficiency *= (1.0 if "H200" in gpu else 0.95) * rng.uniform(0.99, 1.01)
            config = {k: base[k] for k in ("kind", "name", "shape", "backend", "mode", "dtype", "batch_size",
                                           "memory_format", "input_size", "device", "protocol")} | {"world_size": ranks}
            timing = times(rng, base["device_ms"] / efficiency, 12, 0.008)
            measurement = {"started_at": time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime(clock[0])),
                           "wall_s": round(rng.uniform(20, 45), 3), "status": "ok", **timing,
                           "timing_method": "events", "host_ms": timing["device_ms"] * 0.99,
                           "views_per_image": 1, "peak_memory_bytes": int(base["peak_memory_bytes"] * 1.08),
                           "grad_rel_error": 1e-6 * rng.uniform(0.5, 3.0), "tolerance": MODEL_TOLERANCE["fp32"],
                           "grad_tolerance": GRAD_TOLERANCE["fp32"],
                           "message": f"DDP: {ranks} ranks, nccl; check: one eager fp32 step on {ranks} ranks vs one "
                                      "process on the concatenated batch (eval mode)"}
            clock[0] += measurement["wall_s"]
            row = make_row(config, measurement, env)
            row["scaling_efficiency"] = scaling_efficiency(row, [base])
            rows.append(row)
    return rows


def main() -> None:
    rng = random.Random(20250101)
    scaling = random.Random(18)  # its own draws: the rows made before it stay as they were
    rows = []
    for index, (gpu, spec) in enumerate(GPUS.items()):
        run_id = f"synthetic-{spec['slug']}-20250101T0{index}0000"
        env = environment(gpu, spec, run_id)
        clock = [1735689600.0 + index * 86400]
        single = model_rows(rng, gpu, spec, env, clock)
        rows += single
        rows += kernel_rows(rng, gpu, spec, env, clock)
        rows += protocol_rows(rng, gpu, env, clock, single)
        rows += scaling_rows(scaling, gpu, spec, env, clock, single)
    predictions = random.Random(15)  # the inspector's predicted times: measured over 0.7x to 2.6x
    for row in rows:
        if row["kind"] == "kernel" and row["backend"] == "triton" and row["status"] == "ok":
            row["predicted_ms"] = row["device_ms"] / predictions.uniform(0.7, 2.6)
    OUT.unlink(missing_ok=True)
    with ResultsWriter(OUT) as writer:
        for row in rows:
            writer.write(row)
    print(f"{len(rows)} synthetic rows -> {OUT}")


if __name__ == "__main__":
    main()

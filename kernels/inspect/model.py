"""From a launch's compiled code to its predicted time on one GPU: occupancy, the two floors,
the latency check and the prediction.

Per launch (``predict_launch``):

* **occupancy**: CTAs resident per SM, the fewest that registers (65,536 per SM, allocated per
  warp in units of 256), shared memory, warps (64) and CTAs (32) allow;
* **memory floor**: the bytes it moves ÷ the copy bandwidth. Per op call the bytes are the
  kernel contract's (``bench.ops``' ``bytes_moved``); per launch, each tensor argument once;
* **issue floor**: dynamic warp-instructions ÷ (SMs × 4 per clock × SM clock): every SM's four
  schedulers each issue one warp-instruction a clock at best;
* **L1 floor**: the 128-byte lines the global loads touch ÷ one line per clock per SM (a warp's
  access costs a line for each distinct line it touches; a coalesced 128-bit load, four). The
  lanes' addresses are evaluated from the launch's arguments where the Triton IR says how
  (:func:`binary.load_addresses`), so a gather along a runtime stride counts the lines it really
  touches; where it does not, the load's layout is taken as unit-stride;
* **tensor floor**: the tensor-core multiply-adds the SASS issues ÷ the architecture's dense rate;
* **latency**: a warp waits one memory latency per round of loads it cannot overlap (each
  iteration of a loop that loads with plain ``LDG``; a pipelined loop of async copies waits once
  per ``num_stages - 1`` iterations), and issues its own instructions at best one per
  ``DEPENDENT_ISSUE_CYCLES`` on its own or one per clock shared with the warps of its scheduler.
  A CTA's time is the longer of the two; the grid runs in ``ceil(CTAs / (SMs × resident))`` waves;
* **tail**: the code only the last-arriving program of a split reduction runs (after the arrival
  counter's atomic, :func:`binary.last_arrival_tail`) is one program's path after the waves, not
  work of every program;
* **Little's law**: bytes in flight per SM (resident warps × the bytes one warp loads per round)
  against bandwidth × latency ÷ SMs; when short, the memory floor is scaled up by the shortfall.

The prediction is the largest of these (the floors are lower bounds; latency and occupancy enter
through the wave term and Little's law). What it leaves out is in the README ("Kernel inspector").
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from .binary import (Binary, instruction_class, l1_access, lanes_at, last_arrival_tail, load_addresses, load_lanes,
                     loop_trips, loops, mma_fmas, width_bits)


@dataclasses.dataclass(frozen=True)
class Arch:
    """One GPU's figures; every one with its source."""

    name: str
    gpu: str
    sms: int
    clock_ghz: float
    dram_gbps: float  # datasheet
    copy_gbps: float  # achievable copy bandwidth, when no measured row is given
    copy_source: str
    registers_per_sm: int = 65536
    max_warps_per_sm: int = 64
    max_ctas_per_sm: int = 32
    shared_memory_per_sm: int = 228 * 1024
    dense_fma_per_clock_per_sm: dict = dataclasses.field(default_factory=dict)  # by input dtype
    memory_latency_cycles: int = 600
    sources: tuple = ()


# The H200 copy kernel reached 4,254 GB/s of 4,800 (results/h200, 2026-11-28): 0.886. No A100 has
# been measured here, so its achievable copy is taken as the same fraction of its datasheet figure.
_COPY_FRACTION = 4254.3 / 4800

ARCHS = {
    "sm_90a": Arch(
        name="sm_90a", gpu="H200 SXM", sms=132, clock_ghz=1.98, dram_gbps=4800, copy_gbps=4254.3,
        copy_source="measured: copy_bandwidth_gbps of results/h200/2026-11-28-conv2d-device-check-bf16.jsonl",
        shared_memory_per_sm=228 * 1024,
        # dense bf16/fp16 989 TFLOPS, tf32 495 (H100/H200 SXM datasheet) at 132 SMs x 1.83 GHz:
        # 2048 and 1024 multiply-adds per SM per clock
        dense_fma_per_clock_per_sm={"bf16": 2048, "fp16": 2048, "tf32": 1024},
        sources=("NVIDIA H200 Tensor Core GPU datasheet: 4.8 TB/s HBM3e, 989 TFLOPS dense BF16, 495 TF32",
                 "NVIDIA H100 whitepaper: 132 SMs (SXM5), 1.98 GHz max boost, 228 KiB shared memory per SM, "
                 "65,536 registers, 64 warps and 32 CTAs per SM",
                 "HBM latency ~600 cycles: https://fp4-site.pages.dev/silicon/gpu-memory-hierarchy/ (H100)")),
    "sm_80": Arch(
        name="sm_80", gpu="A100 SXM 80GB", sms=108, clock_ghz=1.41, dram_gbps=2039,
        copy_gbps=round(2039 * _COPY_FRACTION, 1),
        copy_source="datasheet 2,039 GB/s x 0.886 (the fraction of its datasheet figure the H200 copy reached)",
        shared_memory_per_sm=164 * 1024,
        # dense bf16/fp16 312 TFLOPS, tf32 156 at 108 SMs x 1.41 GHz: 1024 and 512 per SM per clock
        dense_fma_per_clock_per_sm={"bf16": 1024, "fp16": 1024, "tf32": 512},
        sources=("NVIDIA A100 datasheet: 2,039 GB/s (80GB SXM), 312 TFLOPS dense BF16, 156 TF32",
                 "NVIDIA A100 whitepaper: 108 SMs, 1.41 GHz boost, 164 KiB shared memory per SM, 65,536 "
                 "registers, 64 warps and 32 CTAs per SM",
                 "HBM latency taken as the H100's ~600 cycles (not measured on an A100)")),
}

_ARCH_OF_GPU = {"H100": "sm_90a", "H200": "sm_90a", "A100": "sm_80"}


def arch_of_gpu(device_name: str) -> str | None:
    """The architecture of a results row's ``device_name`` (``NVIDIA H200`` -> ``sm_90a``), if known."""
    return next((arch for gpu, arch in _ARCH_OF_GPU.items() if gpu in device_name), None)


SCHEDULERS_PER_SM = 4  # each issues one warp-instruction a clock
DEPENDENT_ISSUE_CYCLES = 4  # a warp alone: an ALU result is ready ~4 cycles after issue (Ampere/Hopper)
REGISTER_ALLOCATION_UNIT = 256  # registers are allocated per warp in units of 256
# The L1 floor counts one 128-byte line a clock per SM: 128 B/clock/SM, 33 TB/s over an H100's
# 132 SMs at 1.98 GHz (NVIDIA's A100 and H100 whitepapers' L1/shared-memory bandwidth), and a
# line for each distinct line an access touches. NVIDIA's description of the L1TEX pipeline (4
# lines' tags a wavefront, binary.l1_access) makes a scattered access up to 4x cheaper; that
# figure is reported beside it (l1_wavefront_floor_ms) but not predicted with: on the H200 rows
# of results/ it calibrates worse (README, "Kernel inspector"); a GPU measurement of a scattered
# load would decide.
L1_LINES_PER_CLOCK = 1


def resident_ctas(binary: Binary, arch: Arch) -> int:
    """CTAs per SM: the fewest that registers, shared memory, warps and the CTA limit allow."""
    warps = binary.num_warps
    per_warp = math.ceil(max(binary.registers, 1) * 32 / REGISTER_ALLOCATION_UNIT) * REGISTER_ALLOCATION_UNIT
    limits = [arch.registers_per_sm // (per_warp * warps), arch.max_warps_per_sm // warps, arch.max_ctas_per_sm]
    if binary.shared_memory_bytes:
        limits.append(arch.shared_memory_per_sm // binary.shared_memory_bytes)
    return max(0, min(limits))


def _mma_dtype(op: str) -> str:
    return "tf32" if "TF32" in op else ("fp16" if "F16" in op.replace("BF16", "") else "bf16")


def execution(binary: Binary, args: dict, grid: tuple[int, int, int]) -> dict:
    """Dynamic counts over the launch grid: per-warp instructions, global loads and stores by
    width (warp-instructions; loads also by the dtype they load), the 128-byte lines they
    touch and the L1 wavefronts they take, async copies, tensor-core multiply-adds, barriers,
    memory rounds per warp, bytes in flight per warp, and every loop's body and mean trip count."""
    programs = grid[0] * grid[1] * grid[2]
    trips_by_line = loop_trips(binary.ttir, args, grid)
    sass_loops = loops(binary.instructions)
    for lp in sass_loops:
        lp["trips"] = trips_by_line.get(lp["line"])
        lp["matched"] = lp["trips"] is not None
        if lp["trips"] is None:
            lp["trips"] = np.ones(programs, dtype=np.int64)  # a loop the TTIR does not explain runs once
    tail = last_arrival_tail(binary.instructions)
    nests: dict[tuple, list[dict]] = {}  # instructions by the loops around them, and whether in the tail
    for ins in binary.instructions:
        nest = tuple(i for i, lp in enumerate(sass_loops) if lp["start"] <= ins["addr"] <= lp["end"])
        in_tail = tail is not None and tail[0] <= ins["addr"] <= tail[1]
        nests.setdefault((nest, in_tail), []).append(ins)
    lanes = load_lanes(binary.ttgir, load_addresses(binary.ttir, args, grid))
    run = {"programs": programs, "per_warp_instructions": np.zeros(programs), "global_loads": {},
           "global_loads_by_dtype": {}, "global_stores": {}, "l1_lines": 0.0, "l1_wavefronts": 0.0,
           "async_copies": 0.0, "tensor_fma": {},
           "barriers": 0.0, "rounds": np.zeros(programs), "bytes_in_flight_per_warp": 0,
           "tail_instructions": 0.0, "tail_rounds": 0.0}
    for (nest, in_tail), instructions in nests.items():
        times = np.prod([sass_loops[i]["trips"] for i in nest], axis=0) if nest else np.ones(programs)
        if in_tail:
            # the last-arriving program's alone, after the others: its path, not the grid's work
            trips = float(np.max(times))
            loaded = sum(instruction_class(ins["op"]) in ("global_load", "async_copy", "tma") for ins in instructions)
            run["tail_instructions"] += trips * len(instructions)
            run["tail_rounds"] += trips if loaded else 0.0
            continue
        run["per_warp_instructions"] += times * len(instructions)
        total = float(np.sum(times)) * binary.num_warps  # each instruction's warp-executions over the grid
        loaded, pipelined = 0, False
        for ins in instructions:
            kind, bits = instruction_class(ins["op"]), width_bits(ins["op"])
            if kind in ("global_load", "global_store"):
                table = run["global_loads" if kind == "global_load" else "global_stores"]
                table[bits] = table.get(bits, 0.0) + total
            load = lanes_at(lanes, ins["line"]) if kind in ("global_load", "async_copy") else None
            if kind == "global_load":
                dtype = load["dtype"] if load else "unknown"
                table = run["global_loads_by_dtype"].setdefault(dtype, {})
                table[bits] = table.get(bits, 0.0) + total
            if kind in ("global_load", "async_copy"):
                lines, wavefronts = l1_access(load, bits)
                run["l1_lines"] += total * lines
                run["l1_wavefronts"] += total * wavefronts
            if kind in ("global_load", "async_copy", "tma"):
                loaded += 32 * bits // 8
                pipelined |= kind != "global_load"
            if kind == "async_copy":
                run["async_copies"] += total
            elif kind == "tensor_core":
                fmas = mma_fmas(ins["op"]) / (4 if ins["op"].startswith("HGMMA") else 1)  # a warpgroup shares HGMMA
                dtype = _mma_dtype(ins["op"])
                run["tensor_fma"][dtype] = run["tensor_fma"].get(dtype, 0.0) + fmas * total
            elif kind == "barrier":
                run["barriers"] += total
        if loaded:
            # a nest's loads are one round a warp waits for; a pipelined one waits once per
            # num_stages - 1 iterations, with that many rounds in flight
            overlap = max(1, binary.num_stages - 1) if pipelined else 1
            run["rounds"] += times / overlap
            run["bytes_in_flight_per_warp"] = max(run["bytes_in_flight_per_warp"], loaded * overlap)
    run["warp_instructions"] = float(run["per_warp_instructions"].sum()) * binary.num_warps
    run["loops"] = [{"line": lp["line"], "body_instructions": sum(lp["start"] <= i["addr"] <= lp["end"]
                                                                  for i in binary.instructions),
                     "mean_trips": float(np.mean(lp["trips"])), "matched": lp["matched"]} for lp in sass_loops]
    return run


def predict_launch(binary: Binary, run: dict, tensor_bytes: int, arch: Arch, copy_gbps: float) -> dict:
    """Floors, latency and the predicted time (ms) of one launch from :func:`execution`'s counts."""
    clock = arch.clock_ghz * 1e9
    resident = resident_ctas(binary, arch)
    warps_per_sm = resident * binary.num_warps
    issue_s = run["warp_instructions"] / (arch.sms * SCHEDULERS_PER_SM * clock)
    memory_s = tensor_bytes / (copy_gbps * 1e9)
    l1_s = run["l1_lines"] / (arch.sms * L1_LINES_PER_CLOCK * clock)
    l1_wavefront_s = run["l1_wavefronts"] / (arch.sms * clock)
    tensor_s = sum(fma / (arch.sms * arch.dense_fma_per_clock_per_sm[dtype] * clock)
                   for dtype, fma in run["tensor_fma"].items())
    latency_s_per_round = arch.memory_latency_cycles / clock
    needed_per_sm = copy_gbps * 1e9 * latency_s_per_round / arch.sms
    in_flight_per_sm = warps_per_sm * run["bytes_in_flight_per_warp"]
    littles_s = memory_s * max(1.0, needed_per_sm / in_flight_per_sm) if in_flight_per_sm else memory_s
    if resident:
        warps_per_scheduler = max(1.0, warps_per_sm / SCHEDULERS_PER_SM)
        per_warp = run["per_warp_instructions"]
        cta_s = np.maximum(warps_per_scheduler * per_warp / clock,
                           run["rounds"] * latency_s_per_round + per_warp * DEPENDENT_ISSUE_CYCLES / clock)
        slots = arch.sms * resident
        waves = math.ceil(run["programs"] / slots)
        wave_s = float(np.mean(cta_s)) * waves  # programs of one launch take about the same time
        # then the last-arriving program finishes alone (a split reduction's merge)
        tail_s = (run["tail_rounds"] * arch.memory_latency_cycles
                  + run["tail_instructions"] * DEPENDENT_ISSUE_CYCLES) / clock
        wave_s += tail_s
    else:
        waves, wave_s, tail_s = 0, math.inf, 0.0  # does not fit on an SM: cannot launch
    predicted_s = max(memory_s, littles_s, issue_s, l1_s, tensor_s, wave_s)
    loads = run["global_loads"]
    return {"registers": binary.registers, "spills": binary.spill_bytes,
            "shared_memory_bytes": binary.shared_memory_bytes, "num_warps": binary.num_warps,
            "resident_ctas_per_sm": resident, "warps_per_sm": warps_per_sm, "waves": waves,
            "load_128bit_fraction": loads.get(128, 0) / sum(loads.values()) if loads else None,
            "global_loads_by_width": {str(k): v for k, v in sorted(loads.items())},
            "global_loads_by_dtype": {dtype: {str(k): v for k, v in sorted(widths.items())}
                                      for dtype, widths in run["global_loads_by_dtype"].items()},
            "global_stores_by_width": {str(k): v for k, v in sorted(run["global_stores"].items())},
            "async_copies": run["async_copies"], "tensor_core_instructions": binary.counts()["tensor_core"],
            "barriers": run["barriers"], "warp_instructions": run["warp_instructions"],
            "loops": run["loops"], "sass": binary.counts(), "bytes_moved": tensor_bytes,
            "bytes_in_flight_per_sm": in_flight_per_sm, "bytes_in_flight_needed_per_sm": needed_per_sm,
            "memory_floor_ms": memory_s * 1e3, "issue_floor_ms": issue_s * 1e3, "l1_floor_ms": l1_s * 1e3,
            "l1_wavefront_floor_ms": l1_wavefront_s * 1e3, "tensor_floor_ms": tensor_s * 1e3,
            "latency_bound_ms": littles_s * 1e3, "waves_ms": wave_s * 1e3, "tail_ms": tail_s * 1e3, "predicted_ms": predicted_s * 1e3}

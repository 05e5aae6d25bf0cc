"""What one configuration runs: a whole model, or one hot-path op at one shape.

Each ``run_*`` builds the workload for its backend, checks it against the fp32 reference
(the eager model, or the torch op in float64), times it and returns the measurement columns
of a row. Backends: ``torch`` (eager; cuDNN on a GPU), ``triton`` (``kernels.patch`` /
``kernels.<op>``), ``compile`` (``torch.compile`` of the eager path). A backend that cannot run
here raises :class:`Skip` with the reason: it is never silently replaced by another.
"""

from __future__ import annotations

import contextlib
import copy
import os

import torch
import torch.nn.functional as F

from .timing import time_function
from .worker import phase

AUTOCAST = {"fp16": torch.float16, "bf16": torch.bfloat16}

# Whole-model tolerance on ||out - ref|| / ||ref|| against the fp32 eager model (logits, and
# in training the gradients): errors compound over tens of layers, so looser than the
# per-kernel bounds of the contract.
MODEL_TOLERANCE = {"fp32": 1e-3, "tf32": 1e-2, "fp16": 3e-2, "bf16": 1e-1}
# Gradients of a ReLU network are discontinuous at zero: one activation that rounds to the
# other side of zero (a legitimate difference in summation order) moves the gradient of a
# small late layer by ~1e-3 (seen: resnet18 at 72 px, 18 values per channel in layer4), so
# gradients get a looser bound. A wrong formula is off by far more.
GRAD_TOLERANCE = {"fp32": 1e-2, "tf32": 3e-2, "fp16": 1e-1, "bf16": 2e-1}
# Per-op tolerance against float64 (../shared/kernel-contract.md).
KERNEL_TOLERANCE = {"fp32": 1e-5, "tf32": 5e-4, "fp16": 2e-3, "bf16": 1.6e-2}
STORAGE_DTYPE = {"fp32": torch.float32, "tf32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def tolerance(config: dict, table: dict) -> float | None:
    """Fast paths are held to the table; torch's own low-precision rows are the baseline, so
    their error against the fp32/float64 reference is recorded but judges nothing."""
    return None if config["backend"] == "torch" else table[config["dtype"]]


def check_phase(backend: str, device: torch.device) -> str:
    """The check makes the first calls of the backend, which compile it (Triton: on a GPU)."""
    compiles = backend == "compile" or backend == "triton" and device.type == "cuda"
    return "compiling, checking" if compiles else "checking"


class Skip(Exception):
    """This backend cannot run this configuration here; the message says why."""


@contextlib.contextmanager
def precision(dtype: str):
    """tf32 is its own setting: fp32 rows run IEEE fp32 on cuDNN and cuBLAS, tf32 rows do not."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    allow = dtype == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = allow
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def autocast(device: torch.device, dtype: str):
    if dtype in AUTOCAST:
        return torch.autocast(device.type, dtype=AUTOCAST[dtype])
    return contextlib.nullcontext()


def triton_available(device: torch.device) -> None:
    if device.type != "cuda" and os.environ.get("TRITON_INTERPRET") != "1":
        raise Skip("triton needs a CUDA GPU, or TRITON_INTERPRET=1 to run its interpreter on the CPU")
    try:
        import triton  # noqa: F401
    except ImportError:
        raise Skip("triton is not installed") from None


def memory_format_of(name: str):
    return torch.channels_last if name == "channels_last" else torch.contiguous_format


def relative_error(out: torch.Tensor, ref: torch.Tensor) -> float:
    out, ref = out.detach().double().cpu(), ref.detach().double().cpu()
    if not torch.isfinite(out).all():
        return float("nan")
    denominator = ref.norm().item()
    return (out - ref).norm().item() / denominator if denominator else (out - ref).norm().item()


def _logits(output):
    return output[0] if isinstance(output, tuple) else output


def _loss(output, labels):
    outputs = list(output) if isinstance(output, tuple) else [output]
    return sum(F.cross_entropy(o.float(), labels) for o in outputs if o is not None)


def _disable_dropout(model: torch.nn.Module) -> dict:
    saved = {}
    for m in model.modules():
        if isinstance(m, torch.nn.modules.dropout._DropoutNd):
            saved[m], m.p = m.p, 0.0
    return saved


def _grads(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.grad.detach().float().flatten().cpu() for p in model.parameters() if p.grad is not None])


def build_backend(model: torch.nn.Module, backend: str, device: torch.device) -> torch.nn.Module:
    if backend == "torch":
        return model
    if backend == "compile":
        return compile_fresh(model)
    if backend == "triton":
        triton_available(device)
        import kernels

        if not hasattr(kernels, "patch"):
            raise Skip("kernels.patch is not implemented yet: this build has no Triton kernels")
        return kernels.patch(model)
    raise ValueError(f"unknown backend {backend!r}")


def compile_fresh(fn):
    """``torch.compile`` specialised to this configuration's shapes.

    One worker runs many configurations: without a reset, dynamo would turn shapes dynamic
    after the second one and, past its recompile limit, quietly run the function eagerly -
    timing eager under the name of compile.
    """
    torch._dynamo.reset()
    return torch.compile(fn, dynamic=False)


def _forward_backward(model, x, labels, dtype: str, device, training: bool):
    """Logits and, in training, the flat gradient vector of one pass under ``dtype``."""
    model.train(training)
    with precision(dtype):
        with autocast(device, dtype):
            out = model(x)
        if training:
            _loss(out, labels).backward()
    grads = _grads(model) if training else None
    model.zero_grad(set_to_none=True)
    return _logits(out).float(), grads


def check_model(config: dict, model, reference, x, labels, device) -> dict:
    """Logits (and in training, gradients) of ``model`` under ``config`` vs the fp32 eager model.

    In fp16/bf16 the bound is the table's or twice the error eager PyTorch itself makes in
    that dtype, whichever is larger: a fast path is held to cuDNN's own standard, not to one
    that cuDNN could not meet (bf16 gradients of a small batch drift by tens of percent).
    """
    training = config["mode"] == "train"
    saved = _disable_dropout(model) | _disable_dropout(reference)  # same function, no random masks
    ref_logits, ref_grads = _forward_backward(reference, x, labels, "fp32", device, training)
    logits, grads = _forward_backward(model, x, labels, config["dtype"], device, training)
    result = {
        "rel_error": relative_error(logits, ref_logits),
        "max_abs_error": (logits - ref_logits).abs().max().item(),
        "top1_agreement": (logits.argmax(1) == ref_logits.argmax(1)).float().mean().item(),
        "tolerance": tolerance(config, MODEL_TOLERANCE),
    }
    if training:
        result["grad_rel_error"] = relative_error(grads, ref_grads)
        result["grad_tolerance"] = tolerance(config, GRAD_TOLERANCE)
    if result["tolerance"] is not None and config["dtype"] in AUTOCAST:
        eager_logits, eager_grads = _forward_backward(reference, x, labels, config["dtype"], device, training)
        result["tolerance"] = max(result["tolerance"], 2 * relative_error(eager_logits, ref_logits))
        if training:
            result["grad_tolerance"] = max(result["grad_tolerance"], 2 * relative_error(eager_grads, ref_grads))
    for m, p in saved.items():
        m.p = p
    return result


def run_model(config: dict, device: torch.device) -> dict:
    import models

    phase("building")
    torch.manual_seed(0)
    fmt = memory_format_of(config["memory_format"])
    eager = models.create(config["name"]).to(device=device, memory_format=fmt)
    reference = copy.deepcopy(eager) if config["backend"] != "torch" or config["dtype"] != "fp32" else None
    model = build_backend(eager, config["backend"], device)
    taken_conv2d_decisions()  # forget earlier rows' decisions: the summary below is this row's
    size, batch = config["input_size"], config["batch_size"]
    x = torch.randn(batch, 3, size, size, device=device).contiguous(memory_format=fmt)
    labels = torch.randint(0, 1000, (batch,), device=device)
    result = {}
    if reference is not None:
        phase(check_phase(config["backend"], device))
        result.update(check_model(config, model, reference, x, labels, device))
        del reference

    if config["mode"] == "infer":
        model.eval()

        def step():
            with torch.inference_mode(), autocast(device, config["dtype"]):
                return model(x)
    else:
        model.train()
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)

        def step():
            optimizer.zero_grad(set_to_none=True)
            with autocast(device, config["dtype"]):
                loss = _loss(model(x), labels)
            loss.backward()
            optimizer.step()

    with precision(config["dtype"]):
        timing = measure(step, device, config)
    result.update(timing)
    result["throughput"] = batch / (result["median_ms"] * 1e-3)
    if config["backend"] == "triton":
        result["message"] = conv2d_message(taken_conv2d_decisions(), "counts")
    return result


def measure(fn, device: torch.device, config: dict) -> dict:
    """Timing plus peak memory of the timed region (the model's weights and state included)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    else:
        reset_peak_rss()
    result = time_function(fn, device, warmup=config["warmup"], repeats=config["repeats"],
                           min_time_s=config["min_time_s"], flush_l2=config.get("flush_l2", False),
                           cuda_graphs=config.get("cuda_graphs", False), on_phase=phase)
    if device.type == "cuda":
        result["peak_memory_bytes"] = torch.cuda.max_memory_allocated(device)
        result["peak_reserved_bytes"] = torch.cuda.max_memory_reserved(device)
    else:
        result["peak_memory_bytes"] = peak_rss_bytes()
    return result


def reset_peak_rss() -> None:
    """Linux resets a process's peak resident size when 5 is written to clear_refs."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def peak_rss_bytes() -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


# --- which conv2d path ran ---------------------------------------------------------------------
# kernels.conv2d picks a path per direction (triton-depthwise, triton-grouped or torch): measured
# against cuDNN on a GPU unless a policy is forced. Rows say which paths ran, in one line.

CONV2D_DIRECTIONS = ("forward", "input_grad", "weight_grad")


def dispatch_policy(op_name: str, backend: str):
    """A triton conv2d row measures the Triton kernels themselves, never cuDNN under their name:
    the check and the timing run under ``kernels.conv2d_dispatch("triton")``."""
    if op_name == "conv2d" and backend == "triton":
        import kernels

        return kernels.conv2d_dispatch("triton")
    return contextlib.nullcontext()


def taken_conv2d_decisions() -> list[dict]:
    """The conv2d dispatcher's decisions since the last call (then forgotten); [] if none could be taken."""
    import sys

    kernels = sys.modules.get("kernels")
    return kernels.conv2d_decisions(clear=True) if hasattr(kernels, "conv2d_decisions") else []


def _times(decision: dict) -> str:
    """'triton 0.123 ms, torch 0.101 ms' (Triton first), 'cached: ...', or why nothing was timed."""
    times = sorted((decision.get("times_ms") or {}).items(), key=lambda item: item[0] == "torch")
    if not times:
        return decision["source"]
    text = ", ".join(f"{path.split('-')[0]} {ms:.3f} ms" for path, ms in times)
    return f"cached: {text}" if decision["source"] == "cache" else text


def conv2d_message(decisions: list[dict], how: str) -> str | None:
    """The decisions in one line, directions in order (None if there are none).

    ``how``: "paths" (a kernel row's own: ``paths: forward=triton-grouped; ...``), "auto" (the
    dispatcher's own choice with the times it measured: ``auto: forward=torch (triton 0.123 ms,
    torch 0.101 ms); ...``), "counts" (a model row: shapes per path, ``conv2d shapes: forward
    triton-grouped 16, torch 2; ...``)."""
    parts = []
    for direction in CONV2D_DIRECTIONS:
        mine = [d for d in decisions if d["direction"] == direction]
        if not mine:
            continue
        if how == "paths":
            parts.append(f"{direction}=" + "/".join(sorted({d['path'] for d in mine})))
        elif how == "auto":
            parts.append(f"{direction}=" + ", ".join(f"{d['path']} ({_times(d)})" for d in mine))
        else:
            paths = [d["path"] for d in mine]
            parts.append(f"{direction} " + ", ".join(f"{p} {paths.count(p)}" for p in sorted(set(paths))))
    label = {"paths": "paths", "auto": "auto", "counts": "conv2d shapes"}[how]
    return f"{label}: " + "; ".join(parts) if parts else None


def auto_conv2d_choice(op, tensors: dict, kwargs: dict, grad_names: list, dtype: str) -> str | None:
    """Run conv2d once more under the default "auto" policy (forward, and backward when the row
    measures it) and say what the dispatcher chose, with the times it measured."""
    import kernels

    taken_conv2d_decisions()
    run = {k: v.detach().requires_grad_(k in grad_names) for k, v in tensors.items()}
    with precision(dtype):
        out = _call(op.name, kernels.conv2d, run, kwargs, False)
        if grad_names:
            torch.autograd.grad(out, [run[k] for k in grad_names], torch.randn_like(out))
    return conv2d_message(taken_conv2d_decisions(), "auto")


# --- kernels --------------------------------------------------------------------------------

def kernel_function(op_name: str, backend: str, device: torch.device):
    from .kernel_cases import OPS

    reference = OPS[op_name].reference
    if backend == "torch":
        return reference
    if backend == "compile":
        # The benchmark replays one backward graph many times (retain_graph=True), which
        # donated buffers forbid; donation saves memory, not time.
        import torch._functorch.config as functorch_config

        if hasattr(functorch_config, "donated_buffer"):
            functorch_config.donated_buffer = False
        return compile_fresh(reference)
    triton_available(device)
    import kernels

    if not hasattr(kernels, op_name):
        raise Skip(f"kernels.{op_name} is not implemented yet")
    return getattr(kernels, op_name)


def _call(op_name: str, fn, tensors: dict, kwargs: dict, training: bool):
    if op_name == "bn_relu":
        t = dict(tensors)
        return fn(t.pop("x"), t.pop("weight"), t.pop("bias"), t.pop("running_mean"), t.pop("running_var"),
                  training=training, residual=t.pop("residual", None), **kwargs)
    if op_name == "squeeze_excite":
        t = dict(tensors)
        return fn(t.pop("x"), t.pop("w1"), t.pop("b1"), t.pop("w2"), t.pop("b2"),
                  residual=t.pop("residual", None), **kwargs)
    return fn(**tensors, **kwargs)


def _differentiable(op_name: str, tensors: dict) -> dict:
    skip = {"running_mean", "running_var"}
    return {k: v for k, v in tensors.items() if k not in skip and v.is_floating_point()}


def check_kernel(op, fn, tensors, kwargs, grad_names, training, dtype, generator, device) -> dict:
    """Output and gradients against the torch op in float64 on the CPU, on the same inputs
    (each side gets its own statistics buffers, since training updates them in place)."""
    ref_tensors = {k: v.detach().double().cpu().requires_grad_(k in grad_names) for k, v in tensors.items()}
    ref_out = _call(op.name, op.reference, ref_tensors, kwargs, training)
    check_tensors = {k: v.detach().clone().requires_grad_(k in grad_names) for k, v in tensors.items()}
    with precision(dtype):  # the backward too: fp32 rows run no tf32 in either direction
        out = _call(op.name, fn, check_tensors, kwargs, training)
        result = {"rel_error": relative_error(out, ref_out),
                  "max_abs_error": (out.detach().double().cpu() - ref_out.detach()).abs().max().item()}
        if grad_names:
            dy = torch.randn(out.shape, generator=generator).to(device=device, dtype=out.dtype)
            grads = torch.autograd.grad(out, [check_tensors[k] for k in grad_names], dy)
            ref_grads = torch.autograd.grad(ref_out, [ref_tensors[k] for k in grad_names], dy.double().cpu())
            result["grad_rel_error"] = max(relative_error(g, r) for g, r in zip(grads, ref_grads))
    return result


def run_kernel(config: dict, device: torch.device) -> dict:
    from .kernel_cases import OPS

    phase("building")
    op = OPS[config["name"]]
    case, mode, dtype = config["case"], config["mode"], config["dtype"]
    fn = kernel_function(op.name, config["backend"], device)
    training = mode != "infer"
    generator = torch.Generator().manual_seed(0)
    tensors, kwargs = op.make_inputs(case, STORAGE_DTYPE[dtype], device, memory_format_of(config["memory_format"]),
                                     generator)
    grad_names = list(_differentiable(op.name, tensors)) if mode == "train-backward" else []
    for name in grad_names:
        tensors[name].requires_grad_(True)

    result = {}
    taken_conv2d_decisions()  # forget earlier rows' decisions: the message below is this row's
    with dispatch_policy(op.name, config["backend"]):
        if config["backend"] != "torch":  # the eager op is the baseline, not under test
            phase(check_phase(config["backend"], device))
            result.update(check_kernel(op, fn, tensors, kwargs, grad_names, training, dtype, generator, device))
            result["tolerance"] = tolerance(config, KERNEL_TOLERANCE)

        with precision(dtype):
            if mode == "train-backward":
                out = _call(op.name, fn, tensors, kwargs, training)
                dy = torch.randn_like(out)
                inputs = [tensors[k] for k in grad_names]

                def step():
                    return torch.autograd.grad(out, inputs, dy, retain_graph=True)
            else:
                def step():
                    return _call(op.name, fn, tensors, kwargs, training)
            result.update(measure(step, device, config))
    if op.name == "conv2d" and config["backend"] == "triton":
        messages = [conv2d_message(taken_conv2d_decisions(), "paths")]
        if device.type == "cuda":
            phase("timing the dispatcher's own choice")
            try:
                messages.append(auto_conv2d_choice(op, tensors, kwargs, grad_names, dtype))
            except Exception as error:  # noqa: BLE001 - the row measured the Triton path; say what failed
                from .worker import one_line

                messages.append(f"auto: failed ({one_line(error)})")
        result["message"] = " | ".join(m for m in messages if m) or None

    element_size = torch.empty((), dtype=STORAGE_DTYPE[dtype]).element_size()
    result["bytes_moved"] = op.bytes_moved(case, mode, element_size)
    result["flops"] = op.flops(case, mode)
    seconds = result["median_ms"] * 1e-3
    result["achieved_gbps"] = result["bytes_moved"] / seconds / 1e9
    result["achieved_tflops"] = result["flops"] / seconds / 1e12
    return result

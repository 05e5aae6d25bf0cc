"""What one configuration runs: a whole model, or one hot-path op at one shape.

Each ``run_*`` builds the workload for its backend (:mod:`bench.backends`), checks it against
the fp32 reference (the eager model, or the op's torch reference in float64, :mod:`bench.ops`),
times it and returns the measurement columns of a row. Errors are ``kernels.relative_error``;
kernel rows are held to the kernel contract's ``kernels.TOLERANCE``, whole models to the looser
bounds here.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time

import torch
import torch.nn.functional as F

from .backends import get_backend
from .errors import Skip, one_line
from .ops import get_op
from .ops.conv2d import decisions_message, taken_decisions
from .progress import phase
from .timing import CUPTI, EVENTS, GRAPH, time_function

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
STORAGE_DTYPE = {"fp32": torch.float32, "tf32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def tolerance(config: dict, table: dict) -> float | None:
    """Fast paths are held to the table; torch's own low-precision rows are the baseline, so
    their error against the fp32/float64 reference is recorded but judges nothing."""
    return None if config["backend"] == "torch" else table[config["dtype"]]


@contextlib.contextmanager
def build_timer(result: dict, builds: bool, device: torch.device):
    """``compile_s``: the wall time of the block making a torch.compile workload's first calls
    (forward and, in training, backward), which build it; nothing where the backend builds nothing."""
    started = time.perf_counter()
    yield
    if builds:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        result["compile_s"] = round(time.perf_counter() - started, 3)


def check_phase(backend: str, device: torch.device) -> str:
    """The check makes the backend's first calls, which compile it on a backend that compiles here."""
    return "compiling, checking" if get_backend(backend).compiles(device) else "checking"


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
    """Without autocast's weight-cast cache: a CUDA graph cannot capture it (PyTorch's CUDA graphs
    notes), and within one step each weight is cast once anyway."""
    if dtype in AUTOCAST:
        return torch.autocast(device.type, dtype=AUTOCAST[dtype], cache_enabled=False)
    return contextlib.nullcontext()


def memory_format_of(name: str):
    return torch.channels_last if name == "channels_last" else torch.contiguous_format


def worst(errors) -> float:
    """The largest error, NaN if any is NaN (``max`` keeps whichever of NaN and a number comes first)."""
    errors = list(errors)
    return math.nan if any(math.isnan(e) for e in errors) else max(errors)


def _logits(output):
    return output[0] if isinstance(output, tuple) else output


def classification_loss(output, labels):
    """Mean cross-entropy of the logits, summed over a model's outputs (auxiliary heads included)."""
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


def _forward_backward(model, x, labels, dtype: str, device, training: bool):
    """Logits and, in training, the flat gradient vector of one pass under ``dtype``."""
    model.train(training)
    with precision(dtype):
        with autocast(device, dtype):
            out = model(x)
        if training:
            classification_loss(out, labels).backward()
    grads = _grads(model) if training else None
    model.zero_grad(set_to_none=True)
    return _logits(out).float(), grads


def check_model(config: dict, model, reference, x, labels, device) -> dict:
    """Logits (and in training, gradients) of ``model`` under ``config`` vs the fp32 eager model.

    In fp16/bf16 the bound is the table's or twice the error eager PyTorch itself makes in
    that dtype, whichever is larger: a fast path is held to cuDNN's own standard, not to one
    that cuDNN could not meet (bf16 gradients of a small batch drift by tens of percent).
    """
    from kernels import relative_error  # imports triton, which a row that checks nothing does without

    training = config["mode"] == "train"
    saved = _disable_dropout(model) | _disable_dropout(reference)  # same function, no random masks
    ref_logits, ref_grads = _forward_backward(reference, x, labels, "fp32", device, training)
    built = {}
    with build_timer(built, config["backend"] == "compile", device):
        logits, grads = _forward_backward(model, x, labels, config["dtype"], device, training)
    result = built | {
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


def protocol_network(model: torch.nn.Module, protocol: str, crop: int) -> torch.nn.Module:
    """The network ``protocol`` runs (``models.protocols.network_for``); a skipped row where dense
    evaluation cannot convert the model's head, or where its smallest view is too small for the
    head (a fully connected layer that reads 7x7 features needs an image that gives them)."""
    from models import protocols
    from models.fully_convolutional import NotConvertible

    try:
        network = protocols.network_for(model, protocol)
    except NotConvertible as reason:
        raise Skip(f"dense evaluation: {reason}") from None
    if protocol != "dense":  # every other protocol's views are crops of the model's own input size
        return network
    smallest = min(protocols.view_sizes(protocol, crop))
    try:
        with torch.no_grad():
            copy.deepcopy(network).to("meta").eval()(torch.empty(1, 3, *smallest, device="meta"))
    except (RuntimeError, ValueError) as error:
        raise Skip(f"{protocol} evaluation at input size {crop}: its smallest view ({smallest[0]}x{smallest[1]}) "
                   f"does not fit the network ({one_line(error)})") from None
    return network


def run_model(config: dict, device: torch.device) -> dict:
    import models
    from models.protocols import VIEWS_PER_IMAGE, ProtocolModel, image_size

    phase("building")
    torch.manual_seed(0)
    fmt = memory_format_of(config["memory_format"])
    protocol = config.get("protocol") or "single"
    eager = protocol_network(models.create(config["name"]).to(device=device, memory_format=fmt), protocol,
                             config["input_size"])
    reference = copy.deepcopy(eager) if config["backend"] != "torch" or config["dtype"] != "fp32" else None
    model = get_backend(config["backend"]).model(eager, device)
    if protocol != "single":  # the backend builds the network once; the views are made around it
        model = ProtocolModel(model, protocol, config["input_size"])
        reference = None if reference is None else ProtocolModel(reference, protocol, config["input_size"])
    taken_decisions()  # forget earlier rows' decisions: the summary below is this row's
    batch = config["batch_size"]
    x = torch.randn(batch, 3, *image_size(protocol, config["input_size"]), device=device).contiguous(memory_format=fmt)
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
        step = training_step(model, x, labels, config["dtype"], device)

    with precision(config["dtype"]):
        timing = measure(step, device, config, (GRAPH, EVENTS) if config["mode"] == "infer" else (EVENTS,))
    result.update(timing, views_per_image=VIEWS_PER_IMAGE[protocol])
    if config["backend"] == "triton":
        result["message"] = decisions_message(taken_decisions(), "counts")
    return result


def training_step(model: torch.nn.Module, x: torch.Tensor, labels: torch.Tensor, dtype: str, device: torch.device):
    """The timed training step: SGD with momentum on the model's loss under ``dtype``'s autocast
    (``model`` put in training mode)."""
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)

    def step():
        optimizer.zero_grad(set_to_none=True)
        with autocast(device, dtype):
            loss = classification_loss(model(x), labels)
        loss.backward()
        optimizer.step()

    return step


def measure(fn, device: torch.device, config: dict, methods: tuple[str, ...]) -> dict:
    """Timing plus peak memory of plain calls, the model's weights and state included (on a GPU,
    of the host-time loop: ``bench.timing`` frees its graphs and resets the peak before it).
    ``methods``: how device time may be taken, in order (``bench.timing``), unless the suite's
    ``device_timing`` forces one."""
    if config.get("device_timing", "auto") != "auto":
        methods = (config["device_timing"],)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    else:
        reset_peak_rss()
    result = time_function(fn, device, warmup=config["warmup"], repeats=config["repeats"],
                           min_time_s=config["min_time_s"], max_time_s=config.get("max_time_s", 0.0),
                           flush_l2=config.get("flush_l2", False), methods=methods, on_phase=phase)
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


# --- kernels --------------------------------------------------------------------------------

def check_kernel(op, fn, tensors, kwargs, grad_names, training, dtype, generator, device, *,
                 builds: bool = False) -> dict:
    """Output and gradients of ``fn`` against ``op``'s reference in float64 on the CPU, on the same
    inputs (each side gets its own statistics buffers, since training updates them in place).
    ``builds``: ``fn`` is built by its first calls (torch.compile), timed as ``compile_s``."""
    from kernels import relative_error  # imports triton, which a row that checks nothing does without

    ref_tensors = {k: v.detach().double().cpu().requires_grad_(k in grad_names) for k, v in tensors.items()}
    ref_out = op.call(op.reference, ref_tensors, kwargs, training)
    check_tensors = {k: v.detach().clone().requires_grad_(k in grad_names) for k, v in tensors.items()}
    result = {}
    with precision(dtype):  # the backward too: fp32 rows run no tf32 in either direction
        with build_timer(result, builds, device):
            out = op.call(fn, check_tensors, kwargs, training)
            if grad_names:
                dy = gradient_like(out, generator)
                grads = torch.autograd.grad(out, [check_tensors[k] for k in grad_names], dy)
        result.update(rel_error=relative_error(out, ref_out),
                      max_abs_error=(out.detach().double().cpu() - ref_out.detach()).abs().max().item())
        if grad_names:
            ref_grads = torch.autograd.grad(ref_out, [ref_tensors[k] for k in grad_names], dy.double().cpu())
            result["grad_rel_error"] = worst(relative_error(g, r) for g, r in zip(grads, ref_grads))
    return result


def cross_check(step) -> dict:
    """The same callable timed by Triton's own rulers in this process: ``do_bench`` (CUDA events
    around each call after its own L2 flush) and ``do_bench_cudagraph`` (a replayed graph, no
    flush), medians. The device check compares them with the row's device time."""
    from triton.testing import do_bench, do_bench_cudagraph

    return {"do_bench_ms": do_bench(step, return_mode="median"),
            "do_bench_cudagraph_ms": do_bench_cudagraph(step, return_mode="median")}


def gradient_like(out: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A random output gradient laid out as ``out`` is (channels_last stays channels_last): the check
    and the timed step give the backward the same layout, so an autotuner tunes on the layout it is
    timed on. The values come from ``generator`` on the CPU, the same on every device."""
    return torch.empty_like(out).copy_(torch.randn(out.shape, generator=generator))


def run_kernel(config: dict, device: torch.device) -> dict:
    phase("building")
    op = get_op(config["name"])
    case, mode, dtype, backend = config["case"], config["mode"], config["dtype"], config["backend"]
    fn = get_backend(backend).kernel(op, device)
    training = mode != "infer"
    generator = torch.Generator().manual_seed(0)
    tensors, kwargs = op.make_inputs(case, STORAGE_DTYPE[dtype], device, memory_format_of(config["memory_format"]),
                                     generator)
    grad_names = list(op.differentiable(tensors)) if mode == "train-backward" else []
    for name in grad_names:
        tensors[name].requires_grad_(True)

    result = {}
    with op.policy(backend):
        if backend != "torch":  # the eager op is the baseline, not under test
            from kernels import TOLERANCE

            phase(check_phase(backend, device))
            result.update(check_kernel(op, fn, tensors, kwargs, grad_names, training, dtype, generator, device,
                                       builds=backend == "compile"))
            result["tolerance"] = tolerance(config, TOLERANCE)

        with precision(dtype):
            if mode == "train-backward":
                out = op.call(fn, tensors, kwargs, training)
                dy = gradient_like(out, generator)
                inputs = [tensors[k] for k in grad_names]

                def step():
                    return torch.autograd.grad(out, inputs, dy, retain_graph=True)
            else:
                def step():
                    return op.call(fn, tensors, kwargs, training)
            # One op's calls: a CUDA graph holds them, or CUPTI times their kernels where it cannot.
            result.update(measure(step, device, config, (GRAPH, CUPTI, EVENTS)))
            if config.get("cross_check") and device.type == "cuda":
                result.update(cross_check(step))

    def run_again():
        again = {k: v.detach().requires_grad_(k in grad_names) for k, v in tensors.items()}
        with precision(dtype):
            out = op.call(fn, again, kwargs, training)
            if grad_names:
                torch.autograd.grad(out, [again[k] for k in grad_names], torch.randn_like(out))

    message = op.message(backend, device, run_again)
    if message is not None:
        result["message"] = message
    element_size = torch.empty((), dtype=STORAGE_DTYPE[dtype]).element_size()
    result["bytes_moved"] = op.bytes_moved(case, mode, element_size)
    result["flops"] = op.flops(case, mode)
    return result

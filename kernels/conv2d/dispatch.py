"""The measured dispatcher: which path computes each direction of each convolution shape.

Three paths per direction (forward, input gradient, weight gradient): ``triton-depthwise``
(:mod:`.depthwise`), ``triton-grouped`` (:mod:`.grouped`) and ``torch`` (``F.conv2d`` and
``aten.convolution_backward``: cuDNN on a GPU, and by rule for dense convolution, groups=1).

On a GPU the dispatcher times every candidate once on the call's own tensors (each Triton
candidate autotuned first) and keeps the fastest, so ``kernels.conv2d`` is never slower than
cuDNN on a shape it was tuned on; decisions are cached per GPU and software version in a JSON
file (``KERNELS_CONV2D_CACHE``, default ``~/.cache/classic-cnn-bench/conv2d-dispatch.json``) and
listed by :func:`conv2d_decisions`. Under the Triton interpreter nothing can be timed: groups > 1
takes its Triton path by rule. :func:`conv2d_dispatch` forces a policy ("triton", "torch" or
"auto").
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F
import triton

from .. import _common
from . import depthwise, grouped
from .geometry import Geometry, memory_format


# --- the torch path (cuDNN on a GPU) -------------------------------------------------------------

def _torch_padded(x: torch.Tensor, geo: Geometry) -> torch.Tensor:
    """x with the extra bottom/right row and column of an asymmetric 'same' padding (torch's own
    F.conv2d does the same copy)."""
    top, left, bottom, right = geo.padding
    return x if (bottom, right) == (top, left) else F.pad(x, (0, right - left, 0, bottom - top))


def _torch_forward(x, weight, bias, geo: Geometry):
    return F.conv2d(_torch_padded(x, geo), weight, bias, geo.stride, geo.padding[:2], geo.dilation, geo.groups)


def _torch_backward(dy, x, weight, geo: Geometry, need_dx: bool, need_dw: bool, need_db: bool):
    xp = _torch_padded(x, geo)
    dx, dw, db = torch.ops.aten.convolution_backward(
        dy, xp, weight, [geo.c_out] if need_db else None, list(geo.stride), list(geo.padding[:2]),
        list(geo.dilation), False, [0, 0], geo.groups, [need_dx, need_dw, need_db])
    if dx is not None and xp is not x:
        dx = dx[:, :, :geo.h, :geo.w]
    return dx, dw, db


# --- the dispatcher ------------------------------------------------------------------------------

DIRECTIONS = ("forward", "input_grad", "weight_grad")
POLICIES = ("auto", "triton", "torch")
_POLICY = "auto"


@dataclasses.dataclass
class Decision:
    """Which path computes one direction of one convolution shape, and why."""

    direction: str
    x: tuple
    weight: tuple
    stride: tuple
    padding: tuple
    dilation: tuple
    groups: int
    dtype: str
    layout: str
    tf32: bool
    path: str
    source: str  # "measured" | "cache" (measured earlier on this GPU) | "rule" | "policy"
    times_ms: dict = dataclasses.field(default_factory=dict)
    calls: int = 0

    def key(self) -> str:
        return _key_text(self.direction, self.x, self.weight, self.stride, self.padding, self.dilation,
                         self.groups, self.dtype, self.layout, self.tf32)


def _key_text(direction, x, weight, stride, padding, dilation, groups, dtype, layout, tf32) -> str:
    fmt = lambda t: "x".join(map(str, t))  # noqa: E731
    return (f"{direction} x={fmt(x)} w={fmt(weight)} s={fmt(stride)} p={fmt(padding)} d={fmt(dilation)} "
            f"g={groups} {dtype} {layout}" + (" tf32" if tf32 else ""))


_DECISIONS: dict[tuple, Decision] = {}
_DISK_CACHE: dict[str, dict] | None = None


@contextlib.contextmanager
def conv2d_dispatch(policy: str):
    """Within the block, :func:`conv2d` computes every direction on ``policy``'s paths:
    ``"auto"`` (the default: measured on a GPU, by rule under the interpreter), ``"triton"``
    (always the Triton path: depthwise when each group has one input channel, grouped otherwise,
    dense convolutions included), ``"torch"`` (always F.conv2d / cuDNN)."""
    global _POLICY
    if policy not in POLICIES:
        raise ValueError(f"policy: expected one of {', '.join(map(repr, POLICIES))}, got {policy!r}")
    saved, _POLICY = _POLICY, policy
    try:
        yield
    finally:
        _POLICY = saved


def conv2d_decisions(clear: bool = False) -> list[dict]:
    """Every decision taken in this process (path, why, the candidates' times, how many calls it
    served), as dicts; ``clear=True`` also forgets them (the per-GPU file is kept)."""
    out = [dataclasses.asdict(d) | {"key": d.key()} for d in _DECISIONS.values()]
    if clear:
        _DECISIONS.clear()
    return out


def cache_path() -> Path:
    default = Path.home() / ".cache" / "classic-cnn-bench" / "conv2d-dispatch.json"
    return Path(os.environ.get("KERNELS_CONV2D_CACHE", default))


def _gpu_signature(device: torch.device) -> str:
    name = torch.cuda.get_device_name(device)
    return f"{name} | torch {torch.__version__} | triton {triton.__version__}"


def _disk_cache() -> dict:
    global _DISK_CACHE
    if _DISK_CACHE is None:
        try:
            _DISK_CACHE = json.loads(cache_path().read_text())
        except (OSError, ValueError):
            _DISK_CACHE = {}
    return _DISK_CACHE


def _save_disk_cache() -> None:
    path = cache_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as f:
            json.dump(_disk_cache(), f, indent=1, sort_keys=True)
        os.replace(f.name, path)
    except OSError:
        pass  # a read-only home: decisions stay in memory for this process


def _triton_path(geo: Geometry) -> str:
    return "triton-depthwise" if geo.depthwise else "triton-grouped"


def _triton_module(geo: Geometry):
    return depthwise if geo.depthwise else grouped


def _choose(direction: str, geo: Geometry, x: torch.Tensor, weight: torch.Tensor, candidates: dict) -> str:
    """The path for one direction: by policy, by rule, from the cache, or by timing
    ``candidates`` (path -> zero-argument callable) on the call's own tensors."""
    tf32 = x.dtype == torch.float32 and torch.backends.cudnn.allow_tf32
    layout = "channels_last" if memory_format(x) == torch.channels_last else "nchw"
    seen = (direction, geo, x.dtype, layout, tf32, _POLICY)  # hashed every call: no text formatting
    decision = _DECISIONS.get(seen)
    if decision is None:
        fields = dict(direction=direction, x=tuple(x.shape), weight=tuple(weight.shape), stride=geo.stride,
                      padding=geo.padding, dilation=geo.dilation, groups=geo.groups, dtype=_common.DTYPES[x.dtype],
                      layout=layout, tf32=tf32)
        key = _key_text(**fields) + f" policy={_POLICY}"
        decision = Decision(**fields, **_decide(key, direction, geo, x, candidates))
        _DECISIONS[seen] = decision
    decision.calls += 1
    return decision.path


def _decide(key: str, direction: str, geo: Geometry, x: torch.Tensor, candidates: dict) -> dict:
    if _POLICY == "triton":
        return {"path": _triton_path(geo), "source": "policy"}
    if _POLICY == "torch":
        return {"path": "torch", "source": "policy"}
    if geo.groups == 1:
        return {"path": "torch", "source": "rule"}  # dense convolution: cuDNN's home ground
    if not _can_time(x):
        return {"path": _triton_path(geo), "source": "rule"}
    gpu = _gpu_signature(x.device)
    cached = _disk_cache().get(gpu, {}).get(key)
    if cached:
        return {"path": cached["path"], "source": "cache", "times_ms": cached["times_ms"]}
    times = _measure(direction, candidates)
    path = min(times, key=times.get)
    _disk_cache().setdefault(gpu, {})[key] = {"path": path, "times_ms": times}
    _save_disk_cache()
    return {"path": path, "source": "measured", "times_ms": times}


def _can_time(x: torch.Tensor) -> bool:
    """Not under the interpreter (no clock worth the name), nor while a CUDA graph is being
    captured (timing would break the capture): then the rule decides."""
    return x.device.type == "cuda" and not torch.cuda.is_current_stream_capturing()


def _measure(direction: str, candidates: dict) -> dict:
    """Median milliseconds of each candidate on the call's tensors (L2 flushed between runs);
    the first call of a Triton candidate runs its autotuning."""
    times = {}
    for path, fn in candidates.items():
        fn()
        times[path] = triton.testing.do_bench(fn, warmup=5, rep=25, return_mode="median")
    return times


def forward(x, weight, bias, geo: Geometry):
    triton_fn = _triton_module(geo).forward
    candidates = {_triton_path(geo): lambda: triton_fn(x, weight, bias, geo),
                  "torch": lambda: _torch_forward(x, weight, bias, geo)}
    return candidates[_choose("forward", geo, x, weight, candidates)]()


def input_grad(dy, x, weight, geo: Geometry):
    triton_fn = _triton_module(geo).input_grad
    candidates = {_triton_path(geo): lambda: triton_fn(dy, x, weight, geo),
                  "torch": lambda: _torch_backward(dy, x, weight, geo, True, False, False)[0]}
    return candidates[_choose("input_grad", geo, x, weight, candidates)]()


def weight_grad(dy, x, weight, geo: Geometry, need_bias: bool):
    triton_fn = _triton_module(geo).weight_grad
    candidates = {_triton_path(geo): lambda: triton_fn(dy, x, weight, geo, need_bias),
                  "torch": lambda: _torch_backward(dy, x, weight, geo, False, True, need_bias)[1:]}
    return candidates[_choose("weight_grad", geo, x, weight, candidates)]()

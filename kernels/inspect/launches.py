"""The Triton launches an op makes at one case, captured without a GPU.

The op runs exactly as a harness kernel row runs it (``bench.ops``: the case's inputs from
``make_inputs``, the triton backend's policy, ``infer`` / ``train-forward`` / ``train-backward``),
but on the ``meta`` device: tensors have shapes, strides and dtypes and no data, so the
launchers compute their grids, chunk counts and arguments at the real shape for free. Every
``kernel[grid](...)`` call is recorded instead of launched (``Autotuner.run`` and
``JITFunction.run`` are replaced for the duration), with its arguments by name, the grid
callable and the launcher's own keyword arguments; the kernels never run.

Two hooks of ``kernels._common`` are replaced while capturing, both for a physical reason: a
meta tensor is accepted as if it were a CUDA tensor (``check_runnable_device``), and the SM
count the launchers size split reductions by is the target architecture's (``num_sms``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib

import torch

from ..compile_check import Ptr, jit_function

META = torch.device("meta")


@dataclasses.dataclass
class Launch:
    """One recorded ``kernel[grid](...)`` call."""

    kernel: object  # the Autotuner or JITFunction launched
    args: dict  # every argument by name; tensors as Ptr, with their bytes in ``tensor_bytes``
    grid: object  # a tuple or a callable of the launch's meta-parameters
    options: dict  # num_warps / num_stages given at the launch, if any
    tensor_bytes: int  # bytes of the distinct tensors passed (each read or written once)
    direction: str | None = None  # conv2d: forward, input_grad or weight_grad

    @property
    def name(self) -> str:
        return jit_function(self.kernel).__name__

    @property
    def configs(self) -> list:
        """The autotune configs to choose among, or one pseudo-config of the launch's own options."""
        if hasattr(self.kernel, "configs"):
            return list(self.kernel.configs)
        import triton

        return [triton.Config({}, num_warps=self.options.get("num_warps", 4),
                              num_stages=self.options.get("num_stages", 3))]

    def grid_for(self, config) -> tuple[int, int, int]:
        grid = self.grid(dict(self.args, **config.kwargs)) if callable(self.grid) else self.grid
        grid = tuple(int(g) for g in grid)
        return grid + (1,) * (3 - len(grid))


def _record(launches: list, kernel, args: tuple, kwargs: dict, grid, direction: str | None) -> None:
    fn = jit_function(kernel)
    named = dict(zip(fn.arg_names, args))
    options = {k: kwargs.pop(k) for k in ("num_warps", "num_stages") if k in kwargs}
    kwargs.pop("warmup", None)
    named.update(kwargs)
    seen, size = set(), 0
    for name, value in list(named.items()):
        if isinstance(value, torch.Tensor):
            if id(value) not in seen:  # a tensor passed twice (a weight standing in for no bias) is moved once
                seen.add(id(value))
                size += value.numel() * value.element_size()
            named[name] = Ptr(value.dtype)
    launches.append(Launch(kernel, named, grid, options, size, direction))


class _Directions:
    """Which conv2d direction a launch serves: the dispatcher decision (``conv2d_decisions``) whose
    call count rose since the previous launch, or, when none rose, the previous launch's (a
    direction may make several launches: a weight packing, then the convolution); None for a
    package without a dispatcher."""

    def __init__(self, package):
        self._decisions = getattr(package, "conv2d_decisions", None)
        self._calls = self._counts()
        self._latest = None

    def _counts(self) -> dict:
        return {d["key"]: (d["calls"], d["direction"]) for d in self._decisions()} if self._decisions else {}

    def latest(self) -> str | None:
        calls = self._counts()
        risen = [direction for key, (n, direction) in calls.items() if n > self._calls.get(key, (0, None))[0]]
        self._calls = calls
        if risen:
            self._latest = risen[-1]
        return self._latest


@contextlib.contextmanager
def _recording(package, sms: int):
    """Within the block, launches are recorded in the yielded list and never run."""
    from triton.runtime.autotuner import Autotuner
    from triton.runtime.jit import JITFunction

    common = importlib.import_module(f"{package.__name__}._common")
    launches: list[Launch] = []
    directions = _Directions(package)

    def run(self, *args, grid, **kwargs):
        _record(launches, self, args, kwargs, grid, directions.latest())

    def runnable(t, name):
        if t.device.type != "meta":
            raise ValueError(f"{name}: expected a meta tensor while capturing launches, got {t.device}")

    saved = Autotuner.run, JITFunction.run, common.check_runnable_device, common.num_sms
    Autotuner.run = JITFunction.run = run
    common.check_runnable_device, common.num_sms = runnable, lambda device: sms
    try:
        yield launches
    finally:
        Autotuner.run, JITFunction.run, common.check_runnable_device, common.num_sms = saved


@contextlib.contextmanager
def _triton_policy(op, package):
    """The triton row's policy, from this package (a conv2d row forces the Triton paths)."""
    with op.policy("triton"), (package.conv2d_dispatch("triton") if hasattr(package, "conv2d_dispatch")
                               else contextlib.nullcontext()):
        yield


def capture(op, case: dict, mode: str, dtype: torch.dtype, memory_format, sms: int, package=None) -> list[Launch]:
    """The launches of one harness kernel row of ``op`` at ``case`` in ``mode``, in order: for
    ``train-backward`` those of the backward alone (what the row times)."""
    package = package or importlib.import_module("kernels")
    fn = getattr(package, op.name)
    generator = torch.Generator().manual_seed(0)
    tensors, kwargs = op.make_inputs(case, dtype, META, memory_format, generator)
    training = mode != "infer"
    grad_names = list(op.differentiable(tensors)) if mode == "train-backward" else []
    for name in grad_names:
        tensors[name].requires_grad_(True)
    with _triton_policy(op, package):
        if mode != "train-backward":
            with _recording(package, sms) as launches, torch.set_grad_enabled(training):
                op.call(fn, tensors, kwargs, training)
            return launches
        with _recording(package, sms):
            out = op.call(fn, tensors, kwargs, training)
        dy = torch.empty_like(out)  # laid out as out is, as the harness's gradient_like makes it
        with _recording(package, sms) as launches:
            torch.autograd.grad(out, [tensors[k] for k in grad_names], dy)
        return launches

"""Triton kernels for the classic CNNs' memory-bound and oddly shaped hot paths.

Each op family keeps ``../shared/kernel-contract.md``: one file per family under ``kernels/``
(``@triton.jit`` kernels with their autotune configs, thin launchers, one autograd Function, the
public functional API, an ``nn.Module`` twin), fp32/fp16/bf16 storage with fp32 arithmetic,
contiguous NCHW and channels_last inputs, and a ``TypeError``/``ValueError`` naming the argument
for any input outside that. The families:

* :func:`bn_relu` - fused BatchNorm (+ residual) (+ ReLU), inference and training
  (``kernels/bn_relu.py``; twin :class:`TritonBatchNormReLU2d`);
* :func:`lrn` - cross-channel local response normalization (``kernels/lrn.py``; twin
  :class:`TritonLocalResponseNorm`);
* :func:`squeeze_excite` - squeeze-and-excitation (+ residual) (+ ReLU), forward and backward
  (``kernels/squeeze_excite.py``; twin :class:`TritonSqueezeExcite`);
* :func:`conv2d` - grouped and depthwise convolution, forward and both backwards, each direction
  on the path a measured dispatcher picks among Triton and cuDNN (the package ``kernels/conv2d/``; twin
  :class:`TritonConv2d`, swapped in wherever ``groups > 1``; :func:`conv2d_decisions` lists what
  ran where, :func:`conv2d_dispatch` forces a policy);
* :func:`patch` / :func:`unpatch` - swap a model's blocks for the twins in place, sharing
  parameters (``kernels/_patch.py``; a family adds itself with one :func:`register_swap` line);
* :func:`relative_error` and :data:`TOLERANCE` - the contract's error measure and its bounds per
  dtype, for the tests and the harness alike (``kernels/_common.py``).

On a machine without a GPU the kernels run through the Triton interpreter on CPU tensors: set ``TRITON_INTERPRET=1``
before triton is first imported. ``python -m kernels.compile_check`` compiles every kernel ahead
of time for sm_80 and sm_90a and records registers, spills and shared memory in
``kernels/compile_report.json``.

Note: ``kernels.bn_relu`` and ``kernels.lrn`` are the functions; the modules that define them are
``importlib.import_module("kernels.bn_relu")`` and ``kernels.lrn`` likewise. ``kernels.conv2d`` is a
package that calls as its function, so ``kernels.conv2d.dispatch`` is a module.
"""

from ._common import TOLERANCE, relative_error
from ._patch import patch, register_swap, unpatch
from .bn_relu import TritonBatchNormReLU2d, bn_relu
from . import conv2d  # the package, callable as the function (kernels/conv2d/__init__.py)
from .conv2d import TritonConv2d, conv2d_decisions, conv2d_dispatch
from .lrn import TritonLocalResponseNorm, lrn
from .squeeze_excite import TritonSqueezeExcite, squeeze_excite

__all__ = ["bn_relu", "lrn", "patch", "unpatch", "register_swap", "TritonBatchNormReLU2d",
           "TritonLocalResponseNorm", "squeeze_excite", "TritonSqueezeExcite", "conv2d", "TritonConv2d",
           "conv2d_decisions", "conv2d_dispatch", "relative_error", "TOLERANCE"]

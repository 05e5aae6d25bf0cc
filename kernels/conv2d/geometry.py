"""The shape arithmetic every convolution path shares: the argument checks, the
:class:`Geometry` they produce, the layout and index-width questions a launcher asks, the split
reductions' chunk count and merge, the cache of tensors derived from a weight
(:class:`DerivedWeights`), and the two ``@triton.jit`` index helpers of the stencils."""

from __future__ import annotations

import collections
import dataclasses
import functools
import numbers
import weakref

import torch
import triton
import triton.language as tl

from .. import _common


@dataclasses.dataclass(frozen=True)
class Geometry:
    """A convolution's shape arithmetic, after the checks: padding is (top, left, bottom, right)
    (bottom/right differ from top/left only for 'same' with an even dilated kernel, which torch
    pads one more at the end)."""

    n: int
    c_in: int
    h: int
    w: int
    c_out: int
    kh: int
    kw: int
    stride: tuple[int, int]
    padding: tuple[int, int, int, int]
    dilation: tuple[int, int]
    groups: int
    h_out: int
    w_out: int

    @property
    def cin_per_group(self) -> int:
        return self.c_in // self.groups

    @property
    def cout_per_group(self) -> int:
        return self.c_out // self.groups

    @property
    def depthwise(self) -> bool:
        return self.cin_per_group == 1

    def scalars(self) -> dict:
        return dict(KH=self.kh, KW=self.kw, stride_h=self.stride[0], stride_w=self.stride[1],
                    pad_h=self.padding[0], pad_w=self.padding[1], dil_h=self.dilation[0], dil_w=self.dilation[1])


def memory_format(t: torch.Tensor):
    """channels_last when ``t`` is laid out so, else contiguous; a tensor that is both (1x1
    spatial, or one channel) counts as channels_last when its channel stride is the smallest,
    as torch's own suggestion does."""
    if t.is_contiguous(memory_format=torch.channels_last) and (not t.is_contiguous() or t.stride(1) < t.stride(3)):
        return torch.channels_last
    return torch.contiguous_format


def needs_int64(*tensors: torch.Tensor) -> bool:
    """Whether an offset into one of ``tensors`` may need 64 bits (any strides: the largest
    offset, not the element count)."""
    return any(sum((size - 1) * abs(stride) for size, stride in zip(t.shape, t.stride())) >= 2**31 - 1
               for t in tensors)


def ieee_products(dtype: torch.dtype) -> bool:
    return dtype == torch.float32 and not torch.backends.cudnn.allow_tf32


def split_count(pixels: int, programs_per_chunk: int, device: torch.device) -> int:
    """Programs that share the pixels of a split reduction: enough for ~4 per SM in all,
    never fewer than 1024 pixels a chunk (the interpreter: a few tiny ones, to test the merge)."""
    if _common.INTERPRET:
        return max(1, min(_common.cdiv(pixels, 16), 3))
    return max(1, min(_common.cdiv(pixels, 1024), _common.cdiv(4 * _common.num_sms(device), programs_per_chunk)))


def stride_args(prefix: str, t: torch.Tensor, axes: str = "nchw") -> dict:
    """A tensor's four strides as the kernels' keyword arguments (``sxn, sxc, sxh, sxw``...)."""
    return {f"{prefix}{axis}": s for axis, s in zip(axes, t.stride())}


def merge_partials(partials: torch.Tensor, like: torch.Tensor | None, dtype: torch.dtype | None = None):
    """The split reductions' last step: sum the fp32 partials over the chunks (a few rows of a
    weight-sized tensor), then round once to the parameter's dtype and memory format."""
    total = partials.sum(0)
    if like is None:
        return total.to(dtype)
    return total.view(like.shape).to(like.dtype).contiguous(memory_format=memory_format(like))


class DerivedWeights:
    """Tensors computed from a weight (the depthwise path's transposed weight, the grouped path's
    packed tiles), built once per weight version and reused while the weight is unchanged.

    ``get(weight, variant, build)`` returns ``build()``, cached under the weight and ``variant``
    (what else the result depends on). ``weight._version`` moves with every in-place update (an
    optimizer step), so an updated weight is a miss. A hit needs the very same live tensor (a
    weak reference, so a new tensor at a freed address is a miss), the same version, storage,
    shape, strides, dtype and device; the ``size`` most recently used entries are kept.
    Inference tensors keep no version: they are rebuilt every call. (An update through
    ``weight.data`` moves no version counter and is not seen; torch's optimizers update the
    parameter itself.)"""

    def __init__(self, size: int):
        self.size = size
        self._entries: collections.OrderedDict = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, weight: torch.Tensor, variant, build):
        try:
            version = weight._version
        except RuntimeError:  # an inference tensor
            return build()
        ident = (version, weight.data_ptr(), tuple(weight.shape), tuple(weight.stride()), weight.dtype,
                 weight.device)
        key = (id(weight), variant)
        hit = self._entries.get(key)
        if hit is not None and hit[0]() is weight and hit[1] == ident:
            self._entries.move_to_end(key)
            return hit[2]
        value = build()
        self._entries[key] = (weakref.ref(weight), ident, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)
        return value


# --- argument checks ------------------------------------------------------------------------------

def _pair(value, name: str, minimum: int) -> tuple[int, int]:
    """An int or a pair of ints, each >= minimum (TypeError for a non-int, ValueError otherwise)."""
    items = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    expected = f"{name}: expected an int >= {minimum} or a pair of them, got {value!r}"
    if any(isinstance(v, bool) or not isinstance(v, numbers.Integral) for v in items):
        raise TypeError(expected)
    if len(items) != 2 or min(items) < minimum:
        raise ValueError(expected)
    return int(items[0]), int(items[1])


def check_arguments(x, weight, bias, stride, padding, dilation, groups) -> Geometry:
    _common.check_tensor(x, "x", ndim=4, layout="[N, C_in, H, W]")
    _common.check_tensor(weight, "weight", ndim=4, layout="[C_out, C_in/groups, kH, kW]", like=x)
    if weight.dtype != x.dtype:
        raise TypeError(f"weight: expected dtype {x.dtype} (the dtype of x), got {weight.dtype}")
    groups = _common.check_int(groups, "groups", minimum=1)
    n, c_in, h, w = x.shape
    c_out, cin_per_group, kh, kw = weight.shape
    if c_in % groups or c_out % groups:
        raise ValueError(f"groups: expected a divisor of both x's {c_in} input channels and weight's {c_out} "
                         f"output channels, got {groups}")
    if cin_per_group * groups != c_in or kh == 0 or kw == 0:
        raise ValueError(f"weight: expected shape [{c_out}, {c_in // groups}, kH >= 1, kW >= 1] (x's {c_in} channels "
                         f"/ groups={groups}), got {list(weight.shape)}")
    if bias is not None:
        _common.check_tensor(bias, "bias", like=x)
        if bias.dim() != 1 or bias.shape[0] != c_out:
            raise ValueError(f"bias: expected shape [{c_out}] (one value per output channel), got {list(bias.shape)}")
        if bias.dtype != x.dtype:
            raise TypeError(f"bias: expected dtype {x.dtype} (the dtype of x), got {bias.dtype}")
    args = [tuple(v) if isinstance(v, list) else v for v in (stride, padding, dilation)]
    try:
        hash(tuple(args))
    except TypeError:  # e.g. a dict: let the checks say what is wrong with it
        return _geometry.__wrapped__(tuple(x.shape), tuple(weight.shape), *args, groups)
    return _geometry(tuple(x.shape), tuple(weight.shape), *args, groups)


@functools.lru_cache(maxsize=4096)
def _geometry(x_shape, w_shape, stride, padding, dilation, groups) -> Geometry:
    """The shape arithmetic and its checks, once per distinct call signature (a network calls the
    same few; a check costs more than a small kernel's launch)."""
    n, c_in, h, w = x_shape
    c_out, _, kh, kw = w_shape
    stride = _pair(stride, "stride", 1)
    dilation = _pair(dilation, "dilation", 1)
    if isinstance(padding, str):
        if padding == "valid":
            pads = (0, 0, 0, 0)
        elif padding == "same":
            if stride != (1, 1):
                raise ValueError(f"padding: 'same' needs stride 1 (as in torch), got stride {stride}")
            total_h, total_w = dilation[0] * (kh - 1), dilation[1] * (kw - 1)
            pads = (total_h // 2, total_w // 2, total_h - total_h // 2, total_w - total_w // 2)
        else:
            raise ValueError(f"padding: expected an int >= 0, a pair of them, 'same' or 'valid', got {padding!r}")
    else:
        ph, pw = _pair(padding, "padding", 0)
        pads = (ph, pw, ph, pw)
    h_out = (h + pads[0] + pads[2] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    w_out = (w + pads[1] + pads[3] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    if h_out < 1 or w_out < 1:
        raise ValueError(f"x: expected a padded input at least as large as the dilated kernel "
                         f"({dilation[0] * (kh - 1) + 1}x{dilation[1] * (kw - 1) + 1}), got {h}x{w} "
                         f"with padding {pads}")
    return Geometry(n, c_in, h, w, c_out, kh, kw, stride, pads, dilation, groups, h_out, w_out)


# --- index helpers of the stencils --------------------------------------------------------------

@triton.jit
def pixel(p, H, W, BIG: tl.constexpr):
    """(image, row, column) of flat pixel indices p = (n * H + h) * W + w. Offsets are int32 (one
    register per element of a tile, not a 64-bit pointer) unless a tensor may need 64 (BIG)."""
    n = p // (H * W)
    if BIG:
        n = n.to(tl.int64)
    return n, (p // W) % H, p % W


@triton.jit
def tap_source(oh, ow, kh, kw, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, H_SRC, W_SRC,
                TRANSPOSED: tl.constexpr):
    """Where tap (kh, kw) of output pixel (oh, ow) reads, and whether that pixel exists.

    Convolution: (oh * s - pad + kh * d). Transposed (the input gradient, reading dy): the
    (ih + pad - kh * d) / s that divide exactly; operands of // and % are kept >= 0, since the
    interpreter floors and the GPU truncates."""
    if TRANSPOSED:
        th = oh + pad_h - kh * dil_h
        tw = ow + pad_w - kw * dil_w
        th_pos = tl.where(th >= 0, th, 0)
        tw_pos = tl.where(tw >= 0, tw, 0)
        sh = th_pos // stride_h
        sw = tw_pos // stride_w
        valid = (th >= 0) & (tw >= 0) & (th_pos % stride_h == 0) & (tw_pos % stride_w == 0) \
            & (sh < H_SRC) & (sw < W_SRC)
    else:
        sh = oh * stride_h - pad_h + kh * dil_h
        sw = ow * stride_w - pad_w + kw * dil_w
        valid = (sh >= 0) & (sh < H_SRC) & (sw >= 0) & (sw < W_SRC)
    return sh, sw, valid

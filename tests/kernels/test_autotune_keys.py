"""Every autotuned kernel is tuned per layout of each operand it reads or writes: a config tuned
on an NCHW ``dy`` is never reused for a channels_last one (kernels._common.autotune)."""

from __future__ import annotations

import pytest
import triton

import kernels  # noqa: F401 - registers every autotuned kernel
from kernels import _common


@pytest.mark.parametrize("tuned", _common.AUTOTUNED, ids=lambda t: t.fn.__name__)
def test_the_key_holds_every_operands_channel_stride(tuned):
    strides = [name for name in tuned.arg_names if name.endswith("_stride_c") or
               (len(name) == 3 and name[0] == "s" and name[2] == "c")]
    assert strides, "a tile kernel without channel strides: the layout rule would not see it"
    assert set(strides) <= set(tuned.keys)
    assert set(tuned.keys) <= set(tuned.arg_names)


def test_a_key_that_names_no_argument_is_refused():
    def kernel(X, N, x_stride_c, BLOCK: "tl.constexpr"):  # noqa: F821
        pass

    jitted = triton.jit(kernel)
    with pytest.raises(ValueError, match=r"autotune of kernel: \['C'\] are not its arguments"):
        _common.autotune([triton.Config({"BLOCK": 16})], key=["N", "C"])(jitted)


def test_an_argument_to_restore_that_names_no_argument_is_refused():
    def kernel(X, N, x_stride_c, BLOCK: "tl.constexpr"):  # noqa: F821
        pass

    jitted = triton.jit(kernel)
    with pytest.raises(ValueError, match=r"autotune of kernel: \['RM'\] are not its arguments"):
        _common.autotune([triton.Config({"BLOCK": 16})], key=["N"], restore_value=("X", "RM"))(jitted)

"""Fixtures of the kernel tests; their plain helpers are in tests/kernels/helpers.py."""

import pytest

from bench.workloads import precision


@pytest.fixture
def ieee_fp32():
    """fp32 computes in fp32: on a GPU, cuDNN's tf32 (on by default) and cuBLAS's are off."""
    with precision("fp32"):
        yield

"""How a configuration that failed becomes a row (bench/errors.py): its status and its one-line message."""

from __future__ import annotations

import pytest
import torch

from bench.errors import classify, one_line


@pytest.mark.parametrize("error", [
    MemoryError(),
    torch.cuda.OutOfMemoryError("CUDA error: out of memory"),
    RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"),
    RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory: you tried to "
                 "allocate 8589934592 bytes. Error code 12 (Cannot allocate memory)"),
    OSError(12, "Cannot allocate memory"),
])
def test_out_of_memory_on_the_gpu_or_under_the_workers_cap_is_oom(error):
    assert classify(error) == "oom"


@pytest.mark.parametrize("error", [RuntimeError("planted failure"), ValueError("memory format"), KeyError("oom")])
def test_any_other_error_is_error(error):
    assert classify(error) == "error"


def test_a_message_is_the_type_and_the_first_line_that_says_something():
    assert one_line(RuntimeError("planted failure\nsecond line")) == "RuntimeError: planted failure"
    assert one_line(ValueError("\n\n   indented first\n  second")) == "ValueError: indented first"


def test_an_error_without_a_message_is_its_type():
    assert one_line(MemoryError()) == "MemoryError: "


def test_a_long_message_is_cut_to_500_characters():
    line = one_line(RuntimeError("x" * 1000))
    assert len(line) == 500 and line == "RuntimeError: " + "x" * (500 - len("RuntimeError: "))

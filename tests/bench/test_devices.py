"""Which GPU a device name means (bench/devices.py)."""

from __future__ import annotations

import pytest

from bench.devices import physical_gpu


@pytest.mark.parametrize("visible, index, expected", [
    (None, 1, "1"),
    ("2,3", 0, "2"),
    ("2,3", 1, "3"),
    (" 2, 3 ", 1, "3"),
    ("GPU-uuid-a,GPU-uuid-b", 1, "GPU-uuid-b"),
    ("MIG-uuid-a", 0, "MIG-uuid-a"),
])
def test_cuda_device_indices_map_through_the_callers_cuda_visible_devices(visible, index, expected):
    assert physical_gpu(index, visible) == expected


@pytest.mark.parametrize("visible", ["2,3", ""])
def test_a_cuda_device_index_beyond_cuda_visible_devices_is_one_line(visible):
    count = len([v for v in visible.split(",") if v])
    with pytest.raises(ValueError) as error:
        physical_gpu(2, visible)
    assert str(error.value) == (f"--device cuda:2: expected an index below {count}, the number of devices "
                                f"CUDA_VISIBLE_DEVICES={visible!r} names")

"""Which GPU a device name means: ``cuda:N`` counts the GPUs the caller sees."""

from __future__ import annotations


def physical_gpu(index: int, cuda_visible_devices: str | None) -> str:
    """What the worker of logical device ``cuda:index`` puts in its ``CUDA_VISIBLE_DEVICES``: entry
    ``index`` of the caller's list (an index, or a GPU-/MIG-UUID), or ``index`` itself where the
    caller set none. Devices are numbered as the caller sees them, so a run under
    ``CUDA_VISIBLE_DEVICES=2,3`` stays on GPUs 2 and 3."""
    if cuda_visible_devices is None:
        return str(index)
    entries = [entry.strip() for entry in cuda_visible_devices.split(",") if entry.strip()]
    if not 0 <= index < len(entries):
        raise ValueError(f"--device cuda:{index}: expected an index below {len(entries)}, the number of "
                         f"devices CUDA_VISIBLE_DEVICES={cuda_visible_devices!r} names")
    return entries[index]

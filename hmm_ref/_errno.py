"""Kernel error numbers, with the kernel's values.

HMM functions return 0 or a negative errno, exactly like the C code: ``-Errno.EAGAIN`` is the
integer -11 that ``hmm_invalidate_range_start`` hands back to the OOM reaper. Mirror callbacks
are user code and may return any integer; the core compares them against these values.
"""

from __future__ import annotations

import enum

__all__ = ["Errno", "describe_result"]


class Errno(enum.IntEnum):
    """The errno values that the seed's HMM code, its callers and its drivers use."""

    #: Operation not permitted: ``hmm_vma_get_pfns`` on a vma without VM_READ.
    EPERM = 1
    #: I/O error: an example of an "other" driver error, ignored by the mirror pass (INV-8).
    EIO = 5
    #: Try again: a non-blockable callback that would have to sleep (the seed patch's code).
    EAGAIN = 11
    #: Out of memory: ``hmm_register`` could not allocate the per-mm ``struct hmm``.
    ENOMEM = 12
    #: Bad address: a fault error in ``hmm_vma_fault`` (not modelled; listed for drivers).
    EFAULT = 14
    #: Device or resource busy: ``hmm_vma_fault`` after mmap_sem was dropped (not modelled).
    EBUSY = 16
    #: Invalid argument: bad range bounds, special vmas, missing mirror ops.
    EINVAL = 22


def describe_result(value: int) -> str:
    """Spell a kernel return value as a kernel developer reads it: ``0``, ``-EAGAIN``, ``-5``."""
    if value == 0:
        return "0"
    if value < 0:
        try:
            return f"-{Errno(-value).name}"
        except ValueError:
            return str(value)
    return str(value)

"""What both sides' state machines generate from: the world's vmas, the encodings a snapshot
may use, the entries the CPU may hold, and the signal a failing step raises.

Kept below the sides so that the core's machine and the driver's draw the same worlds and
entries, and neither imports the other.
"""

from __future__ import annotations

from typing import Final

from hypothesis import strategies as st

from hmm_ref import (
    DEFAULT_ENCODING,
    PTE_MIGRATION,
    PTE_NONE,
    PTE_POISON,
    PTE_SWAP,
    PfnEncoding,
    Pte,
)

from ._case import VmaSpec

__all__ = ["ENCODINGS", "VMAS", "StepFailedError", "ptes"]

#: The world's vmas: read-write, read-only, unreadable, special; contiguous, 16 pages in all.
VMAS: Final = (
    VmaSpec(start=0x10000, end=0x18000),
    VmaSpec(start=0x18000, end=0x1C000, write=False),
    VmaSpec(start=0x1C000, end=0x1E000, read=False),
    VmaSpec(start=0x1E000, end=0x20000, special=True),
)

#: Drivers' encodings: ours; bits at the top with a small shift; amdgpu-like (NONE = 0).
ENCODINGS: Final = (
    DEFAULT_ENCODING,
    PfnEncoding(flags=(1 << 63, 1 << 62, 1 << 61), values=(0xE, 0xF, 0xE), pfn_shift=4),
    PfnEncoding(
        flags=(0x1, 0x2, 0x0),
        values=(0xFFFF_FFFF_FFFF_FFFE, 0x0, 0xFFFF_FFFF_FFFF_FFFC),
        pfn_shift=12,
    ),
)

ptes: Final = st.one_of(
    st.builds(Pte.present, st.integers(0x100, 0x1FF), write=st.booleans()),
    st.just(PTE_NONE),
    st.builds(Pte.device_private, st.integers(0x800, 0x8FF), write=st.booleans()),
    st.sampled_from((PTE_SWAP, PTE_MIGRATION, PTE_POISON)),
)


class StepFailedError(AssertionError):
    """A step failed; raised inside the machine so that Hypothesis shrinks the sequence."""

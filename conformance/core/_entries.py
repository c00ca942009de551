"""What the rules demand of a snapshot's result and of each entry, worked out from their text
(RNG-1, RNG-2): the model's own statement, shared by both kinds of snapshot."""

from __future__ import annotations

from hmm_ref import Errno, HmmPfnFlag, HmmPfnValue, PfnEncoding, Pte, PteKind

from .._case import VmaSpec

__all__ = ["encode", "snapshot_outcome"]


def snapshot_outcome(vma: VmaSpec, start: int, end: int) -> tuple[int, HmmPfnValue | None]:
    """The result the rules demand of a snapshot, and the value every entry is filled with."""
    if start < vma.start or start >= vma.end or end < vma.start or end > vma.end:
        return -Errno.EINVAL, None
    if vma.special:
        return -Errno.EINVAL, HmmPfnValue.SPECIAL
    if not vma.read:
        return -Errno.EPERM, HmmPfnValue.NONE
    return 0, None


#: Entries are unsigned 64-bit words.
_WORD = (1 << 64) - 1


def encode(encoding: PfnEncoding, pte: Pte) -> int:
    """The entry RNG-1 demands for ``pte`` in ``encoding``, worked out from the rule's text.

    The reference has its own encoder; the model does not use it, so that a fault in one is
    not copied into the expectation it is judged by.
    """
    flags, values = encoding.flags, encoding.values
    if pte.kind in (PteKind.PRESENT, PteKind.DEVICE_PRIVATE):
        entry = (pte.pfn << encoding.pfn_shift) & _WORD | flags[HmmPfnFlag.VALID]
        if pte.write:
            entry |= flags[HmmPfnFlag.WRITE]
        if pte.kind is PteKind.DEVICE_PRIVATE:
            entry |= flags[HmmPfnFlag.DEVICE_PRIVATE]
        return entry
    if pte.kind is PteKind.POISON:
        return values[HmmPfnValue.ERROR]
    return values[HmmPfnValue.NONE]  # no entry, a swap entry, or a migration entry

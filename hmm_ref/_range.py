"""Ranges (``struct hmm_range``) and the driver's pfn encoding, 4.17-4.20 layout.

A range is a driver's request to snapshot ``[start, end)`` of one vma. The driver chooses how
each entry is encoded (kernel-semantics §2.6-2.7, from "mm/hmm: use device driver encoding for
HMM pfn v2"):

- ``flags[VALID | WRITE | DEVICE_PRIVATE]``: the bit the driver wants for each meaning;
- ``values[ERROR | NONE | SPECIAL]``: the whole-entry value for each special case;
- ``pfn_shift``: where the page frame number sits in an entry.

A present page encodes as ``pfn << pfn_shift | flags[VALID]`` (plus ``flags[WRITE]`` if the CPU
entry is writable, plus ``flags[DEVICE_PRIVATE]`` for device memory), truncated to 64 bits like
the kernel's ``uint64_t``. The seed's invalidation writes raw 0 over entries, not
``values[NONE]`` (fixed in 5.1); raw 0 still reads as "no page" because it lacks VALID.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, final

from ._errors import UsageCode, UsageError
from ._world import PAGE_SHIFT, PAGE_SIZE, Pte, PteKind, Vma, page_aligned

if TYPE_CHECKING:
    from ._hmm import Hmm

__all__ = ["DEFAULT_ENCODING", "HmmPfnFlag", "HmmPfnValue", "HmmRange", "PfnEncoding"]

_U64 = (1 << 64) - 1


class HmmPfnFlag(enum.IntEnum):
    """Indexes into ``range->flags`` (``enum hmm_pfn_flag_e``)."""

    #: The entry names a page.
    VALID = 0
    #: The CPU maps the page writable.
    WRITE = 1
    #: The page is device-private memory.
    DEVICE_PRIVATE = 2


class HmmPfnValue(enum.IntEnum):
    """Indexes into ``range->values`` (``enum hmm_pfn_value_e``)."""

    #: A hard error (a poisoned entry).
    ERROR = 0
    #: No page (nothing mapped, swapped out, under migration, or unreadable vma).
    NONE = 1
    #: A special vma (hugetlb or VM_SPECIAL) that HMM does not snapshot.
    SPECIAL = 2


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class PfnEncoding:
    """A driver's encoding of snapshot entries: ``flags``, ``values`` and ``pfn_shift``.

    Checked at construction against the documented requirements: ``values[NONE]`` must differ
    from ``values[ERROR]`` and ``values[SPECIAL]`` (those two may be equal), and
    ``flags[VALID]`` must be non-zero, since decoders tell a page from no page by that bit.
    """

    flags: tuple[int, int, int]
    values: tuple[int, int, int]
    pfn_shift: int

    def __post_init__(self) -> None:
        def bad(message: str) -> UsageError:
            return UsageError(UsageCode.BAD_ENCODING, "hmm_range", message)

        if not 0 <= self.pfn_shift < 64:
            raise bad(f"pfn_shift {self.pfn_shift} is outside [0, 64)")
        arrays: tuple[tuple[str, Sequence[int]], ...] = (
            ("flags", self.flags),
            ("values", self.values),
        )
        for name, array in arrays:  # checked at run time too: JSON gives lists of any length
            if len(array) != 3 or any(not 0 <= item <= _U64 for item in array):
                raise bad(f"{name} must be three unsigned 64-bit integers, got {array!r}")
        if self.flags[HmmPfnFlag.VALID] == 0:
            raise bad("flags[VALID] is 0; give the bit that marks an entry as a page")
        none = self.values[HmmPfnValue.NONE]
        if none in (self.values[HmmPfnValue.ERROR], self.values[HmmPfnValue.SPECIAL]):
            raise bad(
                "values[NONE] equals values[ERROR] or values[SPECIAL]; hmm.h requires NONE to "
                "differ from both (ERROR and SPECIAL may share a value)"
            )

    def flag(self, which: HmmPfnFlag) -> int:
        """``range->flags[which]``."""
        return self.flags[which]

    def value(self, which: HmmPfnValue) -> int:
        """``range->values[which]``."""
        return self.values[which]

    def encode_page(self, pfn: int, *, write: bool, device_private: bool = False) -> int:
        """The entry for a mapped page: ``pfn << pfn_shift`` with VALID, WRITE, DEVICE_PRIVATE."""
        entry = (pfn << self.pfn_shift) | self.flags[HmmPfnFlag.VALID]
        if write:
            entry |= self.flags[HmmPfnFlag.WRITE]
        if device_private:
            entry |= self.flags[HmmPfnFlag.DEVICE_PRIVATE]
        return entry & _U64

    def encode(self, pte: Pte) -> int:
        """The snapshot entry the seed's page walk writes for ``pte`` (``hmm_vma_handle_pte``)."""
        if pte.kind is PteKind.PRESENT:
            return self.encode_page(pte.pfn, write=pte.write)
        if pte.kind is PteKind.DEVICE_PRIVATE:
            return self.encode_page(pte.pfn, write=pte.write, device_private=True)
        if pte.kind is PteKind.POISON:
            return self.values[HmmPfnValue.ERROR]
        # pte_none, a swap entry, and a migration entry in snapshot mode all read as "no page".
        return self.values[HmmPfnValue.NONE]

    def decode(self, entry: int) -> int | None:
        """The page frame number an entry names, or None (``hmm_pfn_to_page`` returning NULL).

        An entry equal to one of the three special values, or without ``flags[VALID]``, names
        no page; so does the raw 0 that the seed's invalidation writes.
        """
        if entry in self.values or not entry & self.flags[HmmPfnFlag.VALID]:
            return None
        return entry >> self.pfn_shift


#: An encoding in which every case is distinguishable, raw 0 included: VALID, WRITE and
#: DEVICE_PRIVATE are bits 0-2, ERROR 0x10, NONE 0x8, SPECIAL 0x20, and the pfn sits above bit 12.
DEFAULT_ENCODING = PfnEncoding(
    flags=(0x1, 0x2, 0x4), values=(0x10, 0x8, 0x20), pfn_shift=PAGE_SHIFT
)


@final
class HmmRange:
    """A snapshot request over ``[start, end)`` of ``vma`` (``struct hmm_range``).

    ``pfns`` starts as the caller's array (zeros by default), as in the kernel, where the caller
    allocates it: entries the seed's walk does not reach keep what the caller put there.
    """

    def __init__(
        self,
        *,
        vma: Vma,
        start: int,
        end: int,
        encoding: PfnEncoding = DEFAULT_ENCODING,
        pfns: Sequence[int] | None = None,
    ) -> None:
        if not (page_aligned(start) and page_aligned(end)):
            raise UsageError(
                UsageCode.UNALIGNED,
                "hmm_range",
                f"range [{start:#x}, {end:#x}) is not page aligned; use multiples of {PAGE_SIZE}",
            )
        self.vma = vma
        self.start = start
        self.end = end
        self.encoding = encoding
        npages = max(0, (end - start) >> PAGE_SHIFT)
        if pfns is None:
            self._pfns = [0] * npages
        elif len(pfns) != npages:
            raise UsageError(
                UsageCode.BAD_ADDRESS,
                "hmm_range",
                f"pfns has {len(pfns)} entries but [{start:#x}, {end:#x}) spans {npages} pages",
            )
        else:
            self._pfns = list(pfns)
        self._valid = False
        # The struct hmm whose ranges list holds this range; None while not registered.
        self._hmm: Hmm | None = None
        # True once range_done succeeded and no snapshot was attempted since (RNG-9 wording).
        self._done = False

    def __repr__(self) -> str:
        state = "registered" if self._hmm is not None else "idle"
        return (
            f"<HmmRange [{self.start:#x}, {self.end:#x}) {state} "
            f"valid={self._valid} npages={self.npages}>"
        )

    @property
    def npages(self) -> int:
        """The number of entries in :attr:`pfns`."""
        return len(self._pfns)

    @property
    def pfns(self) -> tuple[int, ...]:
        """The entries, one per page (``range->pfns``)."""
        return tuple(self._pfns)

    @property
    def valid(self) -> bool:
        """``range->valid``: no invalidation has touched the range since it was registered."""
        return self._valid

    @property
    def registered(self) -> bool:
        """True while the range is on a ``struct hmm``'s ranges list."""
        return self._hmm is not None

    def page_address(self, index: int) -> int:
        """The virtual address of entry ``index``."""
        return self.start + (index << PAGE_SHIFT)

    def _fill(self, value: int) -> None:
        self._pfns = [value] * len(self._pfns)

    def _walk(self) -> None:
        """The seed's snapshot walk: encode each page; a poisoned entry ends the walk.

        ``hmm_vma_walk_pmd`` stops at the first hard error and ``hmm_vma_get_pfns`` ignores the
        walk's result, so entries after a poisoned page keep the caller's values (§3.7 rule 8).
        """
        mm = self.vma.mm
        for index in range(len(self._pfns)):
            pte = mm.pte(self.page_address(index))
            self._pfns[index] = self.encoding.encode(pte)
            if pte.kind is PteKind.POISON:
                return

    def _invalidate(self, start: int, end: int) -> None:
        """The range half of ``hmm_invalidate_range`` for one range (§3.5 rule 2).

        The seed's overlap test skips a range only if ``end < range.start`` or
        ``start >= range.end``, so an update that ends exactly where the range starts still
        marks it invalid, with no entry cleared (the lower-boundary false positive, RNG-5).
        """
        if end < self.start or start >= self.end:
            return
        self._valid = False
        first = max(start, self.start)
        last = min(self.end, end)
        offset = (first - self.start) >> PAGE_SHIFT
        for index in range(offset, offset + ((last - first) >> PAGE_SHIFT)):
            self._pfns[index] = 0

"""The mmu-notifier chain of an mm, as ``mm/mmu_notifier.c`` behaves in 4.19/4.20.

Rules of this module (kernel-semantics §5):

- Notifiers are added at the head of ``mm->mmu_notifier_mm->list``, so the newest registration
  is called first (``__mmu_notifier_register``).
- ``invalidate_range_start`` calls **every** notifier's start op, even after one failed; it
  remembers the last non-zero value, logs each failure (the ``pr_info`` added by 93065ac753e4),
  and returns that last value (MN-1). The kernel's blockable wrapper discards the value; the
  ``_nonblock`` wrapper returns it.
- ``invalidate_range_end`` calls every notifier's end op; it has no blockable argument and
  returns nothing.
- ``release`` (from ``exit_mmap``) calls every notifier's release op, newest first, then unlinks
  them all: no notifier hears of this mm again.

The caller's half of the contract is bookkept on the mm as *windows*: a start opens
``[start, end)`` unless it was non-blockable and failed, and an end must close an open window
(END-3: after a failed non-blockable start the caller does not call end).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from ._errors import UsageCode, UsageError
from ._world import PAGE_SIZE, page_aligned

if TYPE_CHECKING:
    from ._world import MmStruct

__all__ = [
    "MmuNotifier",
    "mmu_notifier_invalidate_range_end",
    "mmu_notifier_invalidate_range_start",
    "mmu_notifier_invalidate_range_start_nonblock",
    "mmu_notifier_register",
    "mmu_notifier_release",
    "mmu_notifier_unregister_no_release",
]


class MmuNotifier:
    """A ``struct mmu_notifier`` with its ops. Subclass it and override the ops you need.

    The defaults do nothing and succeed, as a NULL op does in the kernel.
    """

    def release(self, mm: MmStruct) -> None:
        """The mm is being torn down (``exit_mmap``)."""

    def invalidate_range_start(self, mm: MmStruct, start: int, end: int, blockable: bool) -> int:
        """The CPU is about to change ``[start, end)``; return 0, or -EAGAIN if not blockable."""
        return 0

    def invalidate_range_end(self, mm: MmStruct, start: int, end: int) -> None:
        """The CPU finished changing ``[start, end)``."""

    def describe(self) -> str:
        """How the kernel log names this notifier's start op (the ``%pS`` of the pr_info)."""
        return f"{type(self).__qualname__}.invalidate_range_start"


def _walk(mm: MmStruct) -> Iterator[MmuNotifier]:
    """The notifiers as an SRCU list walk sees them while callbacks change the list.

    A notifier added during the walk goes to the head, behind the walk; one removed before the
    walk reaches it is not visited. Both follow from walking the live hlist.
    """
    for mn in list(mm.notifier_list):
        if any(other is mn for other in mm.notifier_list):
            yield mn


def _check_bounds(function: str, start: int, end: int) -> None:
    if not (page_aligned(start) and page_aligned(end)):
        raise UsageError(
            UsageCode.UNALIGNED,
            function,
            f"[{start:#x}, {end:#x}) is not page aligned; the mm calls notifiers on whole "
            f"pages (multiples of {PAGE_SIZE})",
        )
    if end <= start:
        raise UsageError(
            UsageCode.BAD_ADDRESS, function, f"[{start:#x}, {end:#x}) is empty; give end > start"
        )


def mmu_notifier_register(mn: MmuNotifier, mm: MmStruct) -> int:
    """Add ``mn`` at the head of ``mm``'s notifier list and return 0."""
    if mm.exiting:
        # __mmu_notifier_register BUG()s when mm_users is zero.
        raise UsageError(
            UsageCode.MM_EXITED,
            "mmu_notifier_register",
            "the mm has exited (its notifiers were released); register on a live mm",
        )
    if any(other is mn for other in mm.notifier_list):
        raise UsageError(
            UsageCode.NOTIFIER_STATE,
            "mmu_notifier_register",
            "this notifier is already registered on this mm; a second hlist_add corrupts the list",
        )
    mm.notifier_list.insert(0, mn)
    return 0


def mmu_notifier_unregister_no_release(mn: MmuNotifier, mm: MmStruct) -> None:
    """Unlink ``mn`` from ``mm`` without calling its release op.

    Like ``hlist_del_init_rcu``, this is a no-op for a notifier that is already unlinked (for
    example by ``mmu_notifier_release``).
    """
    for index, other in enumerate(mm.notifier_list):
        if other is mn:
            del mm.notifier_list[index]
            return


def mmu_notifier_invalidate_range_start(
    mm: MmStruct, start: int, end: int, *, blockable: bool = True
) -> int:
    """Call every notifier's start op for ``[start, end)`` and return the last error, or 0.

    This is ``__mmu_notifier_invalidate_range_start`` of 93065ac753e4. The kernel's plain
    ``mmu_notifier_invalidate_range_start`` wrapper passes ``blockable=True`` and ignores the
    value returned here; call it that way and ignore the value to get the wrapper.
    """
    _check_bounds("mmu_notifier_invalidate_range_start", start, end)
    result = 0
    for mn in _walk(mm):
        ret = mn.invalidate_range_start(mm, start, end, blockable)
        if ret:
            # The pr_info of 93065ac753e4, number and all ("%d").
            mm.printk(
                f"{mn.describe()} callback failed with {ret} in "
                f"{'' if blockable else 'non-'}blockable context."
            )
            result = ret
    if blockable or result == 0:
        mm._open_window(start, end)
    return result


def mmu_notifier_invalidate_range_start_nonblock(mm: MmStruct, start: int, end: int) -> int:
    """The non-blockable start of the OOM reaper: ``blockable=False``, the result returned."""
    return mmu_notifier_invalidate_range_start(mm, start, end, blockable=False)


def mmu_notifier_invalidate_range_end(mm: MmStruct, start: int, end: int) -> None:
    """Call every notifier's end op for ``[start, end)``.

    The window must be open: after a non-blockable start failed, the caller must not call end
    (END-3). The reference refuses such a call instead of passing it on.
    """
    _check_bounds("mmu_notifier_invalidate_range_end", start, end)
    if not mm._close_window(start, end):
        raise UsageError(
            UsageCode.END_WITHOUT_START,
            "mmu_notifier_invalidate_range_end",
            f"no open invalidation of [{start:#x}, {end:#x}); call end only after a start "
            "that succeeded (a failed non-blockable start has no end)",
        )
    for mn in _walk(mm):
        mn.invalidate_range_end(mm, start, end)


def mmu_notifier_release(mm: MmStruct) -> None:
    """``__mmu_notifier_release`` from ``exit_mmap``: every release op, then unlink them all.

    The mm counts as exited once the release ops have run: the seed lets a release op still
    snapshot or register on the mm's existing hmm.
    """
    for mn in _walk(mm):
        mn.release(mm)
    mm.notifier_list.clear()
    mm.exiting = True

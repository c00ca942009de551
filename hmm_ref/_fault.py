"""``hmm_vma_fault``: the snapshot that faults pages in first (kernel-semantics §3.8, 4.18-4.20).

The caller fills the range's entries with requests, in the range's own encoding, before the
call: ``flags[VALID]`` asks for the page to be faulted in for read if the CPU maps nothing
there, ``flags[WRITE]`` (with VALID) asks for it to be writable, and a device-private page is
faulted back only if the entry also has ``flags[DEVICE_PRIVATE]``. An entry without VALID is
only snapshotted. The call then does what :func:`hmm_vma_get_pfns` does (argument checks,
registration with ``valid`` True) and walks the pages first to last:

1. A poisoned entry ends the walk with ``-EFAULT`` whatever the request (§2.7: it is no swap,
   device or migration entry).
2. A page that needs a fault (the test above) is faulted. A migration entry is waited for
   instead, and the walk starts again at that page.
3. Before it faults a page or waits for its migration, the walk writes ``values[NONE]`` into
   its entry; after the fault or the wait it starts again at that page, and reads that entry as
   the page's request. So a page is not faulted twice for one request (NONE lacks VALID in every
   sane encoding), and a page that was migrating is only snapshotted once it is back.
4. Every fault passes ``FAULT_FLAG_ALLOW_RETRY``, and ``FAULT_FLAG_RETRY_NOWAIT`` too when
   ``block`` is false. The seed passes ALLOW_RETRY even when ``block`` is true, so a handler
   that must wait drops mmap_sem and the call returns ``-EBUSY`` (bug #15, fixed in 5.3).
5. ``VM_FAULT_RETRY`` ends the walk with ``-EBUSY``; any error bit with ``-EFAULT``, after
   ``values[ERROR]`` is written into the failing entry.
6. On any error, the entries from the walk's position (the failing page) to the end become
   ``values[NONE]``, which overwrites the ERROR mark, and ``hmm_vma_range_done`` unregisters
   the range: a range is never left registered after an error.

The kernel's walk goes by page-table level, and in a hole (no page table below a pmd) its
position is the hole's start, before the failing page; this page-granular statement records the
failing page itself. The oracle allows both (docs/spec.md, FLT-4).
"""

from __future__ import annotations

from ._errno import Errno
from ._errors import UsageCode, UsageError
from ._hmm import _hmm_register, hmm_vma_range_done
from ._range import HmmPfnFlag, HmmPfnValue, HmmRange
from ._world import VM_FAULT_ERROR, Pte, PteKind, VmFault

__all__ = ["hmm_vma_fault", "need_fault"]


def need_fault(range_: HmmRange, request: int, pte: Pte) -> tuple[bool, bool]:
    """``(fault, write)``: whether the entry ``request`` makes the walk fault ``pte``'s page,
    and whether for write (``hmm_pte_need_fault``)."""
    flags = range_.encoding.flags
    if not request & flags[HmmPfnFlag.VALID]:
        return False, False
    wants_write = bool(request & flags[HmmPfnFlag.WRITE])
    if pte.kind is PteKind.DEVICE_PRIVATE:
        if request & flags[HmmPfnFlag.DEVICE_PRIVATE]:
            return True, wants_write
        return False, False
    write = wants_write and not (pte.mapped and pte.write)
    return not pte.mapped or write, write


def _walk(range_: HmmRange, first: int, block: bool) -> tuple[int, int]:
    """One pass of the faulting walk from entry ``first``: ``(result, position)``.

    ``-EAGAIN`` means a page was faulted in (or a migration waited for) and the walk goes on
    from ``position``; any other non-zero result ends the call.
    """
    mm = range_.vma.mm
    encoding = range_.encoding
    for index in range(first, range_.npages):
        addr = range_.page_address(index)
        pte = mm.pte(addr)
        if pte.kind is PteKind.POISON:
            range_._pfns[index] = encoding.value(HmmPfnValue.ERROR)
            return -Errno.EFAULT, index
        fault, write = need_fault(range_, range_._pfns[index], pte)
        if not fault:
            range_._pfns[index] = encoding.encode(pte)
            continue
        range_._pfns[index] = encoding.value(HmmPfnValue.NONE)
        if pte.kind is PteKind.MIGRATION:
            mm.migration_entry_wait(addr)
            return -Errno.EAGAIN, index
        answer = mm.handle_mm_fault(addr, write=write, allow_retry=True, nowait=not block)
        if answer & VmFault.RETRY:
            return -Errno.EBUSY, index
        if answer & VM_FAULT_ERROR:
            range_._pfns[index] = encoding.value(HmmPfnValue.ERROR)
            return -Errno.EFAULT, index
        return -Errno.EAGAIN, index
    return 0, range_.npages


def hmm_vma_fault(range_: HmmRange, block: bool) -> int:
    """Fault in the pages ``range_``'s entries ask for, snapshot it and register it (§3.8).

    Returns 0, with the range registered and ``valid`` (the caller must then call
    :func:`hmm_vma_range_done`); ``-EINVAL``, ``-EPERM`` or ``-ENOMEM`` as
    :func:`hmm_vma_get_pfns` does (``-ENOMEM`` also sets every entry to ``values[NONE]``);
    ``-EBUSY`` if the fault handler dropped mmap_sem; ``-EFAULT`` for a fault that failed or a
    poisoned entry. After an error nothing is registered.
    """
    vma = range_.vma
    range_._done = False
    if range_.start < vma.start or range_.start >= vma.end:
        return -Errno.EINVAL
    if range_.end < vma.start or range_.end > vma.end:
        return -Errno.EINVAL
    if range_.end <= range_.start:
        # Unlike hmm_vma_get_pfns, the error path's range_done would BUG() on an empty range.
        raise UsageError(
            UsageCode.RANGE_EMPTY,
            "hmm_vma_fault",
            f"range [{range_.start:#x}, {range_.end:#x}) is empty or reversed; give end > start",
        )
    if range_.registered:
        raise UsageError(
            UsageCode.RANGE_ALREADY_REGISTERED,
            "hmm_vma_fault",
            "this range is already registered; call hmm_vma_range_done before faulting it "
            "again (a second list_add corrupts hmm->ranges)",
        )
    hmm = _hmm_register(vma.mm, "hmm_vma_fault")
    if hmm is None:
        range_._fill(range_.encoding.value(HmmPfnValue.NONE))
        return -Errno.ENOMEM
    if vma.special:
        range_._fill(range_.encoding.value(HmmPfnValue.SPECIAL))
        return -Errno.EINVAL
    if not vma.read:
        range_._fill(range_.encoding.value(HmmPfnValue.NONE))
        return -Errno.EPERM
    range_._valid = True
    hmm._ranges.insert(0, range_)
    range_._hmm = hmm
    ret, position = -Errno.EAGAIN, 0
    while ret == -Errno.EAGAIN:
        ret, position = _walk(range_, position, block)
    if ret:
        none = range_.encoding.value(HmmPfnValue.NONE)
        for index in range(position, range_.npages):
            range_._pfns[index] = none
        hmm_vma_range_done(range_)
        range_._done = False  # the caller never had the range: its range_done is a misuse
    return ret

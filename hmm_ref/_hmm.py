"""The HMM core of ``mm/hmm.c`` after "mm/hmm: proper support for blockable mmu_notifier".

Rules of this module (each one cites kernel-semantics.md, "the seed" = mainline 4.20):

1. One ``struct hmm`` per mm, created lazily by ``hmm_register`` (§3.1) from either a mirror
   registration or a snapshot, and published in ``mm.hmm``; creating it registers HMM's
   mmu notifier on the mm.
2. Mirrors and ranges are kept newest first (``list_add`` at the head, §2.1).
3. ``hmm_mirror_unregister`` poisons the hmm (``hmm->mm = NULL``) *every* time, even when other
   mirrors remain (§3.3 rule 2). A later ``hmm_mirror_register`` on that mm would retry forever
   (§3.2 rule 7): the reference raises :class:`WouldLivelockError` instead (REG-5).
4. An invalidation runs the *range pass* first (mark every overlapping range invalid, zero its
   entries in the overlap) and then, at start only, the *mirror pass* (§3.5):
   every mirror, newest first, gets ``{start, end, INVALIDATE, blockable}``; in non-blockable
   mode the first exact ``-EAGAIN`` stops the loop and is the result; every other answer is
   ignored, and in blockable mode every answer is ignored.
5. ``valid`` is sticky: only a new registration sets it back to True (§2.6).
6. Release unlinks mirrors newest first and calls each one's release op, if it has one, with
   ``mirrors_sem`` dropped; it touches no range (§3.4).

Theory of operation. The kernel holds two locks: ``hmm->lock`` (a spinlock around the range
list) and ``mirrors_sem`` (a rwsem around the mirror list, read-held for the whole mirror pass).
This model is sequential, so a lock can only matter when a callback re-enters: a mirror callback
that registers or unregisters a mirror would ``down_write`` a semaphore its own invalidation
holds for read, which deadlocks in the kernel; the reference raises ``UsageError(DEADLOCK)``.
Where the kernel would ``BUG()`` or corrupt a list because the caller broke the documented
contract, the reference raises :class:`UsageError` before changing anything.

One seed defect is absorbed rather than raised, because drivers reach it on their normal exit
path: after release, the first ``hmm_mirror_unregister`` frees the hmm, and each later one (or a
release op that unregisters the last listed mirror) reads that freed hmm. Without reuse of the
memory the kernel finds the NULL ``mm`` it wrote before the free and returns; the reference
returns the same way. A KASAN build of the seed reports these reads as use-after-free.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, final

from ._errno import Errno
from ._errors import UsageCode, UsageError, WouldLivelockError
from ._mmu_notifier import MmuNotifier, mmu_notifier_register, mmu_notifier_unregister_no_release
from ._range import HmmPfnValue, HmmRange

if TYPE_CHECKING:
    from ._world import MmStruct

__all__ = [
    "Hmm",
    "HmmMirror",
    "HmmMirrorOps",
    "HmmUpdate",
    "HmmUpdateEvent",
    "hmm_mirror_register",
    "hmm_mirror_unregister",
    "hmm_vma_get_pfns",
    "hmm_vma_range_done",
]


@final
class HmmUpdateEvent(enum.Enum):
    """``enum hmm_update_event``: why the device page table must change. One value in the seed."""

    #: Invalidate ``[start, end)``; no reason given.
    INVALIDATE = "invalidate"


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class HmmUpdate:
    """``struct hmm_update``: what a mirror's ``sync_cpu_device_pagetables`` is asked to do."""

    start: int
    end: int
    event: HmmUpdateEvent = HmmUpdateEvent.INVALIDATE
    #: May the callback sleep? False when the OOM reaper invalidates (the seed patch's field).
    blockable: bool


class HmmMirrorOps(Protocol):
    """``struct hmm_mirror_ops``: what a device driver implements for one mirror."""

    def sync_cpu_device_pagetables(self, update: HmmUpdate) -> int:
        """Remove device mappings in ``[update.start, update.end)`` before returning.

        Return 0, or ``-Errno.EAGAIN`` if ``update.blockable`` is False and the driver would
        have to sleep (then do nothing that sleeps). In blockable mode the result is ignored.
        """
        ...

    def release(self) -> None:
        """The mm is being torn down; afterwards nothing may reference the mirror."""
        ...


@final
class HmmMirror:
    """``struct hmm_mirror``: a driver's registration for one mm. ``ops=None`` is refused."""

    def __init__(self, ops: HmmMirrorOps | None) -> None:
        self.ops = ops
        # mirror->hmm: set by register, cleared by unregister, left alone by release.
        self._hmm: Hmm | None = None
        # On hmm->mirrors (release unlinks without clearing _hmm, so the two differ).
        self._linked = False

    def __repr__(self) -> str:
        return f"<HmmMirror ops={self.ops!r} registered={self._linked}>"

    @property
    def hmm(self) -> Hmm | None:
        """``mirror->hmm``: the hmm it was registered on, until it is unregistered."""
        return self._hmm

    @property
    def registered(self) -> bool:
        """True while the mirror is on its hmm's mirrors list (it takes part in invalidations)."""
        return self._linked


@final
class Hmm:
    """``struct hmm``: the HMM state of one mm. Created by the core, never by users."""

    def __init__(self, mm: MmStruct) -> None:
        #: ``hmm->mm``; None once any mirror was unregistered ("being torn down").
        self.mm: MmStruct | None = mm
        self._mirrors: list[HmmMirror] = []
        self._ranges: list[HmmRange] = []
        self._notifier = _HmmNotifier()
        self._mirror_passes = 0  # mirror passes in progress: mirrors_sem is read-held
        #: Set when the last unregister freed this hmm (ranges may still point at it).
        self.freed = False

    def __repr__(self) -> str:
        return (
            f"<Hmm mirrors={len(self._mirrors)} ranges={len(self._ranges)} "
            f"dying={self.dying} freed={self.freed}>"
        )

    @property
    def mirrors(self) -> tuple[HmmMirror, ...]:
        """``hmm->mirrors``, newest first."""
        return tuple(self._mirrors)

    @property
    def ranges(self) -> tuple[HmmRange, ...]:
        """``hmm->ranges``, newest first."""
        return tuple(self._ranges)

    @property
    def dying(self) -> bool:
        """True once ``hmm->mm`` is NULL, which the seed reads as "being torn down"."""
        return self.mm is None

    @property
    def notifier(self) -> MmuNotifier:
        """HMM's embedded ``struct mmu_notifier``."""
        return self._notifier

    def _check_not_in_mirror_pass(self, function: str) -> None:
        if self._mirror_passes:
            raise UsageError(
                UsageCode.DEADLOCK,
                function,
                "called from inside a mirror callback: the invalidation holds mirrors_sem for "
                "read and this call takes it for write, which deadlocks; defer the call",
            )


def _hmm_register(mm: MmStruct, function: str) -> Hmm | None:
    """``hmm_register`` (§3.1): the mm's hmm, created and its notifier registered if needed.

    An existing hmm is returned as it is, even a poisoned one (its ``mm`` is not checked).
    None means the allocation failed (``-ENOMEM`` for the caller).
    """
    if mm.hmm is not None:
        return mm.hmm
    if mm.exiting:
        # The kernel would allocate an hmm and BUG() in mmu_notifier_register (mm_users is 0).
        raise UsageError(
            UsageCode.MM_EXITED,
            function,
            "the mm has exited and has no struct hmm; the seed would create one and BUG() "
            "registering its notifier; finish with the mm's ranges before it exits",
        )
    if mm._take_alloc_failure():
        return None
    hmm = Hmm(mm)
    # Post-3/7 order: publish mm->hmm first, then register the notifier.
    mm.hmm = hmm
    mmu_notifier_register(hmm._notifier, mm)
    return hmm


def hmm_mirror_register(mirror: HmmMirror, mm: MmStruct) -> int:
    """Register ``mirror`` on ``mm`` at the head of the mirrors list (§3.2).

    Returns 0, ``-EINVAL`` if the mirror has no ops (REG-1), or ``-ENOMEM`` if the hmm could
    not be allocated. Raises :class:`WouldLivelockError` where the seed would never return.
    """
    if mirror.ops is None:
        return -Errno.EINVAL
    if mm.exiting:
        raise UsageError(
            UsageCode.MM_EXITED,
            "hmm_mirror_register",
            "the mm has exited; a driver registers mirrors on a live mm it holds a reference to",
        )
    if mirror._linked:
        # No check in the seed (§3.2 rule 5): a second list_add corrupts hmm->mirrors.
        raise UsageError(
            UsageCode.MIRROR_ALREADY_REGISTERED,
            "hmm_mirror_register",
            "this mirror is already registered; unregister it first, or use a new HmmMirror",
        )
    hmm = _hmm_register(mm, "hmm_mirror_register")
    if hmm is None:
        mirror._hmm = None  # mirror->hmm = hmm_register(mm), which returned NULL
        return -Errno.ENOMEM
    hmm._check_not_in_mirror_pass("hmm_mirror_register")
    if hmm.mm is None:
        # The seed drops mirrors_sem, clears mirror->hmm and calls hmm_register again, which
        # returns this same poisoned hmm: an endless loop (kernel bug history #3).
        raise WouldLivelockError(
            "hmm_mirror_register",
            "this mm's struct hmm was poisoned when one of several mirrors was unregistered "
            "(hmm->mm = NULL); the seed retries forever here. Fixed in 5.1 by reference-"
            "counting struct hmm; nothing was changed",
        )
    hmm._mirrors.insert(0, mirror)
    mirror._hmm = hmm
    mirror._linked = True
    return 0


def hmm_mirror_unregister(mirror: HmmMirror) -> None:
    """Unregister ``mirror`` (§3.3, post-3/7). A mirror that is not registered is left alone.

    Seed quirk kept: ``hmm->mm`` is set to NULL even when other mirrors remain, which poisons
    the hmm (REG-5), and the last mirror of a poisoned hmm then returns early, leaving the hmm
    and its notifier in place.
    """
    hmm = mirror._hmm
    if hmm is None:
        return
    hmm._check_not_in_mirror_pass("hmm_mirror_unregister")
    if mirror._linked:  # list_del_init: a no-op if release already unlinked it
        hmm._mirrors.remove(mirror)
        mirror._linked = False
    empty = not hmm._mirrors
    mirror._hmm = None
    mm = hmm.mm
    hmm.mm = None
    # A mirror that release unlinked can still point at an hmm that an earlier unregister
    # freed. The kernel then reads freed memory; what it finds is the NULL mm written just
    # before the free, so it returns here, as the reference does.
    if not empty or mm is None:
        return
    mmu_notifier_unregister_no_release(hmm._notifier, mm)
    # The kernel clears mm->hmm only if it still points here, against a concurrent
    # re-creation; sequentially nothing can have replaced it.
    assert mm.hmm is hmm, "mm->hmm still points at the hmm being freed"
    mm.hmm = None
    # Ranges still on hmm._ranges now hang off freed memory (bug history #11).
    hmm.freed = True


def hmm_vma_get_pfns(range_: HmmRange) -> int:
    """Snapshot ``range_`` without faulting and register it, valid (§3.7, 4.18/4.19 form).

    Returns 0; ``-EINVAL`` for bounds outside the vma (nothing touched) or for a special vma
    (every entry ``values[SPECIAL]``); ``-EPERM`` for a vma without read permission (every entry
    ``values[NONE]``); ``-ENOMEM`` if the hmm could not be allocated. Nothing is registered
    unless the result is 0; then the caller must call :func:`hmm_vma_range_done` once.
    """
    vma = range_.vma
    range_._done = False
    if range_.start < vma.start or range_.start >= vma.end:
        return -Errno.EINVAL
    if range_.end < vma.start or range_.end > vma.end:
        return -Errno.EINVAL
    if range_.end < range_.start:
        # The seed has no such check: it registers the range and returns 0, and the first
        # overlapping invalidation zeroes a negative count of entries, far past the array.
        # An empty range is accepted, as the seed accepts it; its range_done BUG()s.
        raise UsageError(
            UsageCode.RANGE_EMPTY,
            "hmm_vma_get_pfns",
            f"range [{range_.start:#x}, {range_.end:#x}) is reversed; the seed would register "
            "it and corrupt memory on the next overlapping invalidation; give end > start",
        )
    if range_._hmm is not None:
        raise UsageError(
            UsageCode.RANGE_ALREADY_REGISTERED,
            "hmm_vma_get_pfns",
            "this range is already registered; call hmm_vma_range_done before snapshotting it "
            "again (a second list_add corrupts hmm->ranges)",
        )
    mm = vma.mm
    if mm.exiting:
        raise UsageError(
            UsageCode.MM_EXITED,
            "hmm_vma_get_pfns",
            "the mm has exited; its pages are gone and no invalidation would reach this range",
        )
    hmm = _hmm_register(mm, "hmm_vma_get_pfns")
    if hmm is None:
        return -Errno.ENOMEM
    # The seed's "ops == NULL" check (-EINVAL) cannot fail sequentially: hmm_register always
    # sets the notifier ops before returning, so a snapshot without any mirror succeeds.
    if vma.special:
        range_._fill(range_.encoding.value(HmmPfnValue.SPECIAL))
        return -Errno.EINVAL
    if not vma.read:
        range_._fill(range_.encoding.value(HmmPfnValue.NONE))
        return -Errno.EPERM
    range_._valid = True
    hmm._ranges.insert(0, range_)
    range_._hmm = hmm
    range_._walk()
    return 0


def hmm_vma_range_done(range_: HmmRange) -> bool:
    """Stop tracking ``range_`` and return whether it stayed valid (§3.9).

    Raises :class:`UsageError` where the kernel would ``BUG()`` (``end <= start``) or corrupt
    its list (a range that is not registered, or ``range_done`` called twice); the range and the
    hmm are then unchanged.
    """
    if range_.end <= range_.start:
        raise UsageError(
            UsageCode.RANGE_EMPTY,
            "hmm_vma_range_done",
            f"range [{range_.start:#x}, {range_.end:#x}) has end <= start; the kernel BUG()s",
        )
    owner = range_._hmm
    if owner is None:
        if range_._done:
            raise UsageError(
                UsageCode.RANGE_DONE_TWICE,
                "hmm_vma_range_done",
                "called twice for one snapshot; call it once and only once per successful "
                "hmm_vma_get_pfns (a second list_del corrupts hmm->ranges)",
            )
        raise UsageError(
            UsageCode.RANGE_NOT_REGISTERED,
            "hmm_vma_range_done",
            "this range is not registered: no hmm_vma_get_pfns on it returned 0 (a failed "
            "snapshot registers nothing); the kernel's list_del would corrupt memory",
        )
    # Seed quirk: hmm_register here re-creates a struct hmm (and its notifier) if the last
    # mirror was unregistered meanwhile (bug history #11).
    if _hmm_register(range_.vma.mm, "hmm_vma_range_done") is None:
        range_._fill(0)
        return False
    # list_del unlinks the range from whatever list it is on, which may be a freed hmm's.
    owner._ranges.remove(range_)
    range_._hmm = None
    range_._done = True
    return range_._valid


def _hmm_invalidate_range(hmm: Hmm, device: bool, update: HmmUpdate) -> int:
    """``hmm_invalidate_range`` (§3.5): the range pass, then the mirror pass if ``device``."""
    for range_ in hmm._ranges:
        range_._invalidate(update.start, update.end)
    if not device:
        return 0
    hmm._mirror_passes += 1
    try:
        for mirror in list(hmm._mirrors):
            assert mirror.ops is not None, "registered mirrors have ops"
            ret = mirror.ops.sync_cpu_device_pagetables(update)
            if not update.blockable and ret == -Errno.EAGAIN:
                # Mirrors already called keep what they did; the older ones are not called.
                return -Errno.EAGAIN
    finally:
        hmm._mirror_passes -= 1
    return 0


def _hmm_release(hmm: Hmm) -> None:
    """``hmm_release`` (§3.4): unlink mirrors newest first, calling release with the sem dropped.

    The loop re-reads the head each time, so a release op that unregisters mirrors is seen.
    ``mirror->hmm``, ``hmm->mm`` and every range are left as they are.
    """
    while hmm._mirrors:
        mirror = hmm._mirrors.pop(0)
        mirror._linked = False
        # The release op is optional in the kernel: a mirror without one is unlinked silently.
        release = getattr(mirror.ops, "release", None)
        if release is not None:
            release()


@final
class _HmmNotifier(MmuNotifier):
    """HMM's mmu notifier. Like the kernel's, it finds its hmm through ``mm->hmm``."""

    def describe(self) -> str:
        return "hmm_invalidate_range_start"

    def release(self, mm: MmStruct) -> None:
        hmm = mm.hmm
        assert hmm is not None, "VM_BUG_ON: a registered HMM notifier always has mm->hmm"
        _hmm_release(hmm)

    def invalidate_range_start(self, mm: MmStruct, start: int, end: int, blockable: bool) -> int:
        hmm = mm.hmm
        assert hmm is not None, "VM_BUG_ON: a registered HMM notifier always has mm->hmm"
        update = HmmUpdate(start=start, end=end, blockable=blockable)
        return _hmm_invalidate_range(hmm, True, update)

    def invalidate_range_end(self, mm: MmStruct, start: int, end: int) -> None:
        hmm = mm.hmm
        assert hmm is not None, "VM_BUG_ON: a registered HMM notifier always has mm->hmm"
        # The seed sets blockable = true here; nothing reads it, as no mirror is called.
        _hmm_invalidate_range(hmm, False, HmmUpdate(start=start, end=end, blockable=True))

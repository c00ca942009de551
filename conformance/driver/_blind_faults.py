"""The blind set's faulty drivers, second half: the fault path, release and decoding (DRV-4,
DRV-5).

Each is :class:`~conformance.driver._blind_base.BlindBase` with one hook changed to carry one
bug; its docstring names the bug, the rule that must catch it and where the bug comes from.
"""

from __future__ import annotations

from hmm_ref import (
    DEFAULT_ENCODING,
    FaultStep,
    HmmPfnFlag,
    HmmPfnValue,
    HmmRange,
    RwSemaphore,
    SleepMonitor,
    Spinlock,
)

from ._blind_base import EFAULT, EVERYWHERE, BlindBase, BlindFault

# =====================================================================================
# DRV-4: the fault path
# =====================================================================================


class IgnoreRangeDone(BlindBase):
    """Bug: CHECK calls range_done under D but commits whatever it said.
    Rules: DRV-4 (then DRV-5). Origin: kernel-bug-history #17 (amdkfd ignored the result)."""

    def _decide(self, f: BlindFault, valid: bool, rng: HmmRange) -> None:
        super()._decide(f, True, rng)


class InvertedRangeDone(BlindBase):
    """Bug: the sense of range_done is inverted (read as 'needs retry'): commits when it said
    False, retries when it said True (so an untouched fault never finishes).
    Rules: DRV-4 (then DRV-5). Origin: kernel-bug-history #17 (valid vs read_retry inversion)."""

    def _decide(self, f: BlindFault, valid: bool, rng: HmmRange) -> None:
        super()._decide(f, not valid, rng)


class CheckBeforeLock(BlindBase):
    """Bug: the LOCK step calls range_done *before* taking D; CHECK then commits on that earlier
    answer (with D held). Nothing can run between the two calls in one step, so it is only a
    lock-order breach.
    Rules: DRV-4 (range_done not under D). Origin: mutation (kernel-drivers-usage §7 'what
    breaks it' 1)."""

    def _lock_step(self, f: BlindFault) -> None:
        assert f.range is not None
        f.pending_valid = self.env.hmm_vma_range_done(f.range)
        super()._lock_step(f)

    def _check_step(self, f: BlindFault) -> None:
        rng = f.range
        assert rng is not None
        assert f.pending_valid is not None
        f.range = None
        self._decide(f, f.pending_valid, rng)
        f.pending_valid = None
        f.next = FaultStep.UNLOCK


class CommitAfterUnlock(BlindBase):
    """Bug: CHECK calls range_done under D, but the commit is done in the UNLOCK step after D is
    released (an invalidation between CHECK and UNLOCK is then overwritten).
    Rules: DRV-4 (commit not under D), and DRV-5 when an invalidation lands between CHECK and
    UNLOCK... but that invalidation would need D, so mostly DRV-4. Origin: mutation."""

    def _check_step(self, f: BlindFault) -> None:
        rng = f.range
        assert rng is not None
        valid = self.env.hmm_vma_range_done(rng)
        live = self.env.mirror.registered
        f.pending_valid = valid and live
        f.outcome = 0 if f.pending_valid else (None if live else EFAULT)
        f.next = FaultStep.UNLOCK

    def _unlock_step(self, f: BlindFault) -> None:
        rng = f.range
        f.range = None
        self._d_unlock_r(f.owner)
        if f.pending_valid and rng is not None:
            self._commit(rng)
        f.pending_valid = None
        if f.outcome is None:
            f.next = FaultStep.SNAPSHOT
        else:
            self._finish(f, f.outcome)


class CommitAfterRelease(BlindBase):
    """Bug: CHECK does not look at whether the mirror is still registered: a fault that
    snapshotted before exit gets True from range_done after release (the seed leaves ranges
    valid, REL-3) and commits pages the CPU has since unmapped.
    Rules: DRV-5 (DRV-4 is kept: range_done was True under D). Origin: kernel-bug-history #12."""

    def _decide(self, f: BlindFault, valid: bool, rng: HmmRange) -> None:
        if valid:
            self._commit(rng)
            f.outcome = 0
        else:
            f.outcome = None


# =====================================================================================
# Release, permissions, decoding
# =====================================================================================


class ReleaseNoClear(BlindBase):
    """Bug: ``release`` does nothing (the driver relies on its later unregister to drop device
    mappings), so after exit the device still maps the process's old pages.
    Rules: DRV-5. Origin: kernel-bug-history #1 / kernel-drivers-usage §6 'exit path'."""

    def release(self) -> None:
        return None


class WriteWithoutFlag(BlindBase):
    """Bug: every committed entry gets device write permission, WRITE flag or not.
    Rules: DRV-5 (device has more rights than the CPU). Origin: mutation (DRV-5 'WRITE is the
    only source of device write permission')."""

    def _decode(self, range_: HmmRange, entry: int) -> tuple[int, bool] | None:
        dec = super()._decode(range_, entry)
        return None if dec is None else (dec[0], True)


class DecodeDefaultEncoding(BlindBase):
    """Bug: entries are decoded with hmm_ref's DEFAULT_ENCODING (a hard-coded layout), not the
    range's own encoding. Wrong only when the case's encoding differs from the default.
    Rules: DRV-5. Origin: mutation (DRV-5 'decoded with the range's own encoding')."""

    def _decode(self, range_: HmmRange, entry: int) -> tuple[int, bool] | None:
        enc = DEFAULT_ENCODING
        pfn = enc.decode(entry)
        if pfn is None:
            return None
        return pfn, bool(entry & enc.flag(HmmPfnFlag.WRITE))


class ErrorValueAsPage(BlindBase):
    """Bug: the decoder treats only ``values[NONE]`` as 'no page'; ERROR (poison) and SPECIAL
    values (and anything without VALID) are decoded as a pfn and committed.
    Rules: DRV-5. Origin: kernel-bug-history #22 (ERROR entries mishandled by drivers) /
    mutation."""

    def _decode(self, range_: HmmRange, entry: int) -> tuple[int, bool] | None:
        enc = range_.encoding
        if entry == enc.value(HmmPfnValue.NONE):
            return None
        return entry >> enc.pfn_shift, bool(entry & enc.flag(HmmPfnFlag.WRITE))


class RwsemReadInInvalidate(BlindBase):
    """Bug: D is a read/write semaphore; faults commit under the read side (as the dummy driver)
    but the invalidation callback also takes only the READ side (amdgpu's scheme, with the
    roles of the two sides mixed up), so it can clear entries while a fault holds D.
    Rules: DRV-4 (callback half: must take D for writing). Origin: kernel-drivers-usage §4
    (amdgpu's callback takes amn->lock for read)."""

    def _make_locks(self, monitor: SleepMonitor) -> None:
        self.D = RwSemaphore(self.LOCK_NAME, monitor)
        self.pt = Spinlock("blind.pt", monitor)

    def _rw(self) -> RwSemaphore:
        assert isinstance(self.D, RwSemaphore)
        return self.D

    # the callback's side: BUG: read instead of write
    def _d_lock_w(self, owner: str) -> None:
        self._rw().down_read(owner)

    def _d_trylock_w(self, owner: str) -> bool:
        return self._rw().down_read_trylock(owner)

    def _d_unlock_w(self, owner: str) -> None:
        self._rw().up_read(owner)

    def _d_busy_w(self) -> bool:
        return self._rw().would_block_read()

    # the fault side: read, correct
    def _d_lock_r(self, owner: str) -> None:
        self._rw().down_read(owner)

    def _d_unlock_r(self, owner: str) -> None:
        self._rw().up_read(owner)

    def _d_busy_r(self) -> bool:
        return self._rw().would_block_read()

    # release takes the write side, correctly
    def release(self) -> None:
        owner = "blind/release"
        self._rw().down_write(owner)
        self._clear(*EVERYWHERE)
        self._rw().up_write(owner)

    def release_would_block(self) -> bool:
        return self._rw().would_block_write()

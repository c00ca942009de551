"""How an mm dies: the OOM reaper (``mm/oom_kill.c``, 4.19) and ``exit_mmap``.

The reaper is the caller the seed patch exists for. Rules (kernel-semantics §6, MN-2):

1. One attempt visits every vma it may discard (here: every vma that is not special) and
   calls the **non-blockable** start over the whole vma.
2. If that start fails, the vma is skipped: not unmapped, and **no end is called** for it
   (END-3). The attempt goes on with the next vma and counts as failed.
3. If it succeeds, the vma's pages are unmapped and the normal end is called.
4. An attempt whose mmap_sem trylock fails counts as failed without visiting any vma. An
   attempt that finds ``MMF_OOM_SKIP`` already set (an earlier reaper, or ``exit_mmap``) counts
   as done without visiting any vma. A successful pass logs "reaped process".
5. Up to ``MAX_OOM_REAP_RETRIES`` (10) attempts; after the last failed one the reaper logs
   "unable to reap" and gives up. Either way it sets ``MMF_OOM_SKIP`` on the mm.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass
from typing import final

from ._mmu_notifier import (
    mmu_notifier_invalidate_range_end,
    mmu_notifier_invalidate_range_start,
    mmu_notifier_invalidate_range_start_nonblock,
    mmu_notifier_release,
)
from ._world import MmStruct

__all__ = [
    "MAX_OOM_REAP_RETRIES",
    "OomReapReport",
    "ReapAttempt",
    "VmaReap",
    "exit_mmap",
    "oom_reap_task",
]

#: ``MAX_OOM_REAP_RETRIES`` in ``mm/oom_kill.c``.
MAX_OOM_REAP_RETRIES = 10


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class VmaReap:
    """What one attempt did with one vma."""

    start: int
    end: int
    #: What the non-blockable start returned: 0, or the error that made the reaper skip it.
    result: int

    @property
    def reaped(self) -> bool:
        """True if the vma was unmapped (its start succeeded)."""
        return self.result == 0


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class ReapAttempt:
    """One pass of ``oom_reap_task_mm`` over the mm."""

    #: 1 for the first attempt.
    number: int
    #: False if the mmap_sem trylock failed, so no vma was visited.
    mmap_sem_taken: bool
    #: True if MMF_OOM_SKIP was already set, so there was nothing left to do.
    oom_skip: bool = False
    vmas: tuple[VmaReap, ...] = ()

    @property
    def succeeded(self) -> bool:
        """True if the lock was taken and every visited vma was reaped (or none needed it)."""
        return self.mmap_sem_taken and all(vma.reaped for vma in self.vmas)


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class OomReapReport:
    """The outcome of ``oom_reap_task``: every attempt, and whether the reaper gave up."""

    attempts: tuple[ReapAttempt, ...]
    #: True if all ``MAX_OOM_REAP_RETRIES`` attempts failed ("oom_reaper: unable to reap").
    gave_up: bool

    @property
    def reaped_in_attempt(self) -> int | None:
        """The number of the attempt that succeeded, or None if none did."""
        for attempt in self.attempts:
            if attempt.succeeded:
                return attempt.number
        return None


def _reap_once(mm: MmStruct) -> tuple[VmaReap, ...]:
    """``__oom_reap_task_mm``: one non-blockable pass over the reapable vmas."""
    outcomes: list[VmaReap] = []
    for vma in mm.vmas:
        if vma.special:  # hugetlb, VM_PFNMAP and friends are never reaped
            continue
        ret = mmu_notifier_invalidate_range_start_nonblock(mm, vma.start, vma.end)
        if ret == 0:
            mm.clear_ptes(vma.start, vma.end)
            mmu_notifier_invalidate_range_end(mm, vma.start, vma.end)
        outcomes.append(VmaReap(start=vma.start, end=vma.end, result=ret))
    return tuple(outcomes)


def _reap_attempt(mm: MmStruct, number: int, mmap_sem_busy: Container[int]) -> ReapAttempt:
    """``oom_reap_task_mm``: one attempt, under a trylock of mmap_sem."""
    if number in mmap_sem_busy:
        return ReapAttempt(number=number, mmap_sem_taken=False)
    if mm.mmf_oom_skip:
        return ReapAttempt(number=number, mmap_sem_taken=True, oom_skip=True)
    attempt = ReapAttempt(number=number, mmap_sem_taken=True, vmas=_reap_once(mm))
    if attempt.succeeded:
        mm.printk(
            f"oom_reaper: reaped process {mm.pid} ({mm.comm}), now "
            f"anon-rss:{mm.rss_pages() * 4}kB, file-rss:0kB, shmem-rss:0kB"
        )
    return attempt


def oom_reap_task(mm: MmStruct, *, mmap_sem_busy: Container[int] = frozenset()) -> OomReapReport:
    """Reap ``mm`` as the OOM reaper thread does; attempts in ``mmap_sem_busy`` find it locked.

    Between attempts the kernel sleeps HZ/10; here the mirrors' callbacks are simply called
    again, so a driver that is busy in one attempt can be idle in the next.
    """
    attempts: list[ReapAttempt] = []
    for number in range(1, MAX_OOM_REAP_RETRIES + 1):
        attempts.append(_reap_attempt(mm, number, mmap_sem_busy))
        if attempts[-1].succeeded:
            break
    gave_up = not attempts[-1].succeeded
    if gave_up:
        mm.printk(f"oom_reaper: unable to reap pid:{mm.pid} ({mm.comm})")
    mm.mmf_oom_skip = True
    return OomReapReport(attempts=tuple(attempts), gave_up=gave_up)


def exit_mmap(mm: MmStruct, *, oom_victim: bool = False) -> None:
    """Process exit: release every notifier, then unmap every vma with a blockable start/end.

    After the release no notifier is registered any more, so the unmapping reaches nobody: a
    range registered before exit is never invalidated (the seed's REL-3 defect). An OOM victim
    is first reaped once more (result ignored) and marked ``MMF_OOM_SKIP``, as in 4.19, so a
    reaper that comes later finds nothing to do.
    """
    mmu_notifier_release(mm)
    if oom_victim:
        _reap_once(mm)
        mm.mmf_oom_skip = True
    for vma in mm.vmas:
        mmu_notifier_invalidate_range_start(mm, vma.start, vma.end)
        mm.clear_ptes(vma.start, vma.end)
        mmu_notifier_invalidate_range_end(mm, vma.start, vma.end)

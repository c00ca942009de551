"""MN: the mmu-notifier chain around HMM, and the OOM reaper that calls it."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import hmm_ref as H

from ._support import EAGAIN, Mirrors, make_mm, page

Start = Callable[[H.MmStruct, int, int, bool], int]


class Recording(H.MmuNotifier):
    """A notifier that answers from ``reply`` and appends its name to ``log`` on each start."""

    def __init__(self, name: str, log: list[str], reply: int = 0) -> None:
        self.name = name
        self.log = log
        self.reply = reply
        self.released = 0

    def describe(self) -> str:
        return f"{self.name}_start"

    def invalidate_range_start(self, mm: H.MmStruct, start: int, end: int, blockable: bool) -> int:
        self.log.append(self.name)
        return self.reply

    def release(self, mm: H.MmStruct) -> None:
        self.released += 1


def _chain(*replies: int) -> tuple[H.MmStruct, list[str], list[Recording]]:
    mm, _ = make_mm()
    log: list[str] = []
    notifiers = [Recording(f"n{i}", log, reply) for i, reply in enumerate(replies)]
    for notifier in notifiers:
        assert H.mmu_notifier_register(notifier, mm) == 0
    return mm, log, notifiers


def test_MN_1_non_blockable_calls_everyone_and_returns_the_last_error() -> None:
    """A failed notifier does not stop the chain; the last non-zero value is returned."""
    mm, log, _ = _chain(EAGAIN, 0, -H.Errno.ENOMEM, 0)
    assert H.mmu_notifier_invalidate_range_start_nonblock(mm, page(0), page(1)) == EAGAIN
    assert log == ["n3", "n2", "n1", "n0"]  # newest registration first
    assert mm.dmesg == (
        "n2_start callback failed with -12 in non-blockable context.",
        "n0_start callback failed with -11 in non-blockable context.",
    )


def test_MN_1_blockable_ignores_errors() -> None:
    """A blockable start calls everyone, and the caller goes on to end regardless."""
    mm, log, _ = _chain(EAGAIN, 0)
    H.mmu_notifier_invalidate_range_start(mm, page(0), page(1))
    assert log == ["n1", "n0"]
    assert mm.dmesg == ("n0_start callback failed with -11 in blockable context.",)
    assert mm.open_windows == ((page(0), page(1)),)
    H.mmu_notifier_invalidate_range_end(mm, page(0), page(1))


def test_MN_1_hmm_is_one_notifier_among_others() -> None:
    """HMM's -EAGAIN is logged under its own name and other notifiers are still called."""
    mm, log, _ = _chain(0)
    Mirrors(mm).add("gpu", reply=EAGAIN)
    H.mmu_notifier_register(Recording("late", log), mm)
    assert H.mmu_notifier_invalidate_range_start_nonblock(mm, page(0), page(1)) == EAGAIN
    assert log == ["late", "n0"]
    assert mm.dmesg == (
        "hmm_invalidate_range_start callback failed with -11 in non-blockable context.",
    )


def test_MN_1_release_calls_every_release_then_unlinks_all() -> None:
    """Release calls each notifier's release op once, then the chain is empty."""
    mm, log, notifiers = _chain(0, 0)
    H.mmu_notifier_release(mm)
    assert [n.released for n in notifiers] == [1, 1]
    assert mm.notifier_list == []
    assert mm.exiting
    H.mmu_notifier_invalidate_range_start(mm, page(0), page(1))
    assert log == []


def test_MN_1_notifier_registration_rules() -> None:
    """A notifier goes on the head once; twice, or on an exited mm, is a usage error."""
    mm, _, notifiers = _chain(0, 0)
    assert mm.notifier_list == [notifiers[1], notifiers[0]]
    with pytest.raises(H.UsageError) as twice:
        H.mmu_notifier_register(notifiers[0], mm)
    assert twice.value.code is H.UsageCode.NOTIFIER_STATE
    H.mmu_notifier_unregister_no_release(notifiers[0], mm)
    H.mmu_notifier_unregister_no_release(notifiers[0], mm)
    assert mm.notifier_list == [notifiers[1]]
    assert notifiers[0].released == 0
    H.mmu_notifier_release(mm)
    with pytest.raises(H.UsageError) as exited:
        H.mmu_notifier_register(notifiers[0], mm)
    assert exited.value.code is H.UsageCode.MM_EXITED


def test_MN_1_default_notifier_ops_do_nothing() -> None:
    """The base class behaves like NULL ops: start succeeds, end and release do nothing."""
    mm, _ = make_mm()
    base = H.MmuNotifier()
    H.mmu_notifier_register(base, mm)
    assert base.describe() == "MmuNotifier.invalidate_range_start"
    assert H.mmu_notifier_invalidate_range_start_nonblock(mm, page(0), page(1)) == 0
    H.mmu_notifier_invalidate_range_end(mm, page(0), page(1))
    H.mmu_notifier_release(mm)
    assert mm.dmesg == ()


def _three_vmas() -> H.MmStruct:
    mm = H.MmStruct(pid=77, comm="victim")
    for index in range(1, 4):
        mm.mmap(index * 0x10000, index * 0x10000 + 0x2000)
        mm.set_pte(index * 0x10000, H.Pte.present(index))
    return mm


def test_MN_2_idle_mirrors_reaped_in_first_attempt() -> None:
    """With no mirror needing to sleep, every vma is reaped (unmapped) in attempt 1."""
    mm = _three_vmas()
    mirrors = Mirrors(mm)
    mirrors.add("gpu")
    report = H.oom_reap_task(mm)
    assert report.reaped_in_attempt == 1
    assert len(report.attempts) == 1
    assert not report.gave_up
    assert mm.mmf_oom_skip
    assert all(vma.reaped for vma in report.attempts[0].vmas)
    assert all(mm.pte(index * 0x10000) == H.PTE_NONE for index in range(1, 4))
    assert mm.open_windows == ()
    assert all(e.update is not None and not e.update.blockable for e in mirrors.journal)
    assert mm.dmesg == (
        "oom_reaper: reaped process 77 (victim), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB",
    )


def test_MN_2_busy_vma_skipped_others_reaped_then_give_up() -> None:
    """A vma whose start fails is skipped, the others are reaped; 10 tries, then give up."""
    mm = _three_vmas()

    def busy_second(update: H.HmmUpdate) -> int:
        return EAGAIN if update.start == 0x20000 else 0

    Mirrors(mm).add("gpu", reply=busy_second)
    report = H.oom_reap_task(mm)
    assert report.gave_up
    assert len(report.attempts) == H.MAX_OOM_REAP_RETRIES == 10
    assert report.reaped_in_attempt is None
    assert [v.reaped for v in report.attempts[0].vmas] == [True, False, True]
    assert report.attempts[0].vmas[1].result == EAGAIN
    assert mm.pte(0x20000) == H.Pte.present(2)
    assert mm.pte(0x10000) == H.PTE_NONE
    assert mm.mmf_oom_skip
    assert mm.dmesg[-1] == "oom_reaper: unable to reap pid:77 (victim)"


def test_MN_2_a_driver_that_becomes_idle_is_reaped_in_a_later_attempt() -> None:
    """Each attempt asks again; the first attempt in which every vma succeeds ends the reaping."""
    mm = _three_vmas()
    calls: list[int] = []

    def busy_twice(update: H.HmmUpdate) -> int:
        calls.append(update.start)
        return EAGAIN if update.start == 0x20000 and calls.count(0x20000) <= 2 else 0

    Mirrors(mm).add("gpu", reply=busy_twice)
    report = H.oom_reap_task(mm)
    assert report.reaped_in_attempt == 3
    assert not report.gave_up
    assert calls.count(0x10000) == 3  # every attempt revisits every vma


def test_MN_2_mmap_sem_contention_fails_an_attempt() -> None:
    """An attempt that cannot take mmap_sem visits no vma and counts as failed."""
    mm = _three_vmas()
    report = H.oom_reap_task(mm, mmap_sem_busy={1, 2})
    assert [a.mmap_sem_taken for a in report.attempts] == [False, False, True]
    assert report.reaped_in_attempt == 3


def test_MN_2_all_attempts_contended_gives_up() -> None:
    """If mmap_sem is never available the reaper gives up and still sets MMF_OOM_SKIP."""
    mm = _three_vmas()
    report = H.oom_reap_task(mm, mmap_sem_busy=range(1, 11))
    assert report.gave_up
    assert mm.mmf_oom_skip
    assert mm.dmesg == ("oom_reaper: unable to reap pid:77 (victim)",)


def test_MN_2_special_vmas_are_not_reaped() -> None:
    """Hugetlb and VM_SPECIAL vmas are never visited by the reaper."""
    mm = H.MmStruct()
    mm.mmap(0x10000, 0x12000, special=True)
    mm.mmap(0x20000, 0x22000)
    report = H.oom_reap_task(mm)
    assert [(v.start, v.reaped) for v in report.attempts[0].vmas] == [(0x20000, True)]


def test_MN_2_a_second_reaper_finds_mmf_oom_skip_and_does_nothing() -> None:
    """Once MMF_OOM_SKIP is set, an attempt visits no vma and counts as done, silently."""
    mm = _three_vmas()
    mirrors = Mirrors(mm)
    mirrors.add("gpu", reply=EAGAIN)
    assert H.oom_reap_task(mm).gave_up
    mirrors.clear()
    logged = len(mm.dmesg)
    again = H.oom_reap_task(mm)
    assert not again.gave_up
    assert [(a.oom_skip, a.vmas) for a in again.attempts] == [(True, ())]
    assert mirrors.journal == []
    assert len(mm.dmesg) == logged


def test_MN_2_an_oom_victim_reaped_at_exit_is_skipped_by_the_reaper() -> None:
    """exit_mmap reaps an OOM victim itself and sets MMF_OOM_SKIP; the reaper then has nothing."""
    mm = _three_vmas()
    mirrors = Mirrors(mm)
    mirrors.add("gpu", reply=EAGAIN)
    H.exit_mmap(mm, oom_victim=True)
    assert mm.mmf_oom_skip
    assert mirrors.called() == []  # the notifiers were released before the reap
    assert H.oom_reap_task(mm).attempts[0].oom_skip


def test_MN_1_a_notifier_removed_during_the_walk_is_not_visited() -> None:
    """The chain walks the live list: a notifier unlinked before its turn is skipped."""
    mm, _ = make_mm()
    log: list[str] = []
    victim = Recording("victim", log)
    H.mmu_notifier_register(victim, mm)

    class Remover(Recording):
        def invalidate_range_start(
            self, mm: H.MmStruct, start: int, end: int, blockable: bool
        ) -> int:
            H.mmu_notifier_unregister_no_release(victim, mm)
            H.mmu_notifier_register(Recording("added", log), mm)
            return super().invalidate_range_start(mm, start, end, blockable)

    H.mmu_notifier_register(Remover("remover", log), mm)
    H.mmu_notifier_invalidate_range_start(mm, page(0), page(1))
    assert log == ["remover"]

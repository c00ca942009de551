"""The seed patch's own story, told as tests: what changed for the OOM reaper and mirrors."""

from __future__ import annotations

import hmm_ref as H

from ._support import EAGAIN, Mirrors, make_mm, page


def test_non_blockable_start_with_willing_mirrors_returns_0() -> None:
    """The patch's point: when no mirror needs to sleep, a non-blockable start succeeds."""
    mm, _ = make_mm()
    mirrors = Mirrors(mm)
    mirrors.add("A")
    mirrors.add("B")
    assert H.mmu_notifier_invalidate_range_start_nonblock(mm, page(0), page(4)) == 0
    assert mirrors.called() == ["B", "A"]


def test_one_eagain_fails_the_start_and_older_mirrors_are_skipped() -> None:
    """One mirror answering -EAGAIN makes the start -EAGAIN, and older mirrors are not called."""
    mm, _ = make_mm()
    mirrors = Mirrors(mm)
    mirrors.add("old")
    mirrors.add("busy", reply=EAGAIN)
    assert H.mmu_notifier_invalidate_range_start_nonblock(mm, page(0), page(4)) == EAGAIN
    assert mirrors.called() == ["busy"]


def test_blockable_start_ignores_eagain() -> None:
    """A blockable start calls every mirror and returns 0 even if one answers -EAGAIN."""
    mm, _ = make_mm()
    mirrors = Mirrors(mm)
    mirrors.add("old")
    mirrors.add("busy", reply=EAGAIN)
    hmm = mm.hmm
    assert hmm is not None
    assert hmm.notifier.invalidate_range_start(mm, page(0), page(4), True) == 0
    assert mirrors.called() == ["busy", "old"]


def test_oom_reaper_reaps_everything_at_once_when_no_mirror_sleeps() -> None:
    """The reaper reaps every vma in its first attempt when every mirror is willing."""
    mm = H.MmStruct()
    for index in range(4):
        mm.mmap(0x100000 * (index + 1), 0x100000 * (index + 1) + 0x8000)
    Mirrors(mm).add("gpu")
    report = H.oom_reap_task(mm)
    assert report.reaped_in_attempt == 1
    assert [v.reaped for v in report.attempts[0].vmas] == [True] * 4


def test_oom_reaper_gives_up_after_10_attempts_when_a_mirror_always_eagains() -> None:
    """A mirror that always answers -EAGAIN makes the reaper give up after 10 attempts."""
    mm = H.MmStruct()
    mm.mmap(0x100000, 0x108000)
    Mirrors(mm).add("gpu", reply=EAGAIN)
    report = H.oom_reap_task(mm)
    assert report.gave_up
    assert len(report.attempts) == 10
    assert all(not attempt.succeeded for attempt in report.attempts)
    assert mm.mmf_oom_skip

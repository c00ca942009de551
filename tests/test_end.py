"""END: invalidation end, and the caller's side of the start/end pairing."""

from __future__ import annotations

import pytest

import hmm_ref as H

from ._support import EAGAIN, Mirrors, make_mm, page, snapshot


def test_END_1_end_calls_no_mirror() -> None:
    """invalidate_range_end runs no mirror callback."""
    mm, _ = make_mm()
    mirrors = Mirrors(mm)
    mirrors.add("A")
    H.mmu_notifier_invalidate_range_start(mm, page(0), page(1))
    mirrors.clear()
    H.mmu_notifier_invalidate_range_end(mm, page(0), page(1))
    assert mirrors.journal == []


def test_END_2_end_invalidates_a_snapshot_taken_inside_the_window() -> None:
    """A snapshot taken between start and end is marked invalid and cleared by the end."""
    mm, vma = make_mm()
    Mirrors(mm).add("A")
    H.mmu_notifier_invalidate_range_start(mm, page(2), page(4))
    mm.set_pte(page(2), H.PTE_NONE)
    mid = snapshot(vma, 0, 4)
    assert mid.valid
    H.mmu_notifier_invalidate_range_end(mm, page(2), page(4))
    assert not mid.valid
    assert mid.pfns[2:] == (0, 0)
    assert mid.pfns[0] != 0
    assert not H.hmm_vma_range_done(mid)


def test_END_3_no_end_after_a_failed_non_blockable_start() -> None:
    """After a non-blockable start fails the window is not open, and an end is refused."""
    mm, _ = make_mm()
    Mirrors(mm).add("A", reply=EAGAIN)
    assert H.mmu_notifier_invalidate_range_start_nonblock(mm, page(0), page(1)) == EAGAIN
    assert mm.open_windows == ()
    with pytest.raises(H.UsageError) as caught:
        H.mmu_notifier_invalidate_range_end(mm, page(0), page(1))
    assert caught.value.code is H.UsageCode.END_WITHOUT_START


def test_END_3_windows_pair_starts_with_ends() -> None:
    """A successful start opens its window, a blockable one always does, end closes it."""
    mm, _ = make_mm()
    Mirrors(mm).add("A", reply=EAGAIN)
    H.mmu_notifier_invalidate_range_start(mm, page(0), page(2))
    H.mmu_notifier_invalidate_range_start(mm, page(0), page(2))
    assert mm.open_windows == ((page(0), page(2)), (page(0), page(2)))
    assert mm.in_window(page(1))
    assert not mm.in_window(page(2))
    H.mmu_notifier_invalidate_range_end(mm, page(0), page(2))
    H.mmu_notifier_invalidate_range_end(mm, page(0), page(2))
    assert not mm.open_windows
    with pytest.raises(H.UsageError):
        H.mmu_notifier_invalidate_range_end(mm, page(0), page(2))


def test_END_3_the_oom_reaper_never_ends_a_failed_start() -> None:
    """The reaper's skipped vmas get no end call: the notifier sees starts only."""
    mm, _ = make_mm()
    ends: list[tuple[int, int]] = []

    class Counting(H.MmuNotifier):
        def invalidate_range_end(self, mm: H.MmStruct, start: int, end: int) -> None:
            ends.append((start, end))

    H.mmu_notifier_register(Counting(), mm)
    Mirrors(mm).add("A", reply=EAGAIN)
    report = H.oom_reap_task(mm)
    assert report.gave_up
    assert ends == []
    assert mm.open_windows == ()


@pytest.mark.parametrize(("start", "end"), [(page(0) + 1, page(1)), (page(2), page(1))])
def test_invalidation_bounds_are_checked(start: int, end: int) -> None:
    """Unaligned or empty invalidations are refused before any notifier runs."""
    mm, _ = make_mm()
    mirrors = Mirrors(mm)
    mirrors.add("A")
    with pytest.raises(H.UsageError):
        H.mmu_notifier_invalidate_range_start(mm, start, end)
    with pytest.raises(H.UsageError):
        H.mmu_notifier_invalidate_range_end(mm, start, end)
    assert mirrors.journal == []

"""INV: invalidation start, through the mmu-notifier chain as the mm calls it."""

from __future__ import annotations

import pytest

import hmm_ref as H

from ._support import EAGAIN, Mirrors, make_mm, page, snapshot


@pytest.mark.parametrize("blockable", [True, False])
def test_INV_1_each_mirror_gets_exactly_this_update_once(blockable: bool) -> None:
    """Every called mirror receives {start, end, INVALIDATE, blockable} exactly once."""
    mm, _ = make_mm()
    mirrors = Mirrors(mm)
    mirrors.add("A")
    mirrors.add("B")
    H.mmu_notifier_invalidate_range_start(mm, page(1), page(3), blockable=blockable)
    expected = H.HmmUpdate(start=page(1), end=page(3), blockable=blockable)
    assert expected.event is H.HmmUpdateEvent.INVALIDATE
    assert mirrors.ops("A").updates == [expected]
    assert mirrors.ops("B").updates == [expected]


@pytest.mark.parametrize("reply", [0, EAGAIN, -H.Errno.ENOMEM, -H.Errno.EIO, 7])
def test_INV_2_blockable_calls_everyone_and_returns_0(reply: int) -> None:
    """In blockable mode every mirror is called whatever the others answer, and HMM says 0."""
    mm, _ = make_mm()
    mirrors = Mirrors(mm)
    mirrors.add("A")
    mirrors.add("B", reply=reply)
    mirrors.add("C", reply=reply)
    hmm = mm.hmm
    assert hmm is not None
    assert hmm.notifier.invalidate_range_start(mm, page(0), page(1), True) == 0
    assert mirrors.called() == ["C", "B", "A"]


def test_INV_3_non_blockable_mirrors_see_blockable_false() -> None:
    """Every mirror called by a non-blockable start receives blockable=False."""
    mm, _ = make_mm()
    mirrors = Mirrors(mm)
    for name in "ABC":
        mirrors.add(name)
    assert H.mmu_notifier_invalidate_range_start_nonblock(mm, page(0), page(2)) == 0
    updates = [event.update for event in mirrors.journal]
    assert len(updates) == 3
    assert all(update is not None and not update.blockable for update in updates)


def test_INV_4_a_mirrors_eagain_is_the_result() -> None:
    """In non-blockable mode one mirror's exact -EAGAIN makes the start fail with -EAGAIN."""
    mm, _ = make_mm()
    mirrors = Mirrors(mm)
    mirrors.add("A", reply=EAGAIN)
    mirrors.add("B")
    assert H.mmu_notifier_invalidate_range_start_nonblock(mm, page(0), page(1)) == EAGAIN


def test_INV_5_no_spurious_eagain() -> None:
    """A non-blockable start whose mirrors all accept returns 0 (the parent tree said -EAGAIN)."""
    mm, _ = make_mm()
    mirrors = Mirrors(mm)
    mirrors.add("A")
    mirrors.add("B", reply=-H.Errno.ENOMEM)
    assert H.mmu_notifier_invalidate_range_start_nonblock(mm, page(0), page(1)) == 0
    assert mirrors.called() == ["B", "A"]


def test_INV_5_no_mirrors_no_failure() -> None:
    """An hmm with no mirror (created by a snapshot) never fails a non-blockable start."""
    mm, vma = make_mm()
    snapshot(vma)
    assert mm.hmm is not None
    assert H.mmu_notifier_invalidate_range_start_nonblock(mm, page(0), page(1)) == 0


def test_INV_6_success_means_every_mirror_was_called() -> None:
    """When the start returns 0, every mirror registered at the time was called before return."""
    mm, _ = make_mm()
    mirrors = Mirrors(mm)
    for name in "ABCD":
        mirrors.add(name, reply=-H.Errno.EIO if name == "B" else 0)
    assert H.mmu_notifier_invalidate_range_start_nonblock(mm, page(0), page(1)) == 0
    assert sorted(mirrors.called()) == ["A", "B", "C", "D"]


def test_INV_7_seed_stops_at_the_first_eagain() -> None:
    """The seed stops the loop at the first -EAGAIN: older mirrors are not called."""
    mm, _ = make_mm()
    mirrors = Mirrors(mm)
    mirrors.add("A")
    mirrors.add("B", reply=EAGAIN)
    mirrors.add("C")
    assert H.mmu_notifier_invalidate_range_start_nonblock(mm, page(0), page(1)) == EAGAIN
    assert mirrors.called() == ["C", "B"]


@pytest.mark.parametrize("other", [-H.Errno.ENOMEM, -H.Errno.EIO, -H.Errno.EINVAL, 1, -12345])
def test_INV_8_other_errors_neither_fail_nor_stop(other: int) -> None:
    """Answers other than 0 and -EAGAIN are ignored in non-blockable mode: no failure, no stop."""
    mm, _ = make_mm()
    mirrors = Mirrors(mm)
    mirrors.add("A")
    mirrors.add("B", reply=other)
    assert H.mmu_notifier_invalidate_range_start_nonblock(mm, page(0), page(1)) == 0
    assert mirrors.called() == ["B", "A"]


def test_INV_8_other_errors_do_not_mask_a_later_eagain() -> None:
    """An ignored error before an -EAGAIN does not change that the result is -EAGAIN."""
    mm, _ = make_mm()
    mirrors = Mirrors(mm)
    mirrors.add("A", reply=EAGAIN)
    mirrors.add("B", reply=-H.Errno.ENOMEM)
    assert H.mmu_notifier_invalidate_range_start_nonblock(mm, page(0), page(1)) == EAGAIN
    assert mirrors.called() == ["B", "A"]


def test_INV_9_ranges_are_invalid_before_any_mirror_runs() -> None:
    """When a callback runs, every overlapping range is already invalid and cleared."""
    mm, vma = make_mm()
    rng = snapshot(vma)
    untouched = snapshot(vma, 6, 8)
    seen: list[tuple[bool, int, bool]] = []

    def look(update: H.HmmUpdate) -> int:
        seen.append((rng.valid, rng.pfns[1], untouched.valid))
        return 0

    Mirrors(mm).add("A", reply=look)
    H.mmu_notifier_invalidate_range_start_nonblock(mm, page(1), page(2))
    assert seen == [(False, 0, True)]


def test_INV_9_ranges_stay_invalid_when_the_start_fails() -> None:
    """The range pass ran first, so a start that returns -EAGAIN still invalidated the range."""
    mm, vma = make_mm()
    rng = snapshot(vma)
    Mirrors(mm).add("A", reply=EAGAIN)
    assert H.mmu_notifier_invalidate_range_start_nonblock(mm, page(0), page(1)) == EAGAIN
    assert not rng.valid
    assert not H.hmm_vma_range_done(rng)


def test_a_mirror_may_snapshot_from_its_callback() -> None:
    """Ranges registered during the mirror pass are not hit by that start, but are by its end."""
    mm, vma = make_mm()
    taken: list[H.HmmRange] = []

    def snapshot_now(update: H.HmmUpdate) -> int:
        taken.append(snapshot(vma))
        return 0

    Mirrors(mm).add("A", reply=snapshot_now)
    H.mmu_notifier_invalidate_range_start(mm, page(0), page(1))
    assert taken[0].valid
    H.mmu_notifier_invalidate_range_end(mm, page(0), page(1))
    assert not taken[0].valid

"""RNG: snapshots (ranges), their encoding, invalidation and range_done."""

from __future__ import annotations

import pytest

import hmm_ref as H

from ._support import NPAGES, VMA_END, VMA_START, Mirrors, invalidate, make_mm, page, snapshot

ENC = H.DEFAULT_ENCODING


def test_RNG_1_snapshot_encodes_every_page_with_the_range_encoding() -> None:
    """A snapshot is valid and holds pfn << pfn_shift | VALID (| WRITE) per present page."""
    mm, vma = make_mm()
    rng = snapshot(vma)
    assert rng.valid
    assert rng.registered
    assert rng.pfns == tuple(
        ((0x100 + i) << 12) | 0x1 | (0x2 if i % 2 == 0 else 0) for i in range(NPAGES)
    )
    assert mm.hmm is not None
    assert mm.hmm.ranges == (rng,)


def test_RNG_1_encoding_follows_flags_values_and_shift() -> None:
    """Another driver's encoding (other bits, other shift) is honoured entry by entry."""
    mm, vma = make_mm()
    enc = H.PfnEncoding(flags=(1 << 63, 1 << 62, 1 << 61), values=(0xE, 0xF, 0xE), pfn_shift=4)
    mm.set_pte(page(1), H.Pte.device_private(0x55, write=True))
    mm.set_pte(page(2), H.PTE_SWAP)
    mm.set_pte(page(3), H.PTE_MIGRATION)
    mm.set_pte(page(4), H.PTE_NONE)
    rng = snapshot(vma, encoding=enc)
    assert rng.pfns[0] == (0x100 << 4) | (1 << 63) | (1 << 62)
    assert rng.pfns[1] == (0x55 << 4) | (1 << 63) | (1 << 62) | (1 << 61)
    assert rng.pfns[2:5] == (0xF, 0xF, 0xF)
    assert enc.decode(rng.pfns[0]) == (0x100 << 4 | (1 << 63) | (1 << 62)) >> 4
    assert enc.decode(0xF) is None


def test_RNG_1_newest_range_is_at_the_head() -> None:
    """Ranges are inserted at the head of hmm->ranges."""
    mm, vma = make_mm()
    first = snapshot(vma, 0, 2)
    second = snapshot(vma, 2, 4)
    assert mm.hmm is not None
    assert mm.hmm.ranges == (second, first)


def test_RNG_1_poison_stops_the_walk() -> None:
    """A poisoned entry reads values[ERROR] and the entries after it keep the caller's values."""
    mm, vma = make_mm()
    mm.set_pte(page(2), H.PTE_POISON)
    rng = H.HmmRange(vma=vma, start=page(0), end=page(4), pfns=[7, 7, 7, 7])
    assert H.hmm_vma_get_pfns(rng) == 0
    assert rng.pfns[2] == ENC.value(H.HmmPfnValue.ERROR)
    assert rng.pfns[3] == 7
    assert ENC.decode(rng.pfns[0]) == 0x100
    assert rng.valid


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (VMA_START - 0x1000, VMA_START + 0x1000),  # start before the vma
        (VMA_END, VMA_END + 0x1000),  # start at the vma's end
        (VMA_START, VMA_END + 0x1000),  # end past the vma
    ],
)
def test_RNG_2_bounds_outside_the_vma_are_einval(start: int, end: int) -> None:
    """Start or end outside the vma gives -EINVAL, entries untouched, nothing registered."""
    mm, vma = make_mm()
    npages = (end - start) // H.PAGE_SIZE
    rng = H.HmmRange(vma=vma, start=start, end=end, pfns=[5] * npages)
    assert H.hmm_vma_get_pfns(rng) == -H.Errno.EINVAL
    assert rng.pfns == (5,) * npages
    assert not rng.registered
    assert mm.hmm is None


def test_RNG_2_unreadable_vma_is_eperm_filled_with_none() -> None:
    """A vma without read permission gives -EPERM and values[NONE] everywhere."""
    mm, vma = make_mm(read=False)
    rng = H.HmmRange(vma=vma, start=page(0), end=page(3))
    assert H.hmm_vma_get_pfns(rng) == -H.Errno.EPERM
    assert rng.pfns == (ENC.value(H.HmmPfnValue.NONE),) * 3
    assert not rng.registered
    assert mm.hmm is not None
    assert mm.hmm.ranges == ()


def test_RNG_2_special_vma_is_einval_filled_with_special() -> None:
    """A hugetlb or VM_SPECIAL vma gives -EINVAL and values[SPECIAL] everywhere."""
    _, vma = make_mm(special=True)
    rng = H.HmmRange(vma=vma, start=page(0), end=page(3))
    assert H.hmm_vma_get_pfns(rng) == -H.Errno.EINVAL
    assert rng.pfns == (ENC.value(H.HmmPfnValue.SPECIAL),) * 3
    assert not rng.registered


def test_RNG_2_allocation_failure_is_enomem() -> None:
    """If the hmm cannot be allocated the snapshot returns -ENOMEM and registers nothing."""
    mm, vma = make_mm()
    mm.inject_alloc_failures(1)
    rng = H.HmmRange(vma=vma, start=page(0), end=page(1))
    assert H.hmm_vma_get_pfns(rng) == -H.Errno.ENOMEM
    assert not rng.registered
    assert rng.pfns == (0,)


@pytest.mark.parametrize(("first", "last"), [(0, 8), (2, 5), (3, 4), (6, 8)])
def test_RNG_3_invalidation_clears_exactly_the_overlap(first: int, last: int) -> None:
    """Overlapping entries become raw 0 (no VALID bit); entries outside do not change."""
    mm, vma = make_mm()
    rng = snapshot(vma)
    before = rng.pfns
    invalidate(mm, page(first), page(last))
    assert not rng.valid
    for index in range(NPAGES):
        expected = 0 if first <= index < last else before[index]
        assert rng.pfns[index] == expected
        assert (rng.pfns[index] & ENC.flag(H.HmmPfnFlag.VALID) != 0) == (expected != 0)


def test_RNG_3_invalidation_wider_than_the_range_clears_it_all() -> None:
    """An update covering more than the range clears every entry of the range."""
    mm, vma = make_mm()
    rng = snapshot(vma, 2, 4)
    invalidate(mm, page(0), page(8))
    assert rng.pfns == (0, 0)


def test_RNG_3_a_failed_non_blockable_start_still_clears() -> None:
    """The range pass runs whatever the start returns."""
    mm, vma = make_mm()
    rng = snapshot(vma)
    Mirrors(mm).add("A", reply=-H.Errno.EAGAIN)
    assert invalidate(mm, page(0), page(2), blockable=False) == -H.Errno.EAGAIN
    assert rng.pfns[:2] == (0, 0)
    assert not rng.valid


def test_RNG_4_disjoint_ranges_keep_valid_and_entries() -> None:
    """A range that neither overlaps nor touches the update is left alone."""
    mm, vma = make_mm()
    low = snapshot(vma, 0, 2)
    high = snapshot(vma, 6, 8)
    before = (low.pfns, high.pfns)
    invalidate(mm, page(3), page(5))
    assert low.valid
    assert high.valid
    assert (low.pfns, high.pfns) == before


def test_RNG_5_update_ending_at_range_start_invalidates_without_clearing() -> None:
    """Seed quirk: update.end == range.start marks the range invalid and clears no entry."""
    mm, vma = make_mm()
    rng = snapshot(vma, 4, 8)
    before = rng.pfns
    invalidate(mm, page(2), page(4))
    assert not rng.valid
    assert rng.pfns == before


def test_RNG_5_update_starting_at_range_end_is_no_overlap() -> None:
    """update.start == range.end is not an overlap: the range stays valid."""
    mm, vma = make_mm()
    rng = snapshot(vma, 0, 4)
    invalidate(mm, page(4), page(6))
    assert rng.valid


def test_RNG_6_valid_is_sticky() -> None:
    """Once invalid, a range stays invalid through later starts and ends until range_done."""
    mm, vma = make_mm()
    rng = snapshot(vma, 0, 2)
    invalidate(mm, page(0), page(1))
    invalidate(mm, page(4), page(5))
    H.mmu_notifier_invalidate_range_start(mm, page(6), page(7))
    H.mmu_notifier_invalidate_range_end(mm, page(6), page(7))
    assert not rng.valid
    assert H.hmm_vma_range_done(rng) is False


def test_RNG_7_range_done_returns_valid_and_unregisters() -> None:
    """range_done returns the valid flag, unlinks the range, and later invalidations skip it."""
    mm, vma = make_mm()
    rng = snapshot(vma)
    assert H.hmm_vma_range_done(rng) is True
    assert not rng.registered
    assert mm.hmm is not None
    assert mm.hmm.ranges == ()
    before = rng.pfns
    invalidate(mm, page(0), page(8))
    assert rng.pfns == before
    assert rng.valid


def test_RNG_7_a_range_can_be_snapshotted_again_after_done() -> None:
    """The driver's retry loop reuses one range: snapshot, done, snapshot again."""
    mm, vma = make_mm()
    rng = snapshot(vma, 0, 2)
    invalidate(mm, page(0), page(1))
    assert H.hmm_vma_range_done(rng) is False
    assert H.hmm_vma_get_pfns(rng) == 0
    assert rng.valid
    assert H.hmm_vma_range_done(rng) is True


def test_RNG_8_range_done_true_means_entries_match_the_cpu() -> None:
    """If range_done says True, every entry is the encoding of the CPU entry at that moment."""
    mm, vma = make_mm()
    Mirrors(mm).add("A")
    stale = snapshot(vma, 0, 4)
    fresh = snapshot(vma, 4, 8)
    H.mmu_notifier_invalidate_range_start(mm, page(1), page(2))
    mm.set_pte(page(1), H.Pte.present(0x999, write=True))
    H.mmu_notifier_invalidate_range_end(mm, page(1), page(2))
    assert H.hmm_vma_range_done(stale) is False
    assert H.hmm_vma_range_done(fresh) is True
    assert fresh.pfns == tuple(ENC.encode(mm.pte(fresh.page_address(i))) for i in range(4))


def test_RNG_9_range_done_twice_is_refused() -> None:
    """A second range_done for one snapshot is a usage error and changes nothing."""
    _, vma = make_mm()
    rng = snapshot(vma)
    other = snapshot(vma, 0, 1)
    assert H.hmm_vma_range_done(rng)
    with pytest.raises(H.UsageError) as caught:
        H.hmm_vma_range_done(rng)
    assert caught.value.code is H.UsageCode.RANGE_DONE_TWICE
    assert other.registered
    assert H.hmm_vma_range_done(other)


def test_RNG_9_range_done_on_an_unknown_range_is_refused() -> None:
    """range_done on a range never snapshotted, or whose snapshot failed, is a usage error."""
    _, vma = make_mm()
    never = H.HmmRange(vma=vma, start=page(0), end=page(1))
    failed = H.HmmRange(vma=vma, start=page(0), end=VMA_END + H.PAGE_SIZE)
    assert H.hmm_vma_get_pfns(failed) == -H.Errno.EINVAL
    for rng in (never, failed):
        with pytest.raises(H.UsageError) as caught:
            H.hmm_vma_range_done(rng)
        assert caught.value.code is H.UsageCode.RANGE_NOT_REGISTERED


@pytest.mark.parametrize(("first", "last"), [(2, 2), (3, 1)])
def test_RNG_9_range_done_on_an_empty_range_is_refused(first: int, last: int) -> None:
    """range_done with end <= start is the kernel's BUG(): a usage error here."""
    _, vma = make_mm()
    rng = H.HmmRange(vma=vma, start=page(first), end=page(last))
    with pytest.raises(H.UsageError) as caught:
        H.hmm_vma_range_done(rng)
    assert caught.value.code is H.UsageCode.RANGE_EMPTY
    assert caught.value.function == "hmm_vma_range_done"


def test_empty_snapshot_is_accepted_and_only_range_done_refuses_it() -> None:
    """As in the seed, an empty range registers (returns 0); its range_done is the BUG()."""
    mm, vma = make_mm()
    rng = H.HmmRange(vma=vma, start=page(2), end=page(2))
    assert H.hmm_vma_get_pfns(rng) == 0
    assert rng.registered
    invalidate(mm, page(0), page(4))
    assert not rng.valid
    with pytest.raises(H.UsageError) as caught:
        H.hmm_vma_range_done(rng)
    assert caught.value.code is H.UsageCode.RANGE_EMPTY
    assert rng.registered


def test_reversed_snapshot_is_refused_before_registering() -> None:
    """A range with start > end would corrupt memory on invalidation; it is refused."""
    mm, vma = make_mm()
    rng = H.HmmRange(vma=vma, start=page(3), end=page(2))
    with pytest.raises(H.UsageError) as caught:
        H.hmm_vma_get_pfns(rng)
    assert caught.value.code is H.UsageCode.RANGE_EMPTY
    assert mm.hmm is None


def test_snapshotting_a_registered_range_again_is_refused() -> None:
    """A second get_pfns without range_done would list_add twice; it is refused."""
    mm, vma = make_mm()
    rng = snapshot(vma)
    with pytest.raises(H.UsageError) as caught:
        H.hmm_vma_get_pfns(rng)
    assert caught.value.code is H.UsageCode.RANGE_ALREADY_REGISTERED
    assert mm.hmm is not None
    assert mm.hmm.ranges == (rng,)


def test_snapshot_on_an_exited_mm_is_refused() -> None:
    """After exit, a snapshot is a usage error (no invalidation would ever reach it)."""
    mm, vma = make_mm()
    H.exit_mmap(mm)
    with pytest.raises(H.UsageError) as caught:
        H.hmm_vma_get_pfns(H.HmmRange(vma=vma, start=page(0), end=page(1)))
    assert caught.value.code is H.UsageCode.MM_EXITED


def test_range_done_after_last_unregister_recreates_the_hmm_and_reports_stale_true() -> None:
    """Seed quirk (bug #11): range_done re-creates a struct hmm; the orphaned range is stale."""
    mm, vma = make_mm()
    mirror = Mirrors(mm).add("A")
    rng = snapshot(vma, 0, 2)
    old = mm.hmm
    H.hmm_mirror_unregister(mirror)
    assert mm.hmm is None
    invalidate(mm, page(0), page(1))  # reaches nobody: the notifier is gone
    mm.set_pte(page(0), H.PTE_NONE)
    assert H.hmm_vma_range_done(rng) is True
    assert mm.hmm is not None
    assert mm.hmm is not old
    assert mm.hmm.mirrors == ()
    assert rng.pfns[0] != ENC.encode(mm.pte(page(0)))


def test_range_done_with_allocation_failure_returns_false_and_keeps_the_range() -> None:
    """If hmm_register fails inside range_done, entries are zeroed and False is returned."""
    mm, vma = make_mm()
    mirror = Mirrors(mm).add("A")
    rng = snapshot(vma, 0, 2)
    H.hmm_mirror_unregister(mirror)
    mm.inject_alloc_failures(1)
    assert H.hmm_vma_range_done(rng) is False
    assert rng.pfns == (0, 0)
    assert rng.registered
    assert H.hmm_vma_range_done(rng) is True


def test_range_done_on_exited_mm_without_hmm_is_refused() -> None:
    """After exit and the last unregister, range_done would BUG re-registering: refused."""
    mm, vma = make_mm()
    mirror = Mirrors(mm).add("A")
    rng = snapshot(vma, 0, 2)
    H.exit_mmap(mm)
    H.hmm_mirror_unregister(mirror)
    assert mm.hmm is None
    with pytest.raises(H.UsageError) as caught:
        H.hmm_vma_range_done(rng)
    assert caught.value.code is H.UsageCode.MM_EXITED
    assert rng.registered

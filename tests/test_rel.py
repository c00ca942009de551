"""REL: release, when the mm is torn down."""

from __future__ import annotations

import hmm_ref as H

from ._support import Mirrors, invalidate, make_mm, page, snapshot


def test_REL_1_each_mirror_released_once_and_unlinked() -> None:
    """Release calls every mirror's release op exactly once and empties the mirror list."""
    mm, _ = make_mm()
    mirrors = Mirrors(mm)
    for name in "ABC":
        mirrors.add(name)
    H.mmu_notifier_release(mm)
    assert sorted(mirrors.released()) == ["A", "B", "C"]
    assert mm.hmm is not None
    assert mm.hmm.mirrors == ()
    assert all(not mirrors.mirror(name).registered for name in "ABC")
    assert mm.notifier_list == []


def test_REL_1_no_callback_after_release() -> None:
    """After release, invalidations (as exit_mmap issues them) reach no mirror."""
    mm, _ = make_mm()
    mirrors = Mirrors(mm)
    mirrors.add("A")
    H.exit_mmap(mm)
    mirrors.clear()
    invalidate(mm, page(0), page(8))
    assert H.mmu_notifier_invalidate_range_start_nonblock(mm, page(0), page(1)) == 0
    assert mirrors.journal == []


def test_REL_1_release_keeps_mirror_hmm_and_unregister_still_works() -> None:
    """Release leaves mirror->hmm set; the driver's later unregisters then free the hmm."""
    mm, _ = make_mm()
    mirrors = Mirrors(mm)
    mirrors.add("A")
    mirrors.add("B")
    hmm = mm.hmm
    H.mmu_notifier_release(mm)
    assert mirrors.mirror("A").hmm is hmm
    H.hmm_mirror_unregister(mirrors.mirror("A"))
    assert hmm is not None
    assert hmm.freed
    assert mm.hmm is None
    # B still points at the freed hmm; its unregister reads the NULL mm and returns.
    H.hmm_mirror_unregister(mirrors.mirror("B"))
    assert mirrors.mirror("B").hmm is None


def test_REL_1_release_op_may_unregister_its_mirror() -> None:
    """Release calls ops with mirrors_sem dropped, so a release op may unregister mirrors."""
    mm, _ = make_mm()
    mirrors = Mirrors(mm)
    order: list[str] = []

    class Unregistering:
        def __init__(self, name: str) -> None:
            self.name = name

        def sync_cpu_device_pagetables(self, update: H.HmmUpdate) -> int:
            return 0

        def release(self) -> None:
            order.append(self.name)
            H.hmm_mirror_unregister(mirrors.mirror("A"))

    mirrors.add("A")
    late = H.HmmMirror(Unregistering("B"))
    assert H.hmm_mirror_register(late, mm) == 0
    H.mmu_notifier_release(mm)
    assert order == ["B"]
    assert mirrors.released() == []  # A was unregistered before release reached it


def test_REL_2_release_order_is_newest_first() -> None:
    """The seed releases mirrors newest first, the same order as invalidations."""
    mm, _ = make_mm()
    mirrors = Mirrors(mm)
    for name in "ABC":
        mirrors.add(name)
    H.mmu_notifier_release(mm)
    assert mirrors.released() == ["C", "B", "A"]


def test_REL_3_release_leaves_ranges_valid_and_later_unmaps_miss_them() -> None:
    """Seed defect: a range registered at exit stays valid while its pages are unmapped."""
    mm, vma = make_mm()
    Mirrors(mm).add("A")
    rng = snapshot(vma)
    entries = rng.pfns
    H.exit_mmap(mm)
    assert all(mm.pte(page(i)) == H.PTE_NONE for i in range(8))
    assert rng.valid
    assert rng.pfns == entries
    assert H.hmm_vma_range_done(rng) is True


def test_REL_1_a_mirror_without_release_op_is_unlinked_silently() -> None:
    """The release op is optional: release unlinks such a mirror and calls nothing."""
    mm, _ = make_mm()

    class SyncOnly:
        def sync_cpu_device_pagetables(self, update: H.HmmUpdate) -> int:
            return 0

    mirror = H.HmmMirror(SyncOnly())  # type: ignore[arg-type]
    assert H.hmm_mirror_register(mirror, mm) == 0
    H.exit_mmap(mm)
    assert not mirror.registered
    assert mm.hmm is not None
    assert mm.hmm.mirrors == ()


def test_REL_1_a_release_op_may_still_snapshot_and_register() -> None:
    """While release runs the mm still has its hmm: a release op's snapshot and register work."""
    mm, vma = make_mm()
    late = H.ScriptedMirrorOps("late")
    taken: list[H.HmmRange] = []

    class Busy:
        def sync_cpu_device_pagetables(self, update: H.HmmUpdate) -> int:
            return 0

        def release(self) -> None:
            taken.append(snapshot(vma, 0, 1))
            assert H.hmm_mirror_register(H.HmmMirror(late), mm) == 0

    assert H.hmm_mirror_register(H.HmmMirror(Busy()), mm) == 0
    H.exit_mmap(mm)
    assert late.releases == 1  # registered during release, released by the same loop
    assert taken[0].valid  # never invalidated: the notifier was gone before the unmap

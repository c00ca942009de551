"""REG: mirror registration and unregistration."""

from __future__ import annotations

import pytest

import hmm_ref as H

from ._support import EAGAIN, VMA_END, VMA_START, Mirrors, make_mm, page, snapshot


def test_REG_1_register_without_ops_is_einval_and_changes_nothing() -> None:
    """A mirror with no ops is refused with -EINVAL; no struct hmm is even created."""
    mm, _ = make_mm()
    mirror = H.HmmMirror(None)
    assert H.hmm_mirror_register(mirror, mm) == -H.Errno.EINVAL
    assert mm.hmm is None
    assert mm.notifier_list == []
    assert mirror.hmm is None
    assert not mirror.registered


def test_REG_2_registered_mirror_takes_part_in_every_start() -> None:
    """After register returns 0 the mirror is called by each invalidation start."""
    mm, _ = make_mm()
    mirrors = Mirrors(mm)
    mirror = mirrors.add("A")
    assert mirror.registered
    assert mirror.hmm is mm.hmm
    H.mmu_notifier_invalidate_range_start(mm, page(0), page(1))
    H.mmu_notifier_invalidate_range_start_nonblock(mm, page(2), page(3))
    assert [(u.start, u.blockable) for u in mirrors.ops("A").updates] == [
        (page(0), True),
        (page(2), False),
    ]


def test_REG_2_first_register_creates_hmm_and_its_notifier() -> None:
    """The first registration creates the mm's struct hmm and puts its notifier on the chain."""
    mm, _ = make_mm()
    Mirrors(mm).add("A")
    hmm = mm.hmm
    assert hmm is not None
    assert mm.notifier_list == [hmm.notifier]
    assert not hmm.dying


def test_REG_2_register_fails_with_enomem_when_allocation_fails() -> None:
    """If the struct hmm cannot be allocated, register returns -ENOMEM and links nothing."""
    mm, _ = make_mm()
    mm.inject_alloc_failures(1)
    mirror = H.HmmMirror(H.ScriptedMirrorOps())
    assert H.hmm_mirror_register(mirror, mm) == -H.Errno.ENOMEM
    assert mm.hmm is None
    assert mirror.hmm is None
    assert H.hmm_mirror_register(mirror, mm) == 0


def test_REG_2_failed_register_leaves_mirror_hmm_null() -> None:
    """-ENOMEM stores hmm_register's NULL in mirror->hmm, so a later unregister does nothing."""
    first, _ = make_mm()
    mirror = Mirrors(first).add("A")
    H.exit_mmap(first)
    second, _ = make_mm()
    second.inject_alloc_failures(1)
    assert H.hmm_mirror_register(mirror, second) == -H.Errno.ENOMEM
    assert mirror.hmm is None
    H.hmm_mirror_unregister(mirror)
    assert first.hmm is not None
    assert not first.hmm.freed


def test_REG_3_unregistered_mirror_is_never_called_again() -> None:
    """After unregister, neither invalidations nor release reach the mirror."""
    mm, _ = make_mm()
    mirrors = Mirrors(mm)
    mirrors.add("A")
    mirrors.add("B")
    H.hmm_mirror_unregister(mirrors.mirror("B"))
    mirrors.clear()
    H.mmu_notifier_invalidate_range_start(mm, page(0), page(1))
    H.mmu_notifier_release(mm)
    assert mirrors.called() == ["A"]
    assert mirrors.released() == ["A"]


def test_REG_3_unregistering_an_unregistered_mirror_does_nothing() -> None:
    """Unregister of a never-registered or already-unregistered mirror is a no-op."""
    mm, _ = make_mm()
    H.hmm_mirror_unregister(H.HmmMirror(H.ScriptedMirrorOps()))
    mirrors = Mirrors(mm)
    mirror = mirrors.add("A")
    H.hmm_mirror_unregister(mirror)
    H.hmm_mirror_unregister(mirror)
    assert mirror.hmm is None
    assert mm.hmm is None


def test_REG_3_unregistering_the_last_mirror_frees_the_hmm() -> None:
    """The last unregister removes HMM's notifier and clears mm->hmm."""
    mm, _ = make_mm()
    mirror = Mirrors(mm).add("A")
    hmm = mm.hmm
    assert hmm is not None
    H.hmm_mirror_unregister(mirror)
    assert mm.hmm is None
    assert mm.notifier_list == []
    assert hmm.freed


def test_REG_4_mirrors_are_called_newest_first() -> None:
    """The seed inserts mirrors at the head of the list, so the newest is called first."""
    mm, _ = make_mm()
    mirrors = Mirrors(mm)
    for name in "ABC":
        mirrors.add(name)
    H.mmu_notifier_invalidate_range_start(mm, page(0), page(1))
    assert mirrors.called() == ["C", "B", "A"]
    assert mm.hmm is not None
    assert [m.ops for m in mm.hmm.mirrors] == [mirrors.ops(n) for n in "CBA"]


def test_REG_5_register_after_unregistering_one_of_several_would_livelock() -> None:
    """Seed defect: unregistering A of {A, B} poisons the hmm; registering C would loop forever."""
    mm, _ = make_mm()
    mirrors = Mirrors(mm)
    mirrors.add("A")
    mirrors.add("B")
    H.hmm_mirror_unregister(mirrors.mirror("A"))
    hmm = mm.hmm
    assert hmm is not None
    assert hmm.dying
    late = H.HmmMirror(H.ScriptedMirrorOps("C"))
    with pytest.raises(H.WouldLivelockError, match="retries forever"):
        H.hmm_mirror_register(late, mm)
    assert late.hmm is None
    assert not late.registered
    assert hmm.mirrors == (mirrors.mirror("B"),)


def test_REG_5_poisoned_hmm_outlives_its_last_mirror() -> None:
    """Seed defect: after A then B unregister, the hmm and its notifier stay on the mm."""
    mm, vma = make_mm()
    mirrors = Mirrors(mm)
    mirrors.add("A")
    mirrors.add("B")
    H.hmm_mirror_unregister(mirrors.mirror("A"))
    H.hmm_mirror_unregister(mirrors.mirror("B"))
    hmm = mm.hmm
    assert hmm is not None
    assert not hmm.freed
    assert mm.notifier_list == [hmm.notifier]
    # Invalidations still reach the mirror-less hmm, so its ranges stay protected.
    rng = snapshot(vma)
    H.mmu_notifier_invalidate_range_start(mm, page(0), page(1))
    assert not rng.valid


def test_registering_a_registered_mirror_is_a_usage_error() -> None:
    """A second register of one mirror would corrupt the list; it is refused, nothing changes."""
    mm, _ = make_mm()
    mirror = Mirrors(mm).add("A")
    with pytest.raises(H.UsageError) as caught:
        H.hmm_mirror_register(mirror, mm)
    assert caught.value.code is H.UsageCode.MIRROR_ALREADY_REGISTERED
    assert mm.hmm is not None
    assert mm.hmm.mirrors == (mirror,)


def test_register_inside_a_mirror_callback_would_deadlock() -> None:
    """Registering from a sync callback would take mirrors_sem for write under its read side."""
    mm, _ = make_mm()
    late = H.HmmMirror(H.ScriptedMirrorOps("late"))
    errors: list[H.UsageError] = []

    def register_late(update: H.HmmUpdate) -> int:
        try:
            H.hmm_mirror_register(late, mm)
        except H.UsageError as error:
            errors.append(error)
        return 0

    Mirrors(mm).add("A", reply=register_late)
    H.mmu_notifier_invalidate_range_start(mm, page(0), page(1))
    assert [error.code for error in errors] == [H.UsageCode.DEADLOCK]
    assert not late.registered


def test_unregister_inside_a_mirror_callback_would_deadlock() -> None:
    """Unregistering from a sync callback is refused the same way, and the mirror stays."""
    mm, _ = make_mm()
    mirrors = Mirrors(mm)
    errors: list[H.UsageCode] = []

    def unregister_self(update: H.HmmUpdate) -> int:
        try:
            H.hmm_mirror_unregister(mirrors.mirror("A"))
        except H.UsageError as error:
            errors.append(error.code)
        return EAGAIN

    mirrors.add("A", reply=unregister_self)
    assert H.mmu_notifier_invalidate_range_start_nonblock(mm, page(0), page(1)) == EAGAIN
    assert errors == [H.UsageCode.DEADLOCK]
    assert mirrors.mirror("A").registered
    # The callback's lock bookkeeping was undone: unregister works again afterwards.
    H.hmm_mirror_unregister(mirrors.mirror("A"))
    assert not mirrors.mirror("A").registered


def test_register_on_an_exited_mm_is_a_usage_error() -> None:
    """After exit (notifier release) a mirror cannot be registered."""
    mm, _ = make_mm()
    H.exit_mmap(mm)
    with pytest.raises(H.UsageError) as caught:
        H.hmm_mirror_register(H.HmmMirror(H.ScriptedMirrorOps()), mm)
    assert caught.value.code is H.UsageCode.MM_EXITED
    assert caught.value.function == "hmm_mirror_register"


def test_register_reuses_the_hmm_a_snapshot_created() -> None:
    """A snapshot without any mirror creates the hmm; a later register joins that same hmm."""
    mm, vma = make_mm()
    snapshot(vma)
    hmm = mm.hmm
    assert hmm is not None
    mirror = Mirrors(mm).add("A")
    assert mirror.hmm is hmm
    assert (vma.start, vma.end) == (VMA_START, VMA_END)

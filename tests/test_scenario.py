"""The OOM-reaper scenario: the seed reaps what its drivers allow, the parent tree nothing."""

from __future__ import annotations

import io

import pytest

import hmm_ref as H
from conformance.core._scenario import (
    SITUATIONS,
    ParentTreeNotifier,
    Situation,
    SituationOutcome,
    Tree,
    TreeRun,
    install_parent_tree,
    oom_reaper_outcomes,
    oom_reaper_scenario,
    run_situation,
)

from ._support import EAGAIN, Mirrors, make_mm, page, snapshot

ONE_BUSY = SITUATIONS[1]
#: The vmas' starts, A to D; drivers gpu0, gpu1 and gpu2 map A, B and C.
A, B, C, D = 0x100000, 0x200000, 0x300000, 0x400000


@pytest.fixture(scope="module")
def outcomes() -> dict[str, SituationOutcome]:
    """Every situation on both trees, run once for the module."""
    return {outcome.situation.name: outcome for outcome in oom_reaper_outcomes()}


def _reaped(run: TreeRun) -> list[list[int]]:
    """For each attempt, the starts of the vmas it reaped."""
    return [[vma.start for vma in attempt.vmas if vma.reaped] for attempt in run.report.attempts]


def _skipped(run: TreeRun) -> list[dict[int, int]]:
    """For each attempt, the vmas it skipped, with what the non-blockable start returned."""
    return [
        {vma.start: vma.result for vma in attempt.vmas if not vma.reaped}
        for attempt in run.report.attempts
    ]


def test_the_situations_are_idle_one_busy_all_busy() -> None:
    """Three situations: nobody busy, gpu1 busy, every driver busy."""
    assert [(s.name, s.busy) for s in SITUATIONS] == [
        ("all idle", frozenset()),
        ("one busy", frozenset({"gpu1"})),
        ("all busy", frozenset({"gpu0", "gpu1", "gpu2"})),
    ]


def test_MN_2_seed_reaps_every_vma_in_its_first_attempt_when_drivers_are_idle(
    outcomes: dict[str, SituationOutcome],
) -> None:
    """Idle drivers accept the non-blockable starts: all four vmas go in attempt 1."""
    seed = outcomes["all idle"].seed
    assert seed.tree is Tree.SEED
    assert seed.report.reaped_in_attempt == 1
    assert len(seed.report.attempts) == 1
    assert not seed.report.gave_up
    assert _reaped(seed) == [[A, B, C, D]]
    assert seed.refused_by == frozenset()
    assert seed.mirror_calls == 12  # every mirror for every vma: HMM does no filtering


@pytest.mark.parametrize("situation", SITUATIONS, ids=lambda s: s.name)
def test_MN_2_parent_tree_never_reaps_a_vma_and_gives_up(
    outcomes: dict[str, SituationOutcome], situation: Situation
) -> None:
    """Before the seed every non-blockable start is refused: 10 attempts, nothing reaped."""
    parent = outcomes[situation.name].parent
    assert parent.tree is Tree.PARENT
    assert parent.report.gave_up
    assert len(parent.report.attempts) == H.MAX_OOM_REAP_RETRIES
    assert parent.report.reaped_in_attempt is None
    assert _reaped(parent) == [[]] * H.MAX_OOM_REAP_RETRIES
    assert _skipped(parent) == [dict.fromkeys((A, B, C, D), EAGAIN)] * H.MAX_OOM_REAP_RETRIES
    assert parent.mirror_calls == 0  # refused before any mirror is asked
    assert parent.refused_by == frozenset()


def test_MN_2_one_busy_driver_gets_its_vma_skipped_and_the_rest_reaped(
    outcomes: dict[str, SituationOutcome],
) -> None:
    """gpu1's lock is held: it answers -EAGAIN for B, so B is skipped in every attempt."""
    seed = outcomes["one busy"].seed
    assert seed.refused_by == {"gpu1"}
    assert _reaped(seed) == [[A, C, D]] * H.MAX_OOM_REAP_RETRIES
    assert _skipped(seed) == [{B: EAGAIN}] * H.MAX_OOM_REAP_RETRIES
    assert seed.report.gave_up
    # Per attempt: A, C and D ask all three mirrors; B stops at gpu1, newest but one (INV-7).
    assert seed.mirror_calls == (3 + 2 + 3 + 3) * H.MAX_OOM_REAP_RETRIES


def test_MN_2_all_busy_drivers_leave_only_the_unmirrored_vma_to_reap(
    outcomes: dict[str, SituationOutcome],
) -> None:
    """Each busy driver refuses its own vma; D, which no device maps, is reaped every time."""
    seed = outcomes["all busy"].seed
    assert seed.refused_by == {"gpu0", "gpu1", "gpu2"}
    assert _reaped(seed) == [[D]] * H.MAX_OOM_REAP_RETRIES
    assert _skipped(seed) == [dict.fromkeys((A, B, C), EAGAIN)] * H.MAX_OOM_REAP_RETRIES
    assert seed.report.gave_up


@pytest.mark.parametrize("situation", SITUATIONS, ids=lambda s: s.name)
def test_DRV_1_DRV_5_reaping_leaves_no_stale_device_entry_and_never_sleeps(
    outcomes: dict[str, SituationOutcome], situation: Situation
) -> None:
    """On both trees, devices still match the CPU after the reaper, and nothing slept."""
    for run in (outcomes[situation.name].seed, outcomes[situation.name].parent):
        assert run.stale_device_entries == 0
        assert run.sleep_violations == 0


def test_each_run_builds_a_fresh_world_and_any_driver_can_be_the_busy_one() -> None:
    """Runs do not share state, and a busy gpu2 gets C skipped just as a busy gpu1 gets B."""
    first = run_situation(ONE_BUSY, Tree.SEED)
    assert first.report == run_situation(ONE_BUSY, Tree.SEED).report
    third = run_situation(Situation(name="gpu2 busy", busy=frozenset({"gpu2"})), Tree.SEED)
    assert third.refused_by == {"gpu2"}
    assert _reaped(third)[0] == [A, B, D]
    assert _skipped(third)[0] == {C: EAGAIN}


def test_the_table_names_each_situation_and_each_attempt(
    outcomes: dict[str, SituationOutcome],
) -> None:
    """Every situation starts a block of rows numbered 1 to its number of attempts."""
    out = io.StringIO()
    assert oom_reaper_scenario(out) == 0
    lines = out.getvalue().splitlines()
    top = next(
        i for i, line in enumerate(lines) if line.startswith("situation  ") and "attempt" in line
    )
    header, table = lines[top], lines[top + 2 : lines.index("", top)]
    column = header.index("attempt")
    labels = {
        "all idle": "all idle",
        "one busy": "one busy (gpu1)",
        "all busy": "all busy (gpu0 gpu1 gpu2)",
    }
    expected: list[tuple[str, str]] = []
    for name, outcome in outcomes.items():
        count = max(len(outcome.seed.report.attempts), len(outcome.parent.report.attempts))
        expected += [(labels[name] if k == 1 else "", str(k)) for k in range(1, count + 1)]
    assert [(row[:column].strip(), row[column:].split()[0]) for row in table] == expected
    first = table[0]
    assert first.split("|")[1].split() == ["A", "B", "C", "D", "-", "reaped"]
    assert first.split("|")[2].split() == ["-", "A", "B", "C", "D", "retry"]
    assert sum("gave up" in line for line in lines) >= 5
    assert any(line.startswith("one busy (gpu1)") and "gpu1 / -" in line for line in lines)


# -- the parent tree's notifier ------------------------------------------------------------------


def test_parent_tree_refuses_non_blockable_starts_before_touching_anything() -> None:
    """6/7: -EAGAIN at once, with no range invalidated and no mirror called."""
    mm, vma = make_mm()
    mirrors = Mirrors(mm)
    mirrors.add("gpu")
    parent = install_parent_tree(mm)
    assert isinstance(parent, ParentTreeNotifier)
    assert mm.hmm is not None
    assert mm.notifier_list == [parent]
    rng = snapshot(vma)
    assert H.mmu_notifier_invalidate_range_start_nonblock(mm, page(0), page(2)) == EAGAIN
    assert rng.valid
    assert mirrors.called() == []
    assert mm.dmesg == (
        "hmm_invalidate_range_start callback failed with -11 in non-blockable context.",
    )


def test_parent_tree_behaves_like_the_seed_when_blockable_and_at_release() -> None:
    """Blockable starts, ends and release are HMM's own: mirrors called, ranges invalidated."""
    mm, vma = make_mm()
    mirrors = Mirrors(mm)
    mirrors.add("gpu")
    install_parent_tree(mm)
    rng = snapshot(vma, 0, 2)
    assert H.mmu_notifier_invalidate_range_start(mm, page(4), page(5)) == 0
    assert mirrors.called() == ["gpu"]
    late = snapshot(vma, 4, 6)  # taken inside the window: end must invalidate it
    H.mmu_notifier_invalidate_range_end(mm, page(4), page(5))
    assert not late.valid
    assert rng.valid
    H.mmu_notifier_release(mm)
    assert mirrors.released() == ["gpu"]


def test_parent_tree_needs_an_hmm_to_stand_in_for() -> None:
    """Installing it on an mm without a struct hmm is refused."""
    mm, _ = make_mm()
    with pytest.raises(ValueError, match="no struct hmm"):
        install_parent_tree(mm)

"""The catalogue: every known-bad core is caught against one of its rules; the base conforms."""

from __future__ import annotations

import io
import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any, Final

import pytest

import hmm_ref as H
from conformance import (
    BUDGETS,
    Candidate,
    CandidateRejected,
    Case,
    ExploreResult,
    Failure,
    Handshake,
    Profile,
    World,
    cli,
    explore,
    reference,
    replay,
    run,
    start,
)
from conformance._generation import VMAS
from conformance._known_bad import KnownBad
from conformance._verdicts import Tally
from conformance.core import _explore as core_explore
from conformance.core import _side as core_side
from conformance.core._blind_catalogue import BLIND_CATALOGUE
from conformance.core._catalogue import CATALOGUE, ParentTree, SeedCore, ValidAgainAtEnd
from conformance.core._executor import Executor
from conformance.core._model import CpuState
from conformance.core._ops import (
    CoreOperation,
    InvalidateEnd,
    InvalidateStart,
    RegisterMirror,
    case_from_json,
)
from conformance.core._scope import SCOPE, operations
from conformance.core._seed_fault import SeedFaultCore
from conformance.core._side import CoreFailure, CoreSide

SEED = 1
#: The faulting snapshot's entries (the FLT rules).
FAULT_ENTRIES: Final = tuple(
    entry for entry in CATALOGUE if isinstance(entry.make(), SeedFaultCore)
)
#: The hand-written entries run through the random engine; the blind set's and the faulting
#: snapshot's are checked on their counterexamples (CI time: shrinking one of theirs costs
#: seconds, and the benchmarks run them through the engine over five seeds).
HAND_WRITTEN: Final = tuple(
    entry for entry in CATALOGUE if entry not in BLIND_CATALOGUE and entry not in FAULT_ENTRIES
)
BLIND_CASES: Final = json.loads(
    (Path(__file__).with_name("data") / "blind-counterexamples.json").read_text()
)
#: The faulting snapshot's entries' counterexamples, as the random engine found and shrank them
#: at seed 1 and the ci budget.
FAULT_CASES: Final = json.loads(
    (Path(__file__).with_name("data") / "fault-counterexamples.json").read_text()
)


def test_the_base_core_conforms() -> None:
    """Without a bug, the catalogue's core behaves like the seed and conforms."""
    candidate, handshake = start(SeedCore)
    assert run(candidate, handshake, budget=BUDGETS["ci"], seed_value=SEED).conforms
    with pytest.raises(CandidateRejected, match="no range r7"):
        SeedCore().observe(7)


@pytest.mark.parametrize("entry", HAND_WRITTEN, ids=lambda entry: entry.name)
def test_every_known_bad_core_is_caught_against_its_rule(entry: KnownBad[Candidate]) -> None:
    """Each entry fails one of the rules it is listed under, shrunk to its shortest length."""
    candidate, handshake = start(entry.make)
    result = run(candidate, handshake, budget=BUDGETS["ci"], seed_value=SEED)
    assert result.failure is not None, f"{entry.name} was not caught"
    broken = {verdict.rule for verdict in result.failure.verdicts}
    assert broken & entry.rules, f"{entry.name} broke {broken}, not {set(entry.rules)}"
    assert len(result.failure.case.ops) == entry.shortest
    assert result.first_failure is not None


@pytest.mark.parametrize("entry", FAULT_ENTRIES, ids=lambda entry: entry.name)
def test_every_fault_entry_fails_its_counterexample_that_the_reference_passes(
    entry: KnownBad[Candidate],
) -> None:
    """The faulting snapshot's entries, on the counterexamples the random engine found and
    shrank to their shortest length at seed 1 and the ci budget: the reference passes each, and
    the entry fails it at its last step, against one of its rules."""
    case = case_from_json(FAULT_CASES[entry.name])
    assert len(case.ops) == entry.shortest
    assert isinstance(replay(*start(reference), case, Profile.SEED), tuple)
    failure = replay(*start(entry.make), case, Profile.SEED)
    assert isinstance(failure, Failure), entry.name
    assert len(failure.case.ops) == entry.shortest
    assert {verdict.rule for verdict in failure.verdicts} & entry.rules


@pytest.mark.parametrize("entry", BLIND_CATALOGUE, ids=lambda entry: entry.name)
def test_every_blind_core_fails_its_counterexample_that_the_reference_passes(
    entry: KnownBad[Candidate],
) -> None:
    """The blind set's counterexamples, as the random engine found and shrank them at seed 1
    and the fast budget (the faulting ones, and those that joined later: in the first seed that
    caught them at their shortest, at the default budget; kept in tests/data; the benchmarks
    run each core over five seeds at the default budget): the reference passes each, and its
    core fails it at its last step, against one of its rules."""
    case = case_from_json(BLIND_CASES[entry.name])
    assert len(case.ops) == entry.shortest
    assert isinstance(replay(*start(reference), case, Profile.SEED), tuple)
    failure = replay(*start(entry.make), case, Profile.SEED)
    assert isinstance(failure, Failure), entry.name
    assert len(failure.case.ops) == entry.shortest
    assert {verdict.rule for verdict in failure.verdicts} & entry.rules


def test_catalogue_has_the_cores_the_issue_lists_with_their_origins() -> None:
    """At least the 16 listed kinds, named uniquely, each with an origin."""
    names = [entry.name for entry in CATALOGUE]
    assert len(names) == len(set(names)) >= 16
    assert all(entry.origin and entry.rules for entry in CATALOGUE)


def test_catalogue_command_reports_caught_and_missed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command prints a row per entry; an entry not caught makes it exit 1."""
    bug = CATALOGUE[0]
    not_a_bug: KnownBad[Candidate] = KnownBad(
        name="not-a-bug", make=SeedCore, rules=frozenset({"INV-5"}), shortest=1, origin="none"
    )
    monkeypatch.setattr(core_side, "CATALOGUE", (bug,))
    out = io.StringIO()
    assert cli.main(["catalogue", "--side", "core", "--budget", "fast"], stdout=out) == 0
    [line] = [line for line in out.getvalue().splitlines() if line.startswith("parent")]
    # entry, caught, the rules broken, cases to the first failure, shrunk, shortest, origin...
    row = re.match(r"(\S+)\s+(\S+)\s+((?:[A-Z]+-\d+,?\s)+)\s*(\d+)\s+(\d+)\s+(\d+)\s", line)
    assert row is not None, line
    name, caught, rules, first, shrunk, shortest = row.groups()
    assert (name, caught) == ("parent-tree", "yes")
    assert "INV-5" in rules
    assert int(first) >= 1
    assert shrunk == shortest == "2"
    assert "every one of the 1 known-bad cores was caught" in out.getvalue()
    monkeypatch.setattr(core_side, "CATALOGUE", (bug, not_a_bug))
    out = io.StringIO()
    assert cli.main(["catalogue", "--side", "core", "--budget", "fast"], stdout=out) == 1
    [missed] = [line.split() for line in out.getvalue().splitlines() if line.startswith("not-a")]
    assert missed[:6] == ["not-a-bug", "NO", "-", "-", "-", "none"]
    assert "1 known-bad cores were NOT caught" in out.getvalue()


def test_the_catalogue_document_lists_every_entry() -> None:
    """docs/catalogue.md has a row per entry with its rules and shortest length, in order."""
    text = (Path(__file__).resolve().parent.parent / "docs" / "catalogue.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert [row.split("`")[1] for row in rows] == [entry.name for entry in CATALOGUE]
    for row, entry in zip(rows, CATALOGUE, strict=True):
        assert row.split("|")[2].strip() == ", ".join(sorted(entry.rules))
        assert row.split("|")[3].strip() == str(entry.shortest)


def test_catalogue_command_flags_a_case_shrunk_past_the_shortest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """If the exhaustive engine finds a shorter case than the shrinker kept, the command says
    so (the ratio target is 1.00). Here the search is handed a shorter case."""
    bug = CATALOGUE[1]  # mirrors-at-end: shrunk to 2 operations
    real_search = core_explore.search

    def shorter(
        side: CoreSide, candidate: Candidate, handshake: Handshake, **how: Any
    ) -> ExploreResult:
        result = real_search(side, candidate, handshake, **how)
        assert result.failure is not None
        case = result.failure.case
        trimmed: CoreFailure = Failure(case=Case(world=case.world, ops=case.ops[:1]), steps=())
        return replace(result, failure=trimmed)

    monkeypatch.setattr(core_side, "CATALOGUE", (bug,))
    monkeypatch.setattr(core_explore, "search", shorter)
    out = io.StringIO()
    assert cli.main(["catalogue", "--side", "core", "--budget", "fast"], stdout=out) == 0
    assert "1 counterexamples were shrunk to more than the shortest length" in out.getvalue()


BY_NAME = {entry.name: entry for entry in CATALOGUE}
SPAN = (VMAS[0].start, VMAS[0].start + H.PAGE_SIZE)


def _begun(core: SeedCore) -> SeedCore:
    """``core`` begun on a world of the machine's vmas with every page of vma 0 mapped."""
    pages = range(VMAS[0].start, VMAS[0].end, H.PAGE_SIZE)
    world = World(vmas=VMAS, ptes=tuple((addr, H.Pte.present(addr >> 12)) for addr in pages))
    core.begin(CpuState(world))
    return core


def _gpu(reply: int = 0) -> H.ScriptedMirrorOps:
    return H.ScriptedMirrorOps("gpu", reply=reply)


@pytest.mark.parametrize("name", ["parent-tree", "valid-again-at-end"])
def test_the_exhaustive_engine_finds_a_kernel_state_entrys_shortest_length(name: str) -> None:
    """For the entries fixed to follow their kernel state everywhere, every sequence one
    shorter than the recorded length conforms and the search finds that length."""
    entry = BY_NAME[name]
    candidate, handshake = start(entry.make)
    assert explore(candidate, handshake, depth=entry.shortest - 1).failure is None
    candidate, handshake = start(entry.make)
    found = explore(candidate, handshake, depth=entry.shortest).failure
    assert found is not None
    assert len(found.case.ops) == entry.shortest
    assert {verdict.rule for verdict in found.verdicts} & entry.rules


def test_parent_tree_refuses_non_blockable_starts_only_while_the_mm_has_an_hmm() -> None:
    """The 6/7 tree's start refuses non-blockable calls only once HMM's notifier is on the mm:
    before any register or snapshot, after the last unregister, and after release, the core
    has no HMM notifier to call and the start returns 0."""
    core = _begun(ParentTree())
    assert core.invalidate_start(*SPAN, blockable=False) == 0
    assert core.register(0, _gpu()) == 0
    assert core.invalidate_start(*SPAN, blockable=False) == -H.Errno.EAGAIN
    core.unregister(0)
    assert core.invalidate_start(*SPAN, blockable=False) == 0
    assert core.snapshot(0, 2, VMAS[2].start, VMAS[2].end, H.DEFAULT_ENCODING) == -H.Errno.EPERM
    assert core.invalidate_start(*SPAN, blockable=False) == -H.Errno.EAGAIN
    core.release()
    assert core.invalidate_start(*SPAN, blockable=False) == 0


def test_parent_tree_keeps_refusing_on_a_poisoned_hmm() -> None:
    """Unregistering every mirror of a poisoned hmm does not free it: still refused."""
    core = _begun(ParentTree())
    assert core.snapshot(0, 0, VMAS[0].end, VMAS[1].end, H.DEFAULT_ENCODING) == -H.Errno.EINVAL
    assert core.invalidate_start(*SPAN, blockable=False) == 0  # out of bounds: no hmm made
    for mirror in (0, 1):
        assert core.register(mirror, _gpu()) == 0
    for mirror in (0, 1, 1):
        core.unregister(mirror)
    assert core.invalidate_start(*SPAN, blockable=False) == -H.Errno.EAGAIN


def test_the_base_core_makes_its_hmm_again_at_range_done() -> None:
    """A range_done after the hmm was freed makes a new one, as hmm_register does there."""
    core = _begun(ParentTree())
    assert core.register(0, _gpu()) == 0
    assert core.snapshot(0, 0, *SPAN, H.DEFAULT_ENCODING) == 0
    core.unregister(0)  # the last mirror, with r0 registered (bug #11): the hmm is freed
    assert core.invalidate_start(*SPAN, blockable=False) == 0
    assert core.observe(0).valid  # and r0 is reached by nothing
    assert core.range_done(0) is True
    assert core.invalidate_start(*SPAN, blockable=False) == -H.Errno.EAGAIN


def test_valid_again_at_end_waits_for_the_last_invalidation_in_flight() -> None:
    """5.2's valid: a snapshot inside a window starts invalid, and only the end of the last
    window in flight makes the ranges valid again; a failed start is not in flight."""
    core = _begun(ValidAgainAtEnd())
    assert core.register(0, _gpu(reply=-H.Errno.EAGAIN)) == 0
    assert core.invalidate_start(*SPAN, blockable=True) == 0
    assert core.invalidate_start(*SPAN, blockable=True) == 0
    assert core.invalidate_start(*SPAN, blockable=False) == -H.Errno.EAGAIN
    assert core.snapshot(0, 0, *SPAN, H.DEFAULT_ENCODING) == 0
    assert core.snapshot(1, 0, *SPAN, H.DEFAULT_ENCODING) == 0
    assert core.range_done(1) is False  # done inside the window: not made valid by its end
    assert not core.observe(0).valid
    core.invalidate_end(*SPAN)
    assert not core.observe(0).valid
    core.invalidate_end(*SPAN)
    assert core.observe(0).valid
    assert not core.observe(1).valid


def test_valid_again_at_end_hears_no_end_before_its_hmm_or_after_release() -> None:
    """A start before the hmm existed is not in flight; after release no end reaches HMM, so
    ranges stay as release left them."""
    core = _begun(ValidAgainAtEnd())
    assert core.invalidate_start(*SPAN, blockable=True) == 0  # no hmm yet: not counted
    assert core.snapshot(0, 0, *SPAN, H.DEFAULT_ENCODING) == 0
    assert core.observe(0).valid
    assert core.invalidate_start(*SPAN, blockable=True) == 0
    core.release()
    core.invalidate_end(*SPAN)
    assert not core.observe(0).valid


def test_a_rule_with_a_longer_shortest_of_its_own_is_shrunk_against_that() -> None:
    """The blind core with a stale mirror list breaks INV-6 in three operations (a start before
    the register), REL-1 only after release, in four: a run that broke REL-1 alone is at its
    shortest at four, one that broke INV-6 at three, and a search's length stands in for the
    entry's own."""
    [stale] = [entry for entry in BLIND_CATALOGUE if entry.shortest_by_rule]
    assert stale.name == "blind-stale-call-list-on-register"
    assert stale.shortest_for({"REL-1"}, stale.shortest) == 4
    assert stale.shortest_for({"REL-1", "NOT-ITS-RULE"}, 3) == 4
    assert stale.shortest_for({"INV-6", "REL-1"}, stale.shortest) == 3
    assert stale.shortest_for({"INV-6"}, 2) == 2
    assert stale.shortest_for(set(), 3) == 3
    assert stale.shortest_for({"REL-1"}, None) is None
    assert BY_NAME["parent-tree"].shortest_for({"INV-5"}, 2) == 2


def _failing_sequences(entry: KnownBad[Candidate], depth: int) -> list[tuple[int, set[str]]]:
    """Every sequence of up to ``depth`` operations in the exhaustive engine's scope that the
    entry fails, as its length and the rules its last step broke."""
    found: list[tuple[int, set[str]]] = []

    def walk(world: World, prefix: tuple[CoreOperation, ...]) -> None:
        executor = _replayed(entry, world, prefix)
        for op in operations(executor.model, SCOPE):
            outcome = _replayed(entry, world, prefix).step(op)
            if outcome.failed:
                broken = {verdict.rule for verdict in outcome.verdicts if verdict.rule}
                found.append((len(prefix) + 1, broken))
            elif len(prefix) + 1 < depth:
                walk(world, (*prefix, op))

    for world in SCOPE.worlds:
        walk(world, ())
    return found


def _replayed(entry: KnownBad[Candidate], world: World, ops: tuple[CoreOperation, ...]) -> Executor:
    candidate, handshake = start(entry.make)
    executor = Executor(candidate, handshake, Profile.SEED, world, Tally())
    assert executor.begin() is None
    for op in ops:
        assert not executor.step(op).failed
    return executor


def test_mirrors_at_end_breaks_end_1_alone_in_three_operations_and_no_fewer() -> None:
    """Mirrors told at the end break INV-6 in two operations (a register, then a start), and
    END-1 alone only when the mirror registers inside a window: every sequence of two in the
    exhaustive engine's scope that fails breaks another of its rules, and start, register, end
    breaks END-1 alone. So a run that meets END-1 alone first is at its shortest at three."""
    entry = BY_NAME["mirrors-at-end"]
    failing = _failing_sequences(entry, 2)
    assert failing
    assert all(length == 2 and broken & entry.rules - {"END-1"} for length, broken in failing)
    ops = (
        InvalidateStart(start=SPAN[0], end=SPAN[1], blockable=True, replies=()),
        RegisterMirror(mirror=0, with_ops=True),
        InvalidateEnd(start=SPAN[0], end=SPAN[1]),
    )
    failure = replay(*start(entry.make), Case(world=SCOPE.worlds[0], ops=ops), Profile.SEED)
    assert isinstance(failure, Failure)
    assert {verdict.rule for verdict in failure.verdicts} == {"END-1"}
    assert entry.shortest_for({"END-1"}, entry.shortest) == 3
    assert entry.shortest_for({"END-1", "INV-6"}, entry.shortest) == 2

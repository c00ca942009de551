"""The states rare bugs hide in are generated often (swarm testing), and measured per rule
(``conformance/core/_features.py``)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import find, settings
from hypothesis.errors import NoSuchExample

from conformance import BUDGETS, reference, run, start
from conformance._case import CpuState
from conformance._generation import VMAS
from conformance.core._catalogue import CATALOGUE
from conformance.core._draws import (
    KIND_DEVICE,
    KIND_NONE,
    Swarm,
    entries_of,
    seams,
    world_strategy,
)
from conformance.core._features import FeatureRates, feature_names, feature_rates
from conformance.core._ops import (
    Case,
    FaultSnapshot,
    InvalidateEnd,
    InvalidateStart,
    RegisterMirror,
    Snapshot,
    World,
)
from hmm_ref import DEFAULT_ENCODING, PAGE_SIZE, PTE_NONE, PTE_POISON, FaultOutcome, Pte, PteKind

from . import candidates as C
from .test_oracle import WORLD, page

#: Each seed's rates at the fast budget, measured once for the tests below.
_RATES: dict[int, FeatureRates] = {}


def _rates(seed: int) -> FeatureRates:
    if seed not in _RATES:
        kept: list[Case] = []
        result = run(*start(reference), budget=BUDGETS["fast"], seed_value=seed, keep=kept)
        _RATES[seed] = feature_rates(kept[: result.cases], reference)
        assert _RATES[seed].cases == result.cases
    return _RATES[seed]


def test_every_rare_state_comes_up_in_many_cases() -> None:
    """At the fast budget, each feature holds before some step (or, a trigger, shows in one) of
    at least one case in twenty over three seeds, and of some case in each: a bug that needs
    it is met within a few dozen cases, not by chance. One seed's count swings widely
    (`twin-ranges` in 1 to 34 cases of 100 over seeds 1-20: Hypothesis grows a seed's cases from
    its earlier ones), so the rate is judged on the three together. And INV-4 (a mirror's
    -EAGAIN in a non-blockable start) is checked with three mirrors or more live."""
    seeds = [_rates(seed) for seed in (1, 2, 3)]
    cases = sum(rates.cases for rates in seeds)
    reached = {name: [rates.cases_with[name] for rates in seeds] for name in feature_names()}
    assert min(sum(counts) for counts in reached.values()) >= cases // 20, reached
    assert min(min(counts) for counts in reached.values()) > 0, reached
    for rates in seeds:
        assert rates.checks["INV-4"] > 0
        assert 0 < rates.rate("INV-4", "mirrors>=3") <= 1  # a rare rule meets a rare state
        assert rates.rate("NO-SUCH-RULE", "mirrors>=3") == 0


def test_each_feature_holds_exactly_in_its_state() -> None:
    """Three mirrors; a snapshot before the first of them; two windows over the same span;
    two ranges over the same pages: each step's checks count under the features that held."""
    other = Snapshot(range=1, vma=0, start=page(4), end=page(6), encoding=DEFAULT_ENCODING)
    twin = Snapshot(range=2, vma=0, start=page(4), end=page(6), encoding=DEFAULT_ENCODING)
    case = Case(
        world=WORLD,
        ops=(
            Snapshot(range=0, vma=0, start=page(0), end=page(2), encoding=DEFAULT_ENCODING),
            *(RegisterMirror(mirror=m) for m in range(3)),
            InvalidateStart(start=page(2), end=page(3), blockable=True),
            InvalidateStart(start=page(2), end=page(3), blockable=True),
            other,
            twin,
            InvalidateEnd(start=page(2), end=page(3)),
        ),
    )
    rates = feature_rates([case], reference)
    assert set(rates.cases_with) == {"mirrors>=3", "windows>=2", "same-span", "early-range",
                                     "ranges>=2", "twin-ranges"}  # fmt: skip
    assert rates.within["END-1"]["twin-ranges"] == rates.checks["END-1"]
    assert rates.within["END-1"]["ranges>=2"] == rates.checks["END-1"]


def test_a_fault_restarting_past_a_device_entry_is_a_trigger() -> None:
    """A device-private page at page 2 with holes around it: a fault from it, or from the hole
    below it, that maps a page above it shows the trigger in its own step's checks; one whose
    handler fails there, or that starts above it, does not. Each case's state holds the
    device page below a hole throughout."""
    world = World(vmas=VMAS, ptes=((page(2), Pte.device_private(0x800, write=True)),))

    def fault(start: int, *handler: tuple[int, FaultOutcome]) -> Case:
        op = FaultSnapshot(
            range=0,
            vma=0,
            start=start,
            end=page(4),
            encoding=DEFAULT_ENCODING,
            block=False,
            requests=(1,) * ((page(4) - start) // PAGE_SIZE),
            handler=handler,
        )
        return Case(world=world, ops=(op,))

    past = [fault(page(2)), fault(page(1))]
    short = [fault(page(2), (page(3), FaultOutcome.ERROR)), fault(page(3))]
    for cases, shown in ((past, len(past)), (short, 0)):
        rates = feature_rates(cases, reference)
        assert rates.cases_with["restart-past-device"] == shown
        assert rates.cases_with["device-below-hole"] == len(cases)
        assert rates.checks["FLT-2"] == len(cases)
        assert rates.within["FLT-2"]["restart-past-device"] == shown
    assert seams(CpuState(world)) == [(0, 2)]
    assert seams(CpuState(replace(world, ptes=((page(3), PTE_POISON), *world.ptes)))) == []


def test_a_snapshot_or_fault_of_a_special_vma_that_cannot_be_read_is_a_trigger() -> None:
    """Of the special vma made unreadable too, a snapshot and a fault each show the trigger in
    their own step, which RNG-2 checks (FLT-1 for the fault); of the same vma readable, or of
    the unreadable vma that is not special, neither does."""
    special, plain = VMAS[3], VMAS[2]
    unreadable = replace(WORLD, vmas=(*VMAS[:3], replace(special, read=False)))
    pages = (special.end - special.start) // PAGE_SIZE
    snapshot = Snapshot(
        range=0, vma=3, start=special.start, end=special.end, encoding=DEFAULT_ENCODING
    )
    fault = FaultSnapshot(
        range=0,
        vma=3,
        start=special.start,
        end=special.end,
        encoding=DEFAULT_ENCODING,
        block=True,
        requests=(1,) * pages,
        handler=(),
    )
    elsewhere = replace(snapshot, vma=2, start=plain.start, end=plain.end)

    def rates(world: World, op: Snapshot | FaultSnapshot) -> FeatureRates:
        return feature_rates([Case(world=world, ops=(RegisterMirror(mirror=0), op))], reference)

    for op, rule in ((snapshot, "RNG-2"), (fault, "FLT-1")):
        shown = rates(unreadable, op)
        assert shown.cases_with["special-unreadable"] == 1
        assert shown.within[rule]["special-unreadable"] == shown.checks[rule] == 1
        assert rates(WORLD, op).cases_with["special-unreadable"] == 0
    assert WORLD.vmas[3].read
    assert not WORLD.vmas[2].read
    assert rates(unreadable, elsewhere).cases_with["special-unreadable"] == 0


def test_a_case_that_dwells_on_refusals_has_an_unreadable_special_vma() -> None:
    """A world drawn for a case with :attr:`Swarm.refusals` never lets the special vma be read;
    one drawn without may make it either (``find`` raises if it finds no such world)."""
    quick = settings(max_examples=100, database=None)
    with pytest.raises(NoSuchExample):
        find(world_strategy(refusals=True), lambda world: world.vmas[3].read, settings=quick)
    readable = find(world_strategy(), lambda world: world.vmas[3].read, settings=quick)
    unreadable = find(world_strategy(), lambda world: not world.vmas[3].read, settings=quick)
    assert readable.vmas[3] == VMAS[3]
    assert unreadable.vmas[3] == replace(VMAS[3], read=False)


def test_the_kinds_a_seamed_case_adds_are_holes_and_device_pages() -> None:
    """``KIND_NONE`` and ``KIND_DEVICE`` number entries of :data:`KINDS` by place: a world of
    the one holds no mapping, and of the other only device-private pages."""
    quick = settings(max_examples=100, database=None)
    assert find(entries_of((KIND_NONE,)), lambda _: True, settings=quick) == PTE_NONE
    with pytest.raises(NoSuchExample):
        find(
            entries_of((KIND_DEVICE,)),
            lambda pte: pte.kind is not PteKind.DEVICE_PRIVATE,
            settings=quick,
        )


def test_a_case_that_fails_or_cannot_begin_counts_what_it_checked() -> None:
    """The replay stops at a failing step, and a candidate that cannot begin adds nothing."""
    entry = next(e for e in CATALOGUE if e.name == "release-calls-twice")
    kept: list[Case] = []
    run(*start(entry.make), budget=BUDGETS["fast"], seed_value=1, keep=kept)
    failing = feature_rates(kept, entry.make)
    assert failing.cases == len(kept)
    assert feature_rates(kept[:3], C.CrashesAtBegin).cases == 0
    live = Case(
        world=WORLD,
        ops=(
            RegisterMirror(mirror=0),
            Snapshot(range=0, vma=0, start=page(0), end=page(2), encoding=DEFAULT_ENCODING),
            InvalidateStart(start=page(0), end=page(1), blockable=True),
        ),
    )
    assert "INV-9" in feature_rates([live], reference).checks
    skipped = feature_rates([live], C.Minimal)  # declares nothing: INV-9 is skipped
    assert skipped.cases == 1
    assert "INV-9" not in skipped.checks


def test_a_case_that_shares_spans_snapshots_only_there() -> None:
    """A swarm with spans puts every snapshot its rules draw on one of them, picked by the
    drawn first page; one without puts it where it was drawn, cut at its vma's end."""
    plain = Swarm(
        mirrors=0,
        retire_oldest=False,
        early_snapshot=False,
        windows=0,
        windows_blockable=False,
        encodings=(DEFAULT_ENCODING,),
        requests=(1,),
        outcomes=(FaultOutcome.OK,),
        release_after=0,
        kinds=(),
        spans=(),
        seams=False,
    )
    last = VMAS[1].end - PAGE_SIZE
    assert plain.span(1, 7, 8) == (1, last, VMAS[1].end)
    assert plain.span(0, 1, 2) == (0, page(1), page(3))
    shared = replace(plain, spans=((1, 7, 8), (0, 1, 2)))
    assert {shared.span(vma, first, 1) for vma in (0, 1) for first in range(8)} == {
        (1, last, VMAS[1].end),
        (0, page(1), page(3)),
    }
    assert shared.span(0, 4, 1) == (1, last, VMAS[1].end)

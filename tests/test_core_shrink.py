"""The core's minimiser reaches a shortest case where deleting one operation at a time cannot:
it deletes what the caller's protocol ties together, folds a CPU change into the world, and
tries each swap followed by each shorter edit, and moves an operation further than a swap
does."""

from __future__ import annotations

from collections.abc import Callable

import hmm_ref as H
from conformance import (
    Candidate,
    Case,
    CoreOperation,
    InvalidateEnd,
    InvalidateStart,
    Profile,
    RangeDone,
    RegisterMirror,
    Release,
    SetCpuEntry,
    Snapshot,
    UnregisterMirror,
    World,
    explore,
    start,
)
from conformance._engine import minimise
from conformance._generation import VMAS
from conformance.core import _shrink
from conformance.core._blind_ranges import RangeDoneUnlinksByBounds
from conformance.core._catalogue import CATALOGUE, ValidAgainAtEnd, WriteFlagLost
from conformance.core._side import CORE, replay_failure

from . import candidates as C

PAGE = H.PAGE_SIZE
P0, P1, P2, P3 = (VMAS[0].start + n * PAGE for n in range(4))
#: Page 0 maps pfn 0x100 writable, page 1 pfn 0x101 read-only.
WORLD = World(vmas=VMAS, ptes=((P0, H.Pte.present(0x100, write=True)), (P1, H.Pte.present(0x101))))


def _snapshot(range_id: int, start: int, end: int) -> Snapshot:
    return Snapshot(range=range_id, vma=0, start=start, end=end, encoding=H.DEFAULT_ENCODING)


def _shrunk(make: Callable[[], Candidate], rule: str, *ops: CoreOperation) -> Case:
    """The case ``ops``, which fails ``rule`` at its last step against ``make()``, minimised."""
    candidate, handshake = start(make)
    failure = replay_failure(candidate, handshake, Case(world=WORLD, ops=ops), Profile.SEED)
    assert len(failure.case.ops) == len(ops)
    assert rule in {verdict.rule for verdict in failure.verdicts}
    return minimise(CORE, candidate, handshake, failure, Profile.SEED).case


def _shortest(name: str) -> int:
    return next(entry.shortest for entry in CATALOGUE if entry.name == name)


def test_minimise_deletes_an_unrelated_window_with_its_end() -> None:
    """An unrelated window, opened and closed before the snapshot: without its end it would be
    in flight at the last end, which then revalidates nothing; without its start, its end
    closes no window. Deleted together, the case is the exhaustive engine's shortest."""
    unrelated = (
        InvalidateStart(start=P2, end=P3, blockable=True),
        InvalidateEnd(start=P2, end=P3),
    )
    window = (InvalidateStart(start=P0, end=P1, blockable=False), InvalidateEnd(start=P0, end=P1))
    ops = (*unrelated, _snapshot(0, P0, P1), *window)
    shrunk = _shrunk(C.RevalidatesAtLastEnd, "END-2", *ops)
    assert shrunk.ops == (_snapshot(0, P0, P1), *window)
    candidate, handshake = start(C.RevalidatesAtLastEnd)
    found = explore(candidate, handshake, depth=3)
    assert found.failure is not None
    assert len(found.failure.case.ops) == len(shrunk.ops)


def test_minimise_deletes_a_snapshot_with_its_range_done() -> None:
    """Without its range_done, the snapshot would still be registered when the last mirror is
    unregistered (refused: the seed's bug #11); without the snapshot, range_done fails RNG-9."""
    mirror = (RegisterMirror(mirror=0), UnregisterMirror(mirror=0), Release())
    ops = (mirror[0], _snapshot(1, P0, P1), RangeDone(range=1), *mirror[1:])
    shrunk = _shrunk(C.RangeDoneOnAnything, "REL-1", *ops)
    assert shrunk.ops == mirror
    assert len(shrunk.ops) == _shortest("unregistered-still-called")


def test_minimise_swaps_two_operations_and_then_deletes_one() -> None:
    """A snapshot inside a wide window fails when the window ends. Swapped before the window's
    start it fails at the same step, so the swap alone is not kept; after it, the start inside
    the window can go."""
    wide = InvalidateStart(start=P0, end=VMAS[0].start + 4 * PAGE, blockable=True)
    inside = InvalidateStart(start=P1, end=P2, blockable=False)
    end = InvalidateEnd(start=wide.start, end=wide.end)
    shrunk = _shrunk(ValidAgainAtEnd, "END-2", wide, _snapshot(0, P1, P2), inside, end)
    assert shrunk.ops == (_snapshot(0, P1, P2), wide, end)
    assert len(shrunk.ops) == _shortest("valid-again-at-end")


def test_minimise_folds_a_cpu_change_into_the_world() -> None:
    """A read-only page made writable inside a window, then snapshotted: with the change in the
    world the window can go, and the snapshot alone loses the WRITE flag."""
    writable = H.Pte.present(0x1AA, write=True)
    ops = (
        InvalidateStart(start=P1, end=P2, blockable=False),
        SetCpuEntry(addr=P1, pte=writable),
        _snapshot(0, P1, P2),
    )
    shrunk = _shrunk(WriteFlagLost, "RNG-1", *ops)
    assert shrunk.ops == (_snapshot(0, P1, P2),)
    assert shrunk.world.ptes == ((P0, WORLD.ptes[0][1]), (P1, writable))
    assert len(shrunk.ops) == _shortest("write-flag-lost")


def test_minimise_moves_a_start_past_what_its_window_held() -> None:
    """Two snapshots of the same pages taken inside a window, the older ended: a core that
    unlinks by bounds unlinks the newer, which the window's end then leaves valid. The start
    moved after the range_done fails there at once (the newer range is not invalidated), and
    the end falls away behind the failure: no deletion or swap reaches that, as each case on
    the way fails no earlier."""
    window = (InvalidateStart(start=P0, end=P2, blockable=True), InvalidateEnd(start=P0, end=P2))
    twins = (_snapshot(0, P0, P2), _snapshot(1, P0, P2), RangeDone(range=0))
    shrunk = _shrunk(RangeDoneUnlinksByBounds, "RNG-3", window[0], *twins, window[1])
    assert shrunk.ops == (*twins, window[0])


def test_an_end_is_tied_to_the_oldest_open_window_of_its_span() -> None:
    """Two windows of one span: the first end closes the first, as in the model, so the second
    start goes with the second end and the first window still closes before the snapshot. A
    start with no end is tied to nothing, and a variant that two edits make (either of two
    equal starts deleted) is offered once."""
    first, second = (InvalidateStart(start=P0, end=P1, blockable=b) for b in (True, False))
    end, snapshot = InvalidateEnd(start=P0, end=P1), _snapshot(0, P0, P1)
    alone = InvalidateStart(start=P1, end=P2, blockable=True)
    ops = (first, second, end, snapshot, end, alone, alone)
    assert list(_shrink._ties(ops)) == [frozenset({0, 2}), frozenset({1, 4})]
    variants = [variant.ops for variant in CORE.edits(Case(world=WORLD, ops=ops))]
    assert len(variants) == len(set(variants))
    assert (second, snapshot, end, alone, alone) in variants

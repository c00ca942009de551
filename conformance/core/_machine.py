"""The Hypothesis state machine: draws operations, hands them to the executor, lets Hypothesis
shrink failing sequences.

It is a thin layer. Every rule builds one operation, keeps the caller's side of the protocol
with a precondition (CPU entries change only inside an open window that covers them, end only
after a start that succeeded, no sequence that reaches a seed defect unless the strict profile
is in force), and passes the operation to :meth:`Executor.step`. Mirror and range handles live
in bundles; unregister and range_done consume theirs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, TypeAlias

from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    MultipleResults,
    consumes,
    initialize,
    multiple,
    precondition,
    rule,
)

from hmm_ref import (
    PAGE_SIZE,
    PfnEncoding,
    Pte,
)

from .._generation import VMAS
from .._stateful import CaseMachine
from .._stateful import CaseRecorder as Recorders
from ._adapter import Capability
from ._draws import (
    DRIVER_SPANS,
    EMPTY,
    HIGH,
    LOW,
    REFUSED,
    REFUSED_SPANS,
    REPLIES,
    SNAPSHOTTABLE,
    WHERE,
    Swarm,
    core_ptes,
    entries_of,
    swarms,
    vma_span,
    world_strategy,
)
from ._executor import Executor, StepOutcome
from ._machine_faults import FaultRules
from ._machine_misuse import MisuseRules
from ._model import Model
from ._ops import (
    Case,
    CoreOperation,
    InvalidateEnd,
    InvalidateStart,
    Observe,
    RangeDone,
    RegisterMirror,
    Release,
    SetCpuEntry,
    Snapshot,
    UnregisterMirror,
    World,
    case_to_json,
)

__all__ = ["CaseRecorder", "HmmConformance"]


#: What the machine saw, and how it makes each case's executor.
CaseRecorder: TypeAlias = Recorders[Case, StepOutcome, Callable[[World], Executor]]


class HmmConformance(FaultRules, MisuseRules, CaseMachine[Case, CoreOperation, Executor]):
    """The core side's state machine; ``bound`` makes a class of it whose cases run
    through a recorder."""

    #: Where the cases go, and how each makes its executor (set by ``bound``).
    recorder: ClassVar[CaseRecorder]

    mirrors = Bundle("mirrors")
    retired = Bundle("retired")
    ranges = Bundle("ranges")
    finished = Bundle("finished")

    def __init__(self) -> None:
        super().__init__()
        self.next_mirror = 0
        self.next_range = 0
        self.swarm: Swarm | None = None

    @property
    def model(self) -> Model:
        assert self.executor is not None, "the world comes first"
        return self.executor.model

    def case(self) -> Case:
        assert self.world is not None, "the world comes first"
        return Case(world=self.world, ops=tuple(self.ops))

    def document(self) -> dict[str, object]:
        return case_to_json(self.case())

    def _do(self, op: CoreOperation) -> None:
        executor = self.check_caller(op)
        self.ops.append(op)
        self.judge(executor.step(op))

    def _mirror_id(self) -> int:
        self.next_mirror += 1
        return self.next_mirror - 1

    def _range_id(self) -> int:
        self.next_range += 1
        return self.next_range - 1

    @initialize(target=mirrors, swarm=swarms(), data=st.data())
    def set_up(self, swarm: Swarm, data: st.DataObject) -> MultipleResults[int]:
        """The case's swarm and its world, then the mirrors it starts with (so that
        invalidations meet some); before them, if the swarm says so, a snapshot, and after
        them the oldest unregistered and windows left open."""
        self.swarm = swarm = self._seamed(swarm, data)
        world = data.draw(world_strategy(swarm.kinds, refusals=swarm.refusals), label="world")
        self.begin_case(world, lambda: self.recorder.make_executor(world))
        if swarm.early_snapshot:
            self._snapshot(0, VMAS[0].start, VMAS[0].end, swarm.encodings[-1])
        # Retiring the oldest leaves two or more behind it: the gap is what a bug needs.
        count = max(swarm.mirrors, 3) if swarm.retire_oldest else swarm.mirrors
        mirrors = [self._register() for _ in range(count)]
        if swarm.retire_oldest and self.model.may_unregister():
            self._do(UnregisterMirror(mirror=mirrors.pop(0)))
        for _ in range(swarm.windows):  # every mirror answers 0, so each window opens
            self._do(
                InvalidateStart(
                    start=LOW, end=LOW + 2 * PAGE_SIZE, blockable=swarm.windows_blockable
                )
            )
        return multiple(*mirrors)

    @property
    def _swarm(self) -> Swarm:
        assert self.swarm is not None, "the swarm comes first"
        return self.swarm

    def _encoding(self, data: st.DataObject) -> PfnEncoding:
        """An encoding from the case's swarm."""
        return data.draw(st.sampled_from(self._swarm.encodings), label="encoding")

    def _entries(self) -> st.SearchStrategy[Pte]:
        """What the CPU changes an entry to: one of the world's kinds, or any."""
        return entries_of(self._swarm.kinds) | core_ptes

    def _snapshot(self, vma: int, start: int, end: int, encoding: PfnEncoding) -> int:
        range_id = self._range_id()
        self._do(Snapshot(range=range_id, vma=vma, start=start, end=end, encoding=encoding))
        return range_id

    # -- mirrors ---------------------------------------------------------------------

    @precondition(lambda self: self.model.may_register())
    @rule(target=mirrors)
    def register(self) -> int:
        return self._register()

    def _register(self) -> int:
        mirror = self._mirror_id()
        self._do(RegisterMirror(mirror=mirror))
        return mirror

    @precondition(lambda self: self.model.may_unregister())
    @rule(target=retired, mirror=consumes(mirrors))
    def unregister(self, mirror: int) -> int:
        self._do(UnregisterMirror(mirror=mirror))
        return mirror

    # -- ranges ----------------------------------------------------------------------

    @precondition(lambda self: not self.model.released)
    @rule(
        target=ranges,
        kind=st.one_of(st.just("ok"), st.sampled_from(REFUSED)),
        vma=st.sampled_from(SNAPSHOTTABLE),
        first=st.integers(0, 7),
        length=st.integers(1, 8),
        data=st.data(),
    )
    def snapshot(
        self,
        *,
        kind: str,
        vma: int,
        first: int,
        length: int,
        data: st.DataObject,
    ) -> int:
        """A snapshot inside a readable vma (sometimes over an open window, which END-2 is
        about, or over exactly a registered range, as a second driver snapshots the same
        pages), or one the rules make fail or leave empty.

        Every handle goes to the ranges bundle: range_done on a failed or empty one is the
        misuse that RNG-9 is about.
        """
        spans = [
            (max(ws, v.start), min(we, v.end), index)
            for ws, we in sorted(self.model.windows.values())
            for index, v in ((i, VMAS[i]) for i in SNAPSHOTTABLE)
            if max(ws, v.start) < min(we, v.end)
        ] + [
            (r.start, r.end, index)
            for r in self.model.registered_ranges()
            for index in SNAPSHOTTABLE
            if not r.empty and VMAS[index].start <= r.start < VMAS[index].end
        ]
        inside: bool = kind == "ok" and bool(spans) and data.draw(st.booleans())
        if inside:
            start, end, vma = data.draw(st.sampled_from(spans), label="span")
        elif kind == "ok":
            vma, start, end = self._swarm.span(vma, first, length)
        elif kind in EMPTY:
            start = end = min(EMPTY[kind] + first * PAGE_SIZE, VMAS[0].end)
            vma = 0
        else:
            vma, start, end = REFUSED_SPANS[kind]
        return self._snapshot(vma, start, end, self._encoding(data))

    @rule(range_id=ranges)
    def observe(self, range_id: int) -> None:
        self._do(Observe(range=range_id))

    @rule(target=finished, range_id=consumes(ranges))
    def range_done(self, range_id: int) -> int:
        self._do(RangeDone(range=range_id))
        return range_id

    @precondition(lambda self: not self.model.released)
    @rule(
        target=finished,
        vma=st.sampled_from(SNAPSHOTTABLE),
        first=st.integers(0, 7),
        length=st.integers(1, 8),
        data=st.data(),
    )
    def device_fault(self, *, vma: int, first: int, length: int, data: st.DataObject) -> int:
        """A driver's fault path: a snapshot, or ``hmm_vma_fault`` as nouveau's is, then
        range_done (RNG-1, RNG-7, RNG-8; FLT). A fault that failed has ended its range itself
        (FLT-4), and a snapshot of a span the rules refuse (drawn in a case that dwells on
        refusals, :attr:`Swarm.refusals`) never listed it (RNG-2), so the driver ends neither.

        One rule, like cpu_update, so that the pair is not lost to rules switched off; and the
        faulting snapshot rides on it, so that a case without the fault rule still faults.
        """
        if Capability.FAULT in self.model.capabilities and data.draw(st.booleans(), label="fault"):
            vma, start, end = self._aimed(vma, first, length)
            range_id = self._fault(vma, start, end, data.draw(st.booleans(), label="block"), data)
            if not (done := self.model.ranges.get(range_id)) or not done.registered:
                return range_id
        elif self._swarm.refusals and (kind := data.draw(DRIVER_SPANS, label="span")) != "ok":
            return self._snapshot(*REFUSED_SPANS[kind], self._encoding(data))  # failed: no end
        else:
            range_id = self._snapshot(vma, *vma_span(vma, first, length), self._encoding(data))
        self._do(RangeDone(range=range_id))
        return range_id

    @precondition(lambda self: not self.model.released)
    @rule(
        target=ranges,
        vma=st.sampled_from(SNAPSHOTTABLE),
        first=st.integers(0, 7),
        length=st.integers(1, 8),
        above=st.booleans(),
        blockable=st.booleans(),
        data=st.data(),
    )
    def touch_boundary(
        self,
        *,
        vma: int,
        first: int,
        length: int,
        above: bool,
        blockable: bool,
        data: st.DataObject,
    ) -> int:
        """A fresh snapshot, then a start that only touches it, from above or below
        (RNG-4, RNG-5). Only a range still valid shows whether a boundary reached it, and
        other steps rarely leave one valid, so the two come as one rule.
        """
        vma, start, end = self._swarm.span(vma, first, length)
        range_id = self._snapshot(vma, start, end, self._encoding(data))
        width = (1 + length % 2) * PAGE_SIZE
        low, high = (end, end + width) if above or start - width < LOW else (start - width, start)
        self._do(
            InvalidateStart(start=low, end=high, blockable=blockable, replies=self._replies(data))
        )
        return range_id

    @precondition(lambda self: len(self.model.registered_ranges()) >= 2)
    @rule(target=finished)
    def range_done_oldest(self) -> int:
        """range_done on the oldest registered range while newer ones live: a driver ends its
        snapshots in the order it took them as often as the other way round, and a draw from
        the bundle favours the newest. (Its handle stays in the bundle: ending it again is
        the misuse RNG-9 is about.)"""
        range_id = self.model.registered_ranges()[0].id
        self._do(RangeDone(range=range_id))
        return range_id

    # -- invalidations and the CPU ----------------------------------------------------

    @rule(
        blockable=st.booleans(),
        first=st.integers(0, 15),
        length=st.integers(1, 16),
        data=st.data(),
    )
    def invalidate_start(
        self, blockable: bool, first: int, length: int, data: st.DataObject
    ) -> None:
        """A start over any span, or one that ends where a live range starts or starts
        where it ends (the boundaries of RNG-4 and RNG-5), or one nested in an open window
        over exactly its span.

        Every kind of start is one rule: Hypothesis switches whole rules off per example
        (swarm testing), and the bugs that matter need blockable and non-blockable starts
        to meet the same mirrors.
        """
        bound = [r for r in self.model.bound_ranges() if not r.empty]
        live = sorted((r.start, r.end) for r in bound)
        windows = sorted(self.model.windows.values())
        allowed = (WHERE[:3] if live else ("anywhere",)) + (("window",) if windows else ())
        where = data.draw(st.sampled_from(allowed), label="where") if allowed[1:] else allowed[0]
        if where == "window":  # nested in an open window, over exactly its span
            live = windows
        elif where == "boundary":  # only a valid range shows whether a boundary touched it
            live = sorted((r.start, r.end) for r in bound if r.valid) or live
        if where == "anywhere":
            start = LOW + first * PAGE_SIZE
            end = min(start + length * PAGE_SIZE, HIGH)
        else:
            low, high = data.draw(st.sampled_from(live), label="range")
            if where == "window":
                start, end = low, high
            elif where == "over":  # a span that covers page `inside` of the range
                inside = low + first % ((high - low) // PAGE_SIZE) * PAGE_SIZE
                start = max(LOW, inside - (first % 3) * PAGE_SIZE)
                end = min(HIGH, inside + (1 + length % 4) * PAGE_SIZE)
            else:  # ends where the range starts, or starts where it ends
                span = min(length, 2) * PAGE_SIZE
                start, end = (low - span, low) if first % 2 else (high, high + span)
                if start < LOW:  # no room below: go above, where there always is
                    start, end = high, high + span
        replies = self._replies(data)
        self._do(InvalidateStart(start=start, end=end, blockable=blockable, replies=replies))

    def _replies(self, data: st.DataObject) -> tuple[tuple[int, int], ...]:
        # Newest first, the order the seed calls them in: shrinking away a mirror then
        # keeps the answers of the ones the seed reaches first.
        return tuple(
            sorted(
                (mirror, reply)
                for mirror in self.model.mirrors
                if (reply := data.draw(st.sampled_from(REPLIES), label=f"m{mirror} answers"))
            )
        )

    @rule(
        first=st.integers(0, 15),
        length=st.integers(1, 16),
        changes=st.integers(0, 2),
        racing_snapshot=st.booleans(),
        data=st.data(),
    )
    def cpu_update(
        self,
        *,
        first: int,
        length: int,
        changes: int,
        racing_snapshot: bool,
        data: st.DataObject,
    ) -> None:
        """The CPU changes a mapping the kernel way: start, entry changes, end.

        A snapshot may race into the window (what END-2 is about). One rule does it all
        because Hypothesis switches rules off per example, and this pattern needs all its
        steps; each step is still its own operation, for shrinking and for the report.
        """
        live = sorted((r.start, r.end) for r in self.model.bound_ranges() if not r.empty)
        if live:
            low, high = data.draw(st.sampled_from(live), label="over range")
            start = max(LOW, low + (first % 3 - 1) * PAGE_SIZE)
            end = min(HIGH, max(start + PAGE_SIZE, high - (length % 3) * PAGE_SIZE))
        else:
            start = LOW + first * PAGE_SIZE
            end = min(start + length * PAGE_SIZE, HIGH)
        self._do(InvalidateStart(start=start, end=end, blockable=True, replies=self._replies(data)))
        if racing_snapshot and not self.model.released:
            vma = 0 if start < VMAS[0].end else 1
            low, high = max(start, VMAS[vma].start), min(end, VMAS[vma].end)
            if low < high:
                self._snapshot(vma, low, high, self._encoding(data))
        for _ in range(changes):
            pages = [a for a in self.model.changeable_pages() if start <= a < end]
            if pages:
                addr = data.draw(st.sampled_from(pages), label="changed page")
                self._do(SetCpuEntry(addr=addr, pte=data.draw(self._entries(), label="new entry")))
        self._do(InvalidateEnd(start=start, end=end))

    @precondition(lambda self: bool(self.model.windows))
    @rule(data=st.data())
    def invalidate_end(self, data: st.DataObject) -> None:
        start, end = data.draw(st.sampled_from(sorted(self.model.windows.values())))
        self._do(InvalidateEnd(start=start, end=end))

    @precondition(lambda self: bool(self.model.changeable_pages()))
    @rule(data=st.data())
    def set_cpu_entry(self, data: st.DataObject) -> None:
        addr = data.draw(st.sampled_from(self.model.changeable_pages()))
        self._do(SetCpuEntry(addr=addr, pte=data.draw(self._entries(), label="new entry")))

    @precondition(
        lambda self: (
            not self.model.released
            and Capability.RELEASE in self.model.capabilities
            and self.swarm is not None
            and len(self.ops) >= self.swarm.release_after
        )
    )
    @rule()
    def release(self) -> None:
        """The mm's teardown, once the case's swarm allows it (Swarm.release_after)."""
        self._do(Release())

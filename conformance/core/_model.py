"""The model: what the rules say the state is, step by step, independent of any candidate.

The oracle compares a candidate's observations with this model. The model is deliberately not
``hmm_ref``: it states the rules' consequences (which mirrors are registered, which ranges must be
valid, which entries must be what) and takes nothing from the reference but its vocabulary (the
types of entries, encodings and updates); even the encoding of an entry is worked out here.
Where a rule leaves latitude (a MAY rule), the model adopts what the candidate did.

It also carries the caller's side of the protocol that generators must keep: which windows are
open, which pages may change, and when an operation would reach a seed defect or one of the
seed's known holes (see docs/spec.md, RNG-8 open points).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, assert_never, final

from hmm_ref import (
    PAGE_SIZE,
    HmmUpdate,
    PfnEncoding,
    PteKind,
)

from .._case import CpuState, FaultCall, exact_overlap
from .._rules import Profile
from ._adapter import Capability, RangeView
from ._entries import encode, snapshot_outcome
from ._ops import (
    CoreOperation,
    FaultSnapshot,
    InvalidateEnd,
    InvalidateStart,
    Observe,
    Operation,
    RangeDone,
    RegisterMirror,
    Release,
    SetCpuEntry,
    Snapshot,
    UnregisterMirror,
)

__all__ = [
    "CallRecord",
    "CpuState",
    "Model",
    "Observation",
    "Profile",
    "RangeState",
    "encode",
    "exact_overlap",
    "snapshot_outcome",
]


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class CallRecord:
    """One callback the candidate made into a mirror during a step."""

    mirror: int
    kind: Literal["sync", "release"]
    update: HmmUpdate | None = None
    #: What the harness answered (the operation's reply for this mirror).
    reply: int = 0
    #: Ranges observed from inside the callback (capability observe-in-callback).
    seen: tuple[tuple[int, RangeView], ...] = ()


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class Observation:
    """Everything the harness saw of one step."""

    #: What the call returned (an int, a bool for range_done, None for void calls).
    result: int | bool | None = None
    #: Set if the candidate refused the call as a usage error.
    rejected: str | None = None
    #: Set if the candidate said it would never return from the call.
    would_hang: str | None = None
    calls: tuple[CallRecord, ...] = ()
    #: The ranges observed right after the step, by id.
    ranges: tuple[tuple[int, RangeView], ...] = ()
    #: The calls the candidate made into the CPU's fault handling (a fault step).
    faults: tuple[FaultCall, ...] = ()

    def range(self, range_id: int) -> RangeView | None:
        return dict(self.ranges).get(range_id)

    def syncs(self) -> list[CallRecord]:
        return [call for call in self.calls if call.kind == "sync"]


@final
@dataclass(slots=True, kw_only=True)
class RangeState:
    """What the model knows of one range (a snapshot)."""

    id: int
    start: int
    end: int
    encoding: PfnEncoding
    registered: bool
    valid: bool
    #: The entries last observed (the baseline later steps are compared with).
    entries: tuple[int, ...]
    #: Entries the seed's walk does not write (after a poisoned page): no rule binds them.
    unwritten: frozenset[int] = frozenset()
    #: Entries whose page a fault mapped, or made writable, since the snapshot: no notifier
    #: runs for that (docs/spec.md, FLT-3), so the entry may still be the older one.
    faulted: frozenset[int] = frozenset()
    #: Open windows that overlapped the range when it was snapshotted.
    windows_at_snapshot: frozenset[int] = frozenset()
    done: bool = False
    failed: bool = False
    at_release: bool = False

    @property
    def empty(self) -> bool:
        return self.end <= self.start

    @property
    def npages(self) -> int:
        return max(0, (self.end - self.start) // PAGE_SIZE)

    def page(self, index: int) -> int:
        return self.start + index * PAGE_SIZE

    def covers(self, addr: int) -> bool:
        return self.start <= addr < self.end


def expected_entries(cpu: CpuState, rng: RangeState) -> tuple[list[int], frozenset[int]]:
    """The entries a walk of ``rng`` must produce now, and the indexes it need not write."""
    entries: list[int] = []
    unwritten: set[int] = set()
    stopped = False
    for index in range(rng.npages):
        pte = cpu.pte(rng.page(index))
        if stopped:
            unwritten.add(index)
            entries.append(0)
            continue
        entries.append(encode(rng.encoding, pte))
        stopped = pte.kind is PteKind.POISON
    return entries, frozenset(unwritten)


@final
@dataclass(slots=True, kw_only=True)
class Model:
    """The state the rules define, advanced one operation at a time."""

    profile: Profile
    cpu: CpuState
    #: What the candidate declared it can be driven through.
    capabilities: frozenset[Capability] = frozenset()
    #: Registered mirrors, newest first (the seed's list order).
    mirrors: list[int] = field(default_factory=list)
    #: Mirrors whose register was refused (no ops): never part of anything.
    refused: set[int] = field(default_factory=set)
    #: Mirrors that were unregistered: never to be called again.
    gone: set[int] = field(default_factory=set)
    #: Mirrors that were registered when the mm was released.
    released_mirrors: set[int] = field(default_factory=set)
    #: Every mirror ever registered successfully.
    known: set[int] = field(default_factory=set)
    #: True once a mirror was unregistered while others stayed (the seed's poisoned hmm).
    poisoned: bool = False
    released: bool = False
    #: True once the candidate has shown that it did not take the seed's release path (REL-3):
    #: its release invalidated a range that was valid, or an invalidation after release reached
    #: a range registered at release. Until then, an invalidation that misses such a range is
    #: that defect's consequence, not a rule of its own (docs/spec.md, section 1.3).
    release_fixed: bool = False
    ranges: dict[int, RangeState] = field(default_factory=dict)
    #: Open invalidation windows by id: ``[start, end)``.
    windows: dict[int, tuple[int, int]] = field(default_factory=dict)
    next_window: int = 0

    # -- views for checks and generators ---------------------------------------------------

    def registered_ranges(self) -> list[RangeState]:
        return [r for r in self.ranges.values() if r.registered]

    def bound_ranges(self) -> list[RangeState]:
        """Registered ranges that invalidations must reach.

        In the seed profile a range registered at release is out of reach afterwards: the seed
        no longer hears of the mm at all (REL-3), and the rules on it are suspended there.
        """
        return [r for r in self.registered_ranges() if not (r.at_release and not self.strict())]

    def changeable_pages(self) -> list[int]:
        """Pages the CPU may change now: inside an open window, and not a seed hole.

        A page is held back if a registered range snapshotted *inside* a still-open window
        covering it covers it: the seed would report that range valid with a stale entry if
        range_done came before the end (docs/spec.md, RNG-8 open point (a)).
        """
        pages: set[int] = set()
        for start, end in self.windows.values():
            pages.update(range(start, end, PAGE_SIZE))
        held: set[int] = set()
        for rng in self.registered_ranges():
            for window in rng.windows_at_snapshot:
                span = self.windows.get(window)
                if span is not None:
                    held.update(
                        addr for addr in range(span[0], span[1], PAGE_SIZE) if rng.covers(addr)
                    )
        mapped = {addr for addr in pages if any(v.start <= addr < v.end for v in self.cpu.vmas)}
        return sorted(mapped - held)

    def seed_release_path(self, rng: RangeState, view: RangeView) -> bool:
        """True if the step left ``rng`` as the seed's release path would: ``rng`` was registered
        at release, the candidate has not shown the fix, and nothing of it changed.

        The seed's release touches no range and the core then removes HMM's notifier, so no
        later invalidation reaches it (kernel-semantics 3.4 rule 6, 5.4; bug #12). Under strict,
        what that leaves behind is REL-3's to report, once, not END-2's or RNG-3's.
        """
        return (
            self.strict()
            and rng.at_release
            and not self.release_fixed
            and view.valid == rng.valid
            and view.entries == rng.entries
        )

    def may_unregister(self) -> bool:
        """False if unregistering now could orphan a registered range (RNG-8 open point (b))."""
        if not self.registered_ranges():
            return True
        return not self.released and len(self.mirrors) >= 2

    def strict(self) -> bool:
        """True if the SEED-DEFECT rules are in force: strict profile, and a candidate that
        declared it can be driven through their sequences."""
        return self.profile is Profile.STRICT and Capability.STRICT in self.capabilities

    def may_register(self) -> bool:
        """Registering a mirror is generated unless it reaches the seed's livelock (REG-5)."""
        return not self.released and (not self.poisoned or self.strict())

    def caller_violation(self, op: Operation) -> str | None:
        """Why ``op`` breaks the caller's side of the protocol now, or None if it does not.

        The generators never take such a step; a replayed case that does is refused, since the
        candidate cannot be blamed for it.
        """
        if isinstance(op, RegisterMirror | Snapshot | FaultSnapshot | Release) and self.released:
            return "the mm has exited (release ran); nothing registers or snapshots after it"
        if isinstance(op, RegisterMirror):
            if op.mirror in self.known | self.refused | self.gone:
                return f"mirror m{op.mirror} was registered before in this case; use a new number"
            if op.with_ops and self.poisoned and not self.strict():
                return (
                    "a mirror was unregistered while others stayed, so the seed would loop "
                    "forever here (REG-5); only the strict profile takes this step"
                )
        if (
            isinstance(op, UnregisterMirror)
            and op.mirror in self.known - self.gone
            and not self.may_unregister()
        ):
            return (
                "this unregister could leave a registered snapshot that no invalidation "
                "reaches (the seed's bug #11); finish the snapshots first"
            )
        if isinstance(op, Snapshot | FaultSnapshot) and op.range in self.ranges:
            return f"range r{op.range} exists already in this case; use a new number"
        if isinstance(op, FaultSnapshot) and Capability.FAULT not in self.capabilities:
            return "the candidate did not declare the fault capability (hmm_vma_fault)"
        if isinstance(op, InvalidateEnd) and (op.start, op.end) not in self.windows.values():
            return "no successful start of this span is open: end follows only such a start (END-3)"
        if isinstance(op, SetCpuEntry) and op.addr not in self.changeable_pages():
            return (
                "the CPU changes an entry only inside an open invalidation window, and not under "
                "a snapshot taken inside that window (docs/spec.md, RNG-8 open point (a))"
            )
        return None

    # -- advancing ---------------------------------------------------------------------------

    def advance(self, op: CoreOperation, obs: Observation) -> None:
        """Move to the state after ``op``, adopting ``obs`` where a rule leaves latitude."""
        match op:
            case RegisterMirror():
                self._on_register(op, obs)
            case UnregisterMirror():
                self._on_unregister(op, obs)
            case Snapshot():
                self._on_snapshot(op, obs)
            case FaultSnapshot():
                self._on_fault(op, obs)
            case Observe():
                self._on_observe(op, obs)
            case RangeDone():
                self._on_range_done(op, obs)
            case InvalidateStart():
                self._on_invalidate_start(op, obs)
            case InvalidateEnd():
                self._on_invalidate_end(op, obs)
            case SetCpuEntry():
                self._on_set_pte(op, obs)
            case Release():
                self._on_release(op, obs)
            case _:
                assert_never(op)
        self._adopt(obs)

    def _on_register(self, op: RegisterMirror, obs: Observation) -> None:
        if not op.with_ops:
            self.refused.add(op.mirror)
        else:  # it succeeded: a failed register fails REG-2 or REG-5, and ends the case
            self.mirrors.insert(0, op.mirror)
            self.known.add(op.mirror)

    def _on_unregister(self, op: UnregisterMirror, obs: Observation) -> None:
        if op.mirror in self.mirrors:
            self.mirrors.remove(op.mirror)
            self.poisoned = self.poisoned or bool(self.mirrors)
            self.gone.add(op.mirror)

    def _on_range_done(self, op: RangeDone, obs: Observation) -> None:
        rng = self.ranges.get(op.range)
        if rng is not None and rng.registered and not rng.empty:
            rng.registered = False
            rng.done = True

    def _on_invalidate_start(self, op: InvalidateStart, obs: Observation) -> None:
        if op.blockable or obs.result == 0:
            self.windows[self.next_window] = (op.start, op.end)
            self.next_window += 1
        self._heard_after_release(obs)
        self._invalidate(op.start, op.end)

    def _on_invalidate_end(self, op: InvalidateEnd, obs: Observation) -> None:
        # END-3 held (the oracle checked it), so a window with this span is open.
        window = min(w for w, span in self.windows.items() if span == (op.start, op.end))
        del self.windows[window]
        self._heard_after_release(obs)
        self._invalidate(op.start, op.end)

    def _heard_after_release(self, obs: Observation) -> None:
        """An invalidation that changed a range registered at release reached it after release,
        which the seed's release path never lets happen: the candidate has the fix."""
        for rng in self.registered_ranges():
            view = obs.range(rng.id)
            if (
                self.strict()
                and rng.at_release
                and view is not None
                and view.entries != rng.entries
            ):
                self.release_fixed = True

    def _on_set_pte(self, op: SetCpuEntry, obs: Observation) -> None:
        self.cpu.set_pte(op.addr, op.pte)

    def _on_release(self, op: Release, obs: Observation) -> None:
        self.released = True
        self.released_mirrors.update(self.mirrors)
        self.mirrors.clear()
        for rng in self.registered_ranges():
            rng.at_release = True
            if self.strict():
                view = obs.range(rng.id)
                if rng.valid and not rng.empty and view is not None and not view.valid:
                    self.release_fixed = True  # the seed's release would have left it valid
                rng.valid = False

    def _on_observe(self, op: Observe, obs: Observation) -> None:
        pass

    def _on_snapshot(self, op: Snapshot, obs: Observation) -> None:
        vma = self.cpu.vmas[op.vma]
        result, _ = snapshot_outcome(vma, op.start, op.end)
        rng = RangeState(
            id=op.range,
            start=op.start,
            end=op.end,
            encoding=op.encoding,
            registered=result == 0,
            valid=result == 0,
            entries=(),
            failed=result != 0,
            windows_at_snapshot=frozenset(
                window
                for window, (start, end) in self.windows.items()
                if exact_overlap(start, end, op.start, op.end)
            ),
        )
        if result == 0:
            rng.unwritten = expected_entries(self.cpu, rng)[1]
        self.ranges[op.range] = rng

    def _on_fault(self, op: FaultSnapshot, obs: Observation) -> None:
        # The result is the rules' (the step passed). No rule binds the valid flag of a range
        # the fault gave up (the seed's is True from the registration its error path undid).
        ok = obs.result == 0
        view = obs.range(op.range)
        valid = ok or (view is not None and view.valid)
        self.ranges[op.range] = RangeState(
            id=op.range,
            start=op.start,
            end=op.end,
            encoding=op.encoding,
            registered=ok,
            valid=valid,
            entries=(),
            failed=not ok,
            windows_at_snapshot=frozenset(
                window
                for window, (start, end) in self.windows.items()
                if exact_overlap(start, end, op.start, op.end)
            ),
        )
        for call in obs.faults:  # the CPU side already changed (the harness's own handler)
            if call.after == call.before:
                continue
            for rng in self.registered_ranges():
                if rng.id != op.range and rng.covers(call.addr):
                    index = (call.addr - rng.start) // PAGE_SIZE
                    rng.faulted = rng.faulted | {index}

    def _invalidate(self, start: int, end: int) -> None:
        for rng in self.bound_ranges():
            if exact_overlap(start, end, rng.start, rng.end) or (
                rng.empty and start < rng.start <= end
            ):
                rng.valid = False

    def _adopt(self, obs: Observation) -> None:
        """Take the observed entries as the new baseline, and the valid flag where it is free.

        Only a range the update touches from below (RNG-5) may be valid or not; every other
        flag is the model's own, already checked against the observation.
        """
        for range_id, view in obs.ranges:  # the executor observes only ranges the model has
            rng = self.ranges[range_id]
            rng.entries = view.entries
            if rng.registered and rng.valid and not view.valid:
                rng.valid = False
            if rng.at_release and not self.strict():
                # Out of the seed profile's reach (REL-3): invalid or not, but still sticky.
                rng.valid = rng.valid and view.valid

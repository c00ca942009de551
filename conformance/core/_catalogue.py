"""The catalogue: known-bad HMM cores the suite must catch, each with its origin.

Every entry is :class:`SeedCore`, a compact core that behaves like the seed, with one method
overridden to put one bug in. The bugs are real kernel history (kernel-bug-history.md, cited
by number) or targeted mutations of the rules. An entry that names a kernel state behaves as
that state does in every sequence, before the mm has an hmm and after release included, so it
overrides whatever that state's mechanism touches. ``hmm-conformance catalogue`` runs them
all; a test in CI asserts that each is caught against one of its expected rules.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, final

from hmm_ref import (
    PAGE_SIZE,
    Errno,
    HmmMirrorOps,
    HmmPfnFlag,
    HmmPfnValue,
    HmmUpdate,
    PfnEncoding,
    Pte,
    PteKind,
)

from ._adapter import (
    PROTOCOL_VERSION,
    Candidate,
    CandidateRejected,
    Capability,
    CpuView,
    Handshake,
    RangeView,
)

__all__ = ["CATALOGUE", "Entry", "SeedCore"]

EAGAIN: Final = -Errno.EAGAIN


@dataclass(slots=True)
class _Range:
    start: int
    end: int
    encoding: PfnEncoding
    entries: list[int]
    registered: bool = False
    valid: bool = False
    done: bool = False


@dataclass(slots=True)
class SeedCore:
    """A core with the seed's observable behaviour, built from one method per step."""

    name: str = "seed-core"
    cpu: CpuView | None = None
    mirrors: list[tuple[int, HmmMirrorOps]] = field(default_factory=list)  # newest first
    ranges: dict[int, _Range] = field(default_factory=dict)
    released: bool = False
    #: ``mm->hmm`` exists, its notifier on the mm: a register or a snapshot past its bounds
    #: check makes it, unregistering the last mirror of an unpoisoned hmm frees it
    #: (kernel-semantics 3.1-3.3, 3.7 rule 3). Until then no start or end reaches HMM at all.
    hmm: bool = False
    #: An unregister left other mirrors: ``hmm->mm`` is NULL, and the hmm is never freed.
    poisoned: bool = False

    def handshake(self) -> Handshake:
        return Handshake(
            protocol_version=PROTOCOL_VERSION,
            name=self.name,
            version="catalogue",
            capabilities=frozenset({Capability.RELEASE, Capability.OBSERVE_IN_CALLBACK}),
        )

    def begin(self, cpu: CpuView) -> None:
        self.cpu, self.mirrors, self.ranges, self.released = cpu, [], {}, False
        self.hmm = self.poisoned = False

    def register(self, mirror: int, ops: HmmMirrorOps | None) -> int:
        if ops is None:
            return -Errno.EINVAL  # before hmm_register: no hmm is made
        self.hmm = True
        self.mirrors.insert(0, (mirror, ops))
        return 0

    def unregister(self, mirror: int) -> None:
        if all(m != mirror for m, _ in self.mirrors):
            return
        self.mirrors = [(m, ops) for m, ops in self.mirrors if m != mirror]
        if self.mirrors or self.poisoned:
            self.poisoned = True
        else:  # the last mirror of an unpoisoned hmm: notifier unregistered, hmm freed
            self.hmm = False

    def hears(self) -> bool:
        """True if a start or an end on the mm reaches HMM: an hmm exists and release has not
        taken its notifier off the mm (kernel-semantics 5.4)."""
        return self.hmm and not self.released

    def snapshot(self, range_id: int, vma: int, start: int, end: int, encoding: PfnEncoding) -> int:
        assert self.cpu is not None
        area = self.cpu.vmas[vma]
        npages = max(0, (end - start) // PAGE_SIZE)
        rng = self.ranges[range_id] = _Range(start, end, encoding, [0] * npages)
        if not self.in_bounds(area.start, area.end, start, end):
            return -Errno.EINVAL
        self.make_hmm()
        if area.special:
            rng.entries = [encoding.value(HmmPfnValue.SPECIAL)] * npages
            return -Errno.EINVAL
        if not area.read:
            rng.entries = [encoding.value(HmmPfnValue.NONE)] * npages
            return -Errno.EPERM
        rng.registered = rng.valid = True
        for index in range(npages):
            pte = self.cpu.pte(start + index * PAGE_SIZE)
            rng.entries[index] = self.encode(encoding, pte)
            if pte.kind is PteKind.POISON:
                break
        return 0

    def make_hmm(self) -> None:
        """hmm_register: a snapshot or a range_done makes an hmm if the mm has none."""
        if not self.hmm:
            self.hmm, self.poisoned = True, False

    def in_bounds(self, low: int, high: int, start: int, end: int) -> bool:
        """The seed's bounds check of a snapshot against its vma ``[low, high)``."""
        return low <= start < high and low <= end <= high

    def encode(self, encoding: PfnEncoding, pte: Pte) -> int:
        return encoding.encode(pte)

    def observe(self, range_id: int) -> RangeView:
        rng = self.ranges.get(range_id)
        if rng is None:
            raise CandidateRejected(f"no range r{range_id}")
        return RangeView(registered=rng.registered, valid=rng.valid, entries=tuple(rng.entries))

    def range_done(self, range_id: int) -> bool:
        rng = self.ranges.get(range_id)
        if rng is None or not rng.registered or rng.end <= rng.start:
            raise CandidateRejected(f"range_done on r{range_id}, which is not a live snapshot")
        self.make_hmm()
        self.unlink(rng)
        return rng.valid

    def unlink(self, rng: _Range) -> None:
        rng.registered, rng.done = False, True

    # -- invalidation, one overridable piece at a time -------------------------------------

    def overlaps(self, rng: _Range, start: int, end: int) -> bool:
        """The seed's test: skipped only if the update ends before or starts at/after it."""
        return not (end < rng.start or start >= rng.end)

    def clear(self, rng: _Range, start: int, end: int) -> None:
        """Zero the entries inside the overlap."""
        for index in range(len(rng.entries)):
            if start <= rng.start + index * PAGE_SIZE < end:
                rng.entries[index] = 0

    def invalidate_ranges(self, start: int, end: int) -> None:
        if not self.hears():
            return  # no notifier: nothing before an hmm, nor after release (REL-3)
        for rng in self.ranges.values():
            if rng.registered and self.overlaps(rng, start, end):
                rng.valid = False
                self.clear(rng, start, end)

    def update_for(self, start: int, end: int, blockable: bool) -> HmmUpdate:
        return HmmUpdate(start=start, end=end, blockable=blockable)

    def mirror_pass(self, update: HmmUpdate) -> int:
        """Newest first; in non-blockable mode the first exact -EAGAIN ends the pass."""
        for _, ops in list(self.mirrors):
            if ops.sync_cpu_device_pagetables(update) == EAGAIN and not update.blockable:
                return EAGAIN
        return 0

    def invalidate_start(self, start: int, end: int, blockable: bool) -> int:
        if not self.hears():
            return 0  # the core's start with no notifier on the mm
        self.invalidate_ranges(start, end)
        return self.mirror_pass(self.update_for(start, end, blockable))

    def invalidate_end(self, start: int, end: int) -> None:
        self.invalidate_ranges(start, end)

    def release(self) -> None:
        while self.mirrors:
            _, ops = self.mirrors.pop(0)
            ops.release()
        self.released = True

    def close(self) -> None:
        self.ranges.clear()


# -- the entries -------------------------------------------------------------------------------


class ParentTree(SeedCore):
    def invalidate_start(self, start: int, end: int, blockable: bool) -> int:
        if not blockable and self.hears():
            return EAGAIN  # 6/7: HMM's start refuses at once, before touching anything
        return super().invalidate_start(start, end, blockable)


class MirrorsAtEnd(SeedCore):
    def invalidate_start(self, start: int, end: int, blockable: bool) -> int:
        return 0  # before 6/7 start only bumped a counter

    def invalidate_end(self, start: int, end: int) -> None:
        super().invalidate_end(start, end)
        self.mirror_pass(self.update_for(start, end, True))


class ShadowedRet(SeedCore):
    def mirror_pass(self, update: HmmUpdate) -> int:
        for _, ops in list(self.mirrors):
            ret = ops.sync_cpu_device_pagetables(update)
            if ret == EAGAIN and not update.blockable:
                break  # 5.2: the loop's own `ret` shadows the result, which stays 0
        return 0


class EagainIgnored(SeedCore):
    def mirror_pass(self, update: HmmUpdate) -> int:
        for _, ops in list(self.mirrors):
            ops.sync_cpu_device_pagetables(update)
        return 0


class EagainHonouredWhenBlockable(SeedCore):
    def mirror_pass(self, update: HmmUpdate) -> int:
        for _, ops in list(self.mirrors):
            if ops.sync_cpu_device_pagetables(update) == EAGAIN:
                return EAGAIN if not update.blockable else 0
        return 0


class AlwaysBlockable(SeedCore):
    def update_for(self, start: int, end: int, blockable: bool) -> HmmUpdate:
        return HmmUpdate(start=start, end=end, blockable=True)


class NeverBlockable(SeedCore):
    def update_for(self, start: int, end: int, blockable: bool) -> HmmUpdate:
        return HmmUpdate(start=start, end=end, blockable=False)


class ErrorStopsLoop(SeedCore):
    def mirror_pass(self, update: HmmUpdate) -> int:
        for _, ops in list(self.mirrors):
            ret = ops.sync_cpu_device_pagetables(update)
            if ret == EAGAIN and not update.blockable:
                return EAGAIN
            if ret not in (0, EAGAIN):
                return 0
        return 0


class ErrorIsResult(SeedCore):
    def mirror_pass(self, update: HmmUpdate) -> int:
        result = 0
        for _, ops in list(self.mirrors):
            ret = ops.sync_cpu_device_pagetables(update)
            if ret == EAGAIN and not update.blockable:
                return EAGAIN
            result = result or (ret if ret not in (0, EAGAIN) else 0)
        return result


class UpperBoundaryOverlap(SeedCore):
    def overlaps(self, rng: _Range, start: int, end: int) -> bool:
        return not (end < rng.start or start > rng.end)  # `>` where the seed has `>=`


class PartialOverlapMissed(SeedCore):
    def overlaps(self, rng: _Range, start: int, end: int) -> bool:
        return start <= rng.start and rng.end <= end  # only ranges inside the update


class EntriesNotCleared(SeedCore):
    def clear(self, rng: _Range, start: int, end: int) -> None:
        pass


class WholeRangeCleared(SeedCore):
    def clear(self, rng: _Range, start: int, end: int) -> None:
        rng.entries = [0] * len(rng.entries)  # entries outside the overlap too


class ValidAgainAtEnd(SeedCore):
    """5.2's valid (bug #16), counted by invalidations in flight: a range registered while one is
    in flight starts invalid, and the end of the last one makes every range valid again."""

    in_flight: int = 0

    def begin(self, cpu: CpuView) -> None:
        super().begin(cpu)
        self.in_flight = 0

    def snapshot(self, range_id: int, vma: int, start: int, end: int, encoding: PfnEncoding) -> int:
        result = super().snapshot(range_id, vma, start, end, encoding)
        if result == 0 and self.in_flight:
            self.ranges[range_id].valid = False
        return result

    def invalidate_start(self, start: int, end: int, blockable: bool) -> int:
        result = super().invalidate_start(start, end, blockable)
        if result == 0 and self.hears():
            self.in_flight += 1  # a failed start gets no end (END-3), so it is not counted
        return result

    def invalidate_end(self, start: int, end: int) -> None:
        if not self.hears():
            return
        super().invalidate_end(start, end)
        # As 5.2's counter, unclamped: an end whose start ran before the hmm existed unbalances it.
        self.in_flight -= 1
        if not self.in_flight:
            for rng in self.ranges.values():
                if rng.registered:
                    rng.valid = True


class NoInvalidationAtEnd(SeedCore):
    def invalidate_end(self, start: int, end: int) -> None:
        pass


class MirrorCalledTwice(SeedCore):
    def mirror_pass(self, update: HmmUpdate) -> int:
        for _, ops in list(self.mirrors)[:1]:
            ops.sync_cpu_device_pagetables(update)
        return super().mirror_pass(update)


class UnregisteredStillCalled(SeedCore):
    def unregister(self, mirror: int) -> None:
        pass


class ReleaseSkipsOps(SeedCore):
    def release(self) -> None:
        self.mirrors.clear()
        self.released = True


class ReleaseCallsTwice(SeedCore):
    def release(self) -> None:
        for _, ops in self.mirrors:
            ops.release()
        super().release()


class MirrorsCalledAfterRelease(SeedCore):
    def release(self) -> None:
        for _, ops in self.mirrors:
            ops.release()
        self.released = True  # the mirrors stay listed, and invalidations still reach them

    def invalidate_start(self, start: int, end: int, blockable: bool) -> int:
        self.invalidate_ranges(start, end)
        return self.mirror_pass(self.update_for(start, end, blockable))


class RangeDoneKeepsRange(SeedCore):
    def unlink(self, rng: _Range) -> None:
        rng.done = True  # still registered: later invalidations keep touching it


class EmptyAtVmaEndAccepted(SeedCore):
    def in_bounds(self, low: int, high: int, start: int, end: int) -> bool:
        return low <= start <= high and low <= end <= high  # `<=` where the seed has `<`


class WriteFlagLost(SeedCore):
    def encode(self, encoding: PfnEncoding, pte: Pte) -> int:
        return encoding.encode(pte) & ~encoding.flags[HmmPfnFlag.WRITE]


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    """One known-bad core: its name, the rules it must be caught against, and its origin."""

    name: str
    make: Callable[[], Candidate]
    rules: frozenset[str]
    #: The length of a shortest counterexample in the exhaustive engine's scope (recorded
    #: from ``hmm-conformance explore``; a test checks it).
    shortest: int
    origin: str


def _entry(cls: type[SeedCore], shortest: int, rules: str, origin: str) -> Entry:
    name = "".join(f"-{c.lower()}" if c.isupper() else c for c in cls.__name__).lstrip("-")
    return Entry(
        name=name,
        make=lambda: cls(name=name),
        rules=frozenset(rules.split()),
        shortest=shortest,
        origin=origin,
    )


CATALOGUE: Final = (
    _entry(
        ParentTree,
        2,
        "INV-5",
        "the 6/7 tree: every non-blockable start refused once the mm has an hmm (bug #6)",
    ),
    _entry(
        MirrorsAtEnd,
        2,
        "INV-6 END-1 RNG-3",
        "before 6/7: mirrors told at end, after pages went (bug #7)",
    ),
    _entry(
        ShadowedRet, 2, "INV-4", "5.2: a mirror's -EAGAIN swallowed by a shadowed ret (bug #13b)"
    ),
    _entry(EagainIgnored, 2, "INV-4", "mutation: -EAGAIN ignored in non-blockable mode"),
    _entry(
        EagainHonouredWhenBlockable, 3, "INV-2 INV-6", "mutation: -EAGAIN stops a blockable pass"
    ),
    _entry(AlwaysBlockable, 2, "INV-3", "mutation: blockable not passed on (always true)"),
    _entry(NeverBlockable, 2, "INV-1", "mutation: blockable not passed on (always false)"),
    _entry(ErrorStopsLoop, 3, "INV-8 INV-2 INV-6", "mutation: another error stops the pass"),
    _entry(ErrorIsResult, 2, "INV-8 INV-2", "mutation: another error becomes the result"),
    _entry(
        UpperBoundaryOverlap, 2, "RNG-5", "mutation: update.start == range.end taken as overlap"
    ),
    _entry(PartialOverlapMissed, 2, "RNG-3 END-2", "mutation: partial overlaps missed"),
    _entry(EntriesNotCleared, 2, "RNG-3 END-2", "mutation: entries in the overlap not cleared"),
    _entry(
        WholeRangeCleared, 2, "RNG-3 END-2 RNG-5", "mutation: entries outside the overlap cleared"
    ),
    _entry(
        ValidAgainAtEnd,
        3,
        "RNG-1 END-2 RNG-3 RNG-6 RNG-4",
        "5.2: valid counted by invalidations in flight, true again when the last ends (bug #16)",
    ),
    _entry(NoInvalidationAtEnd, 3, "END-2 RNG-3", "mutation: ranges not invalidated at end"),
    _entry(MirrorCalledTwice, 2, "INV-1", "mutation: a mirror called twice per start"),
    _entry(
        UnregisteredStillCalled, 3, "REG-3 REL-1", "mutation: an unregistered mirror still called"
    ),
    _entry(ReleaseSkipsOps, 2, "REL-1", "release without the release ops (before bug #1's fix)"),
    _entry(ReleaseCallsTwice, 2, "REL-1", "mutation: release ops called twice"),
    _entry(MirrorsCalledAfterRelease, 3, "REL-1", "mutation: mirrors still called after release"),
    _entry(RangeDoneKeepsRange, 2, "RNG-7", "mutation: range_done does not unregister"),
    _entry(
        EmptyAtVmaEndAccepted,
        1,
        "RNG-2",
        "mutation testing: an empty snapshot at the vma's end accepted (docs/mutation.md)",
    ),
    _entry(
        WriteFlagLost,
        1,
        "RNG-1",
        "mutation testing: the WRITE flag left out of snapshot entries (docs/mutation.md)",
    ),
)

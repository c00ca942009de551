"""The catalogue: known-bad HMM cores the suite must catch, each with its origin.

Every entry is :class:`SeedCore`, a compact core that behaves like the seed, with one method
overridden to put one bug in. The bugs are real kernel history (kernel-bug-history.md, cited
by number) or targeted mutations of the rules. An entry that names a kernel state behaves as
that state does in every sequence, before the mm has an hmm and after release included, so it
overrides whatever that state's mechanism touches. ``hmm-conformance catalogue`` runs them
all; a test in CI asserts that each is caught against one of its expected rules.
"""

from __future__ import annotations

from typing import Final

from hmm_ref import (
    PAGE_SIZE,
    HmmPfnFlag,
    HmmUpdate,
    PfnEncoding,
    Pte,
    PteKind,
    VmFault,
)

from .._known_bad import KnownBad, entry_name
from ._adapter import (
    Candidate,
    CpuView,
)
from ._blind_catalogue import BLIND_CATALOGUE
from ._seed_core import EAGAIN, SeedCore, SeedRange
from ._seed_fault import SeedFaultCore

__all__ = ["CATALOGUE", "SeedCore"]

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
    def overlaps(self, rng: SeedRange, start: int, end: int) -> bool:
        return not (end < rng.start or start > rng.end)  # `>` where the seed has `>=`


class PartialOverlapMissed(SeedCore):
    def overlaps(self, rng: SeedRange, start: int, end: int) -> bool:
        return start <= rng.start and rng.end <= end  # only ranges inside the update


class EntriesNotCleared(SeedCore):
    def clear(self, rng: SeedRange, start: int, end: int) -> None:
        pass


class WholeRangeCleared(SeedCore):
    def clear(self, rng: SeedRange, start: int, end: int) -> None:
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
    def unlink(self, rng: SeedRange) -> None:
        rng.done = True  # still registered: later invalidations keep touching it


class EmptyAtVmaEndAccepted(SeedCore):
    def in_bounds(self, low: int, high: int, start: int, end: int) -> bool:
        return low <= start <= high and low <= end <= high  # `<=` where the seed has `<`


class WriteFlagLost(SeedCore):
    def encode(self, encoding: PfnEncoding, pte: Pte) -> int:
        return encoding.encode(pte) & ~encoding.flags[HmmPfnFlag.WRITE]


# -- the faulting snapshot (FLT) ---------------------------------------------------------------


class EagainWhenSemDropped(SeedFaultCore):
    def fault_error(self, rng: SeedRange, index: int, answer: int) -> int:
        if answer & VmFault.RETRY:
            return EAGAIN  # what the seed's comment promises; its code returns -EBUSY
        return super().fault_error(rng, index, answer)


class NonBlockingMayWait(SeedFaultCore):
    def fault_flags(self, block: bool) -> tuple[bool, bool]:
        return True, False  # FAULT_FLAG_RETRY_NOWAIT never passed


class RetryNeverAllowed(SeedFaultCore):
    def fault_flags(self, block: bool) -> tuple[bool, bool]:
        return False, not block  # the 5.3 fix taken for every call, non-blocking ones too


class ErrorLeavesRangeRegistered(SeedFaultCore):
    def give_up(self, rng: SeedRange, index: int) -> None:
        super().give_up(rng, index)
        rng.registered = True  # the error path without its hmm_vma_range_done


class ErrorMarkKept(SeedFaultCore):
    def give_up(self, rng: SeedRange, index: int) -> None:
        kept = rng.entries[index]
        super().give_up(rng, index)
        rng.entries[index] = kept  # the ERROR mark the comments promise, not NONE


class WholeRangeClearedOnError(SeedFaultCore):
    def give_up(self, rng: SeedRange, index: int) -> None:
        super().give_up(rng, 0)  # NONE from the first page, not from the failing one


class WriteRequestIgnored(SeedFaultCore):
    def need(self, encoding: PfnEncoding, request: int, pte: Pte) -> tuple[bool, bool]:
        fault, _ = super().need(encoding, request & ~encoding.flags[HmmPfnFlag.WRITE], pte)
        return fault, False


class NoWalkAfterFault(SeedFaultCore):
    def fault_page(self, rng: SeedRange, index: int, block: bool) -> int:
        assert self.cpu is not None
        before = self.cpu.pte(rng.start + index * PAGE_SIZE)
        step = super().fault_page(rng, index, block)
        if step == 0 and before.kind is not PteKind.MIGRATION:
            rng.entries[index] = self.encode(rng.encoding, before)  # the entry before the fault
            return 1
        return step


def _entry(
    cls: type[SeedCore], shortest: int, rules: str, origin: str, **longer: int
) -> KnownBad[Candidate]:
    """An entry; ``longer`` gives the rules whose own shortest is longer (``END_1=3``)."""
    name = entry_name(cls)
    return KnownBad(
        name=name,
        make=lambda: cls(name=name),
        rules=frozenset(rules.split()),
        shortest=shortest,
        origin=origin,
        shortest_by_rule=tuple((rule.replace("_", "-"), n) for rule, n in longer.items()),
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
        END_1=3,
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
    _entry(
        EagainWhenSemDropped,
        1,
        "FLT-4",
        "the seed's comment: -EAGAIN when mmap_sem was dropped, where its code and 5.3 give "
        "-EBUSY (bug #15, kernel-semantics 3.8 rule 7)",
    ),
    _entry(
        NonBlockingMayWait,
        1,
        "FLT-5",
        "mutation: a non-blocking fault without FAULT_FLAG_RETRY_NOWAIT (the handler may sleep)",
    ),
    _entry(
        RetryNeverAllowed,
        1,
        "FLT-5",
        "bug #15's 2019 fix (no retry when blocking) taken for non-blocking faults too",
    ),
    _entry(
        ErrorLeavesRangeRegistered,
        1,
        "FLT-4",
        "mutation: the error path without its range_done (a range left registered)",
    ),
    _entry(
        ErrorMarkKept,
        1,
        "FLT-4",
        "the comments' promise: values[ERROR] left on the failing page (kernel-semantics 3.8 "
        "rule 6), where the code clears it to NONE",
    ),
    _entry(
        WholeRangeClearedOnError,
        1,
        "FLT-4",
        "mutation: the error path clears every entry, not those from the failing page",
    ),
    _entry(
        WriteRequestIgnored, 1, "FLT-2 FLT-3", "mutation: flags[WRITE] in a request not faulted"
    ),
    _entry(NoWalkAfterFault, 1, "FLT-3", "mutation: the entry read before its page was faulted"),
    *BLIND_CATALOGUE,
)

"""A compact core that behaves like the seed, the base of the catalogue's known-bad cores.

:class:`SeedCore` keeps the seed's behaviour (``mm/hmm.c`` of 4.20, as the reference states it)
in a few dozen lines, with each decision the kernel's history changed in a method of its own,
so that a catalogue entry (``conformance/core/_catalogue.py``) overrides one method to put one
bug in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from hmm_ref import (
    PAGE_SIZE,
    Errno,
    HmmMirrorOps,
    HmmPfnValue,
    HmmUpdate,
    PfnEncoding,
    Pte,
    PteKind,
)

from ._adapter import (
    PROTOCOL_VERSION,
    CandidateRejected,
    Capability,
    CpuView,
    Handshake,
    RangeView,
)

__all__ = ["EAGAIN", "SeedCore", "SeedRange"]

EAGAIN: Final = -Errno.EAGAIN


@dataclass(slots=True)
class SeedRange:
    """A snapshot as :class:`SeedCore` keeps it."""

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
    ranges: dict[int, SeedRange] = field(default_factory=dict)
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
        rng = self.ranges[range_id] = SeedRange(start, end, encoding, [0] * npages)
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

    def unlink(self, rng: SeedRange) -> None:
        rng.registered, rng.done = False, True

    # -- invalidation, one overridable piece at a time -------------------------------------

    def overlaps(self, rng: SeedRange, start: int, end: int) -> bool:
        """The seed's test: skipped only if the update ends before or starts at/after it."""
        return not (end < rng.start or start >= rng.end)

    def clear(self, rng: SeedRange, start: int, end: int) -> None:
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

"""The blind set's base core: a conforming HMM core written apart from the suite.

The core side's blind set (docs/catalogue.md) was written by a session that had read only the
kernel's semantics and bug history, docs/spec.md, the adapter's documentation and the example
core: not the generators, not the oracle. It measures the suite against bugs its authors did
not design it around. Each faulty core is :class:`BlindCore` with one hook changed; they are in
``_blind_mirrors.py`` (registration, starts, ends) and ``_blind_ranges.py`` (snapshots, ranges,
release), and ``_blind_catalogue.py`` lists them. The set was measured over five seeds at the
default budget before it joined the catalogue; ``python3 tasks.py bench`` measures it again.

The core follows ``mm/hmm.c`` after "mm/hmm: proper support for blockable mmu_notifier":

- mirrors live on one list, the newest at the head, and every start calls them in list order;
- ranges live on one list of snapshots in progress, the newest at the head;
- a start runs the range pass and then the mirror pass; an end runs the range pass only;
- the range pass uses the seed's overlap test (a range is skipped only when
  ``update.end < range.start`` or ``update.start >= range.end``) and writes raw 0 over the
  overlap;
- the mirror pass stops at the first ``-EAGAIN`` of a non-blockable start and returns it; every
  other answer is ignored;
- release unlinks the mirrors one by one from the head, calling each release op, and leaves the
  ranges as they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hmm_ref import (
    PAGE_SIZE,
    Errno,
    HmmMirrorOps,
    HmmPfnValue,
    HmmUpdate,
    HmmUpdateEvent,
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

EAGAIN = -int(Errno.EAGAIN)
EINVAL = -int(Errno.EINVAL)
EPERM = -int(Errno.EPERM)


@dataclass(eq=False)
class Mirror:
    """One ``struct hmm_mirror`` as the core keeps it."""

    ident: int
    ops: HmmMirrorOps | None
    linked: bool = False


@dataclass(eq=False)
class Range:
    """One ``struct hmm_range``: bounds, the driver's encoding, entries and state."""

    ident: int
    start: int
    end: int
    encoding: PfnEncoding
    entries: list[int]
    #: True from a successful snapshot until range_done (what observe reports).
    registered: bool = False
    valid: bool = False
    #: The last thing done to the range was a successful range_done.
    done: bool = False
    #: On the core's list of snapshots in progress (what invalidations walk).
    on_list: bool = False
    #: Extra per-range notes that a faulty core may want.
    notes: dict[str, int] = field(default_factory=dict)


class BlindCore:
    """The conforming core. Subclasses change one hook each."""

    name = "blind-base"

    def __init__(self) -> None:
        self.cpu: CpuView | None = None
        self.mirrors: list[Mirror] = []  # hmm->mirrors, newest first
        self.known: dict[int, Mirror] = {}  # every mirror id seen in this case
        self.live: list[Range] = []  # hmm->ranges, newest first
        self.ranges: dict[int, Range] = {}  # every range id snapshotted in this case
        self.windows = 0  # open invalidation windows
        self.hmm_exists = False  # the per-mm state was created (register or snapshot)
        self.released = False
        self.on_begin()

    # ----------------------------------------------------------------- protocol plumbing

    def handshake(self) -> Handshake:
        return Handshake(
            protocol_version=PROTOCOL_VERSION,
            name=self.name,
            version="1.0",
            capabilities=frozenset({Capability.RELEASE, Capability.OBSERVE_IN_CALLBACK}),
        )

    def begin(self, cpu: CpuView) -> None:
        self.cpu = cpu
        self.mirrors = []
        self.known = {}
        self.live = []
        self.ranges = {}
        self.windows = 0
        self.hmm_exists = False
        self.released = False
        self.on_begin()

    def on_begin(self) -> None:
        """Hook: reset a subclass's own per-case state."""

    def close(self) -> None:
        self.mirrors = []
        self.known = {}
        self.live = []
        self.ranges = {}

    # ----------------------------------------------------------------- mirrors

    def register(self, mirror: int, ops: HmmMirrorOps | None) -> int:
        if not self.ops_acceptable(ops):
            return EINVAL
        self.create_hmm()
        entry = Mirror(mirror, ops)
        self.known[mirror] = entry
        self.link_mirror(entry)
        return 0

    def ops_acceptable(self, ops: HmmMirrorOps | None) -> bool:
        """Hook: the argument check at the top of hmm_mirror_register."""
        return ops is not None

    def create_hmm(self) -> None:
        """Hook: hmm_register, the lazy creation of the per-mm state."""
        self.hmm_exists = True

    def link_mirror(self, entry: Mirror) -> None:
        """Hook: list_add at the head of hmm->mirrors."""
        self.mirrors.insert(0, entry)
        entry.linked = True

    def find_mirror(self, mirror: int) -> int | None:
        """Hook: the position of a linked mirror on the list, or None."""
        for index, entry in enumerate(self.mirrors):
            if entry.ident == mirror:
                return index
        return None

    def unregister(self, mirror: int) -> None:
        index = self.find_mirror(mirror)
        if index is None:
            return  # never registered, refused, already unregistered, or released
        self.unlink_mirror(index)

    def unlink_mirror(self, index: int) -> None:
        """Hook: list_del_init of the mirror at ``index``."""
        entry = self.mirrors.pop(index)
        entry.linked = False

    # ----------------------------------------------------------------- snapshots

    def snapshot(self, range_id: int, vma: int, start: int, end: int, encoding: PfnEncoding) -> int:
        assert self.cpu is not None
        area = self.cpu.vmas[vma]
        npages = max(0, (end - start) // PAGE_SIZE)
        rng = Range(range_id, start, end, encoding, [0] * npages)
        self.ranges[range_id] = rng
        if not self.bounds_ok(area.start, area.end, start, end):
            return EINVAL
        self.create_hmm()
        if not self.may_snapshot():
            return EINVAL
        error = self.vma_error(rng, special=area.special, readable=area.read)
        if error:
            return error
        rng.valid = True
        rng.registered = True
        rng.done = False
        self.link_range(rng)
        self.walk(rng)
        return 0

    def bounds_ok(self, vm_start: int, vm_end: int, start: int, end: int) -> bool:
        """Hook: the two bounds tests of hmm_vma_get_pfns."""
        if start < vm_start or start >= vm_end:
            return False
        return not (end < vm_start or end > vm_end)

    def vma_error(self, rng: Range, *, special: bool, readable: bool) -> int:
        """Hook: the special-vma test, then the read-permission test. 0 when neither applies."""
        npages = len(rng.entries)
        if special:
            rng.entries = [rng.encoding.values[HmmPfnValue.SPECIAL]] * npages
            return EINVAL
        if not readable:
            rng.entries = [rng.encoding.values[HmmPfnValue.NONE]] * npages
            return EPERM
        return 0

    def may_snapshot(self) -> bool:
        """Hook: the "caller must have registered a mirror" test, which never fails in the seed."""
        return True

    def link_range(self, rng: Range) -> None:
        """Hook: list_add of the range at the head of hmm->ranges."""
        self.live.insert(0, rng)
        rng.on_list = True

    def walk(self, rng: Range) -> None:
        """Hook: the page walk, encoding each entry and stopping at a poisoned one."""
        assert self.cpu is not None
        for index in range(len(rng.entries)):
            pte = self.cpu.pte(rng.start + index * PAGE_SIZE)
            rng.entries[index] = self.encode(rng.encoding, pte)
            if pte.kind is PteKind.POISON:
                break

    def encode(self, encoding: PfnEncoding, pte: Pte) -> int:
        """Hook: the entry for one CPU page-table entry."""
        return encoding.encode(pte)

    def observe(self, range_id: int) -> RangeView:
        rng = self.ranges.get(range_id)
        if rng is None:
            raise CandidateRejected(f"no range {range_id} in this case")
        return RangeView(registered=rng.registered, valid=rng.valid, entries=tuple(rng.entries))

    def range_done(self, range_id: int) -> bool:
        rng = self.ranges.get(range_id)
        self.check_done(rng)
        assert rng is not None
        self.unlink_range(rng)
        rng.registered = False
        rng.done = True
        return self.report_valid(rng)

    def check_done(self, rng: Range | None) -> None:
        """Hook: refuse the misuses of range_done (RNG-9) before anything changes."""
        if rng is None:
            raise CandidateRejected("range_done on a range this case never snapshotted")
        if rng.end <= rng.start:
            raise CandidateRejected(f"range_done on the empty range r{rng.ident}")
        if rng.done:
            raise CandidateRejected(f"range_done twice on r{rng.ident}")
        if not rng.registered:
            raise CandidateRejected(f"range_done on r{rng.ident}, whose snapshot failed")

    def unlink_range(self, rng: Range) -> None:
        """Hook: list_del of the range from hmm->ranges."""
        if rng in self.live:
            self.live.remove(rng)
        rng.on_list = False

    def report_valid(self, rng: Range) -> bool:
        """Hook: what range_done returns."""
        return rng.valid

    # ----------------------------------------------------------------- invalidation

    def invalidate_start(self, start: int, end: int, blockable: bool) -> int:
        update = self.make_update(start, end, blockable)
        ret = self.start_pass(start, end, update)
        if blockable or ret == 0:
            self.windows += 1
            self.window_opened(start, end)
        return ret

    def invalidate_end(self, start: int, end: int) -> None:
        self.windows = max(0, self.windows - 1)
        self.end_pass(start, end)

    def window_opened(self, start: int, end: int) -> None:
        """Hook: a start succeeded (or was blockable); a window over [start, end) is open."""

    def make_update(self, start: int, end: int, blockable: bool) -> HmmUpdate:
        """Hook: build the struct hmm_update of a start."""
        return HmmUpdate(start=start, end=end, event=HmmUpdateEvent.INVALIDATE, blockable=blockable)

    def start_pass(self, start: int, end: int, update: HmmUpdate) -> int:
        """Hook: hmm_invalidate_range(device=true): ranges first, then mirrors."""
        self.range_pass(start, end)
        return self.mirror_pass(update)

    def end_pass(self, start: int, end: int) -> None:
        """Hook: hmm_invalidate_range(device=false): the range pass only."""
        self.range_pass(start, end)

    def range_pass(self, start: int, end: int) -> None:
        """Hook: walk hmm->ranges and invalidate each one that overlaps."""
        for rng in list(self.live):
            if self.overlaps(rng, start, end):
                self.invalidate_range(rng, start, end)

    def overlaps(self, rng: Range, start: int, end: int) -> bool:
        """Hook: the seed's overlap test (a false positive when end == range.start)."""
        return not (end < rng.start or start >= rng.end)

    def invalidate_range(self, rng: Range, start: int, end: int) -> None:
        """Hook: mark the range invalid and clear the overlap's entries."""
        rng.valid = False
        first = max(start, rng.start)
        last = min(end, rng.end)
        index = (first - rng.start) // PAGE_SIZE
        count = max(0, (last - first) // PAGE_SIZE)
        for slot in range(index, min(index + count, len(rng.entries))):
            rng.entries[slot] = self.cleared_entry(rng, rng.entries[slot])

    def cleared_entry(self, rng: Range, old: int) -> int:
        """Hook: what an invalidated entry becomes (the seed writes raw 0)."""
        del rng, old
        return 0

    def call_order(self) -> list[Mirror]:
        """Hook: the mirrors a start walks, in the order it walks them."""
        return list(self.mirrors)

    def mirror_pass(self, update: HmmUpdate) -> int:
        """Hook: call each mirror; fail only on -EAGAIN from a non-blockable start."""
        for entry in self.call_order():
            ret = self.call_mirror(entry, update)
            if self.stops(update, ret):
                return EAGAIN
        return 0

    def call_mirror(self, entry: Mirror, update: HmmUpdate) -> int:
        """Hook: one sync_cpu_device_pagetables call."""
        if entry.ops is None:
            return 0
        return entry.ops.sync_cpu_device_pagetables(update)

    def stops(self, update: HmmUpdate, ret: int) -> bool:
        """Hook: the early-return test of the mirror loop."""
        return not update.blockable and ret == EAGAIN

    # ----------------------------------------------------------------- release

    def release(self) -> None:
        self.released = True
        self.release_pass()

    def release_pass(self) -> None:
        """Hook: hmm_release: take the head, unlink it, call its release op, repeat."""
        while self.mirrors:
            entry = self.mirrors.pop(0)
            entry.linked = False
            if entry.ops is not None:
                entry.ops.release()

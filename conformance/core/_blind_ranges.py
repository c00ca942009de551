"""The blind set's faulty cores of snapshots, ranges and release: each is :class:`BlindCore`
with one hook changed (``_blind_base.py`` says how the set was written)."""

from __future__ import annotations

from hmm_ref import PAGE_SIZE, HmmPfnValue, PfnEncoding, Pte, PteKind

from ._blind_base import BlindCore, Range

# ===================================================================== RNG: ranges


class ClearIndexFromUpdateStart(BlindCore):
    """The first entry to clear is computed from the update's start, not the range's."""

    name = "blind-clear-index-from-update-start"

    def invalidate_range(self, rng: Range, start: int, end: int) -> None:
        rng.valid = False
        first = max(start, rng.start)
        last = min(end, rng.end)
        index = (first - start) // PAGE_SIZE
        count = max(0, (last - first) // PAGE_SIZE)
        for slot in range(index, min(index + count, len(rng.entries))):
            rng.entries[slot] = self.cleared_entry(rng, rng.entries[slot])


class OverlapEndpointTest(BlindCore):
    """Overlap is "an endpoint of the update lies in the range": misses an update that spans it."""

    name = "blind-overlap-endpoint-test"

    def overlaps(self, rng: Range, start: int, end: int) -> bool:
        return rng.start <= start < rng.end or rng.start < end <= rng.end


class RangePassStopsAtFirst(BlindCore):
    """The range pass stops at the first overlapping range ("a page is in one snapshot")."""

    name = "blind-range-pass-stops-at-first"

    def range_pass(self, start: int, end: int) -> None:
        for rng in list(self.live):
            if self.overlaps(rng, start, end):
                self.invalidate_range(rng, start, end)
                return


class SkipsAlreadyInvalid(BlindCore):
    """The range pass skips ranges already invalid, so later overlaps keep their entries."""

    name = "blind-skips-already-invalid"

    def range_pass(self, start: int, end: int) -> None:
        for rng in list(self.live):
            if rng.valid and self.overlaps(rng, start, end):
                self.invalidate_range(rng, start, end)


class InvalidateWritesNoneValue(BlindCore):
    """Invalidated entries are set to the driver's values[NONE] instead of raw 0."""

    name = "blind-invalidate-writes-none-value"

    def cleared_entry(self, rng: Range, old: int) -> int:
        del old
        return rng.encoding.values[HmmPfnValue.NONE]


class DevicePrivateLosesWrite(BlindCore):
    """A device-private page is encoded with DEVICE_PRIVATE but without the WRITE flag."""

    name = "blind-device-private-loses-write"

    def encode(self, encoding: PfnEncoding, pte: Pte) -> int:
        if pte.kind is PteKind.DEVICE_PRIVATE:
            return encoding.encode_page(pte.pfn, write=False, device_private=True)
        return super().encode(encoding, pte)


class EncodeNoU64Truncation(BlindCore):
    """A page entry is built as ``pfn << pfn_shift | flags`` without truncation to 64 bits."""

    name = "blind-encode-no-u64-truncation"

    def encode(self, encoding: PfnEncoding, pte: Pte) -> int:
        if pte.kind in (PteKind.PRESENT, PteKind.DEVICE_PRIVATE):
            entry = (pte.pfn << encoding.pfn_shift) | encoding.flags[0]
            if pte.write:
                entry |= encoding.flags[1]
            if pte.kind is PteKind.DEVICE_PRIVATE:
                entry |= encoding.flags[2]
            return entry
        return super().encode(encoding, pte)


class MigrationAsError(BlindCore):
    """A migration entry is encoded as values[ERROR], like a bad entry (cf. bug #22)."""

    name = "blind-migration-as-error"

    def encode(self, encoding: PfnEncoding, pte: Pte) -> int:
        if pte.kind is PteKind.MIGRATION:
            return encoding.values[HmmPfnValue.ERROR]
        return super().encode(encoding, pte)


class SnapshotToVmaEndRejected(BlindCore):
    """The end bound is tested with ``>=``: a snapshot that ends at vm_end gets -EINVAL."""

    name = "blind-snapshot-to-vma-end-rejected"

    def bounds_ok(self, vm_start: int, vm_end: int, start: int, end: int) -> bool:
        if start < vm_start or start >= vm_end:
            return False
        return not (end < vm_start or end >= vm_end)


class PermBeforeSpecial(BlindCore):
    """The read-permission test runs before the special-vma test."""

    name = "blind-perm-before-special"

    def vma_error(self, rng: Range, *, special: bool, readable: bool) -> int:
        if not readable:
            return super().vma_error(rng, special=False, readable=False)
        return super().vma_error(rng, special=special, readable=True)


class SnapshotNeedsMirror(BlindCore):
    """The "caller must have registered a mirror" comment is read as "some mirror is linked"."""

    name = "blind-snapshot-needs-mirror"

    def may_snapshot(self) -> bool:
        return bool(self.mirrors)


class FailedSnapshotStaysListed(BlindCore):
    """The range is put on the list before the vma tests and a failed snapshot leaves it there."""

    name = "blind-failed-snapshot-stays-listed"

    def vma_error(self, rng: Range, *, special: bool, readable: bool) -> int:
        BlindCore.link_range(self, rng)  # "register early so no invalidation is missed"
        return super().vma_error(rng, special=special, readable=readable)

    def link_range(self, rng: Range) -> None:
        if not rng.on_list:
            super().link_range(rng)


class RangeDoneUnlinksByBounds(BlindCore):
    """range_done unlinks the first listed range with the same bounds, not the range itself."""

    name = "blind-range-done-unlinks-by-bounds"

    def unlink_range(self, rng: Range) -> None:
        for other in self.live:
            if (other.start, other.end) == (rng.start, rng.end):
                self.live.remove(other)
                other.on_list = False
                return


class RangeDoneTwiceQuiet(BlindCore):
    """A second range_done is accepted (list_del_init makes the unlink harmless)."""

    name = "blind-range-done-twice-quiet"

    def check_done(self, rng: Range | None) -> None:
        if rng is not None and rng.done and rng.end > rng.start:
            return
        super().check_done(rng)


# ===================================================================== REL: release


class ReleaseKeepsMirrorsLinked(BlindCore):
    """Release calls every release op but leaves the mirrors on the list."""

    name = "blind-release-keeps-mirrors-linked"

    def release_pass(self) -> None:
        for entry in list(self.mirrors):
            if entry.ops is not None:
                entry.ops.release()


class ReleaseUnlinksWhileIterating(BlindCore):
    """Release removes each mirror from the list it is iterating, skipping every other one."""

    name = "blind-release-unlinks-while-iterating"

    def release_pass(self) -> None:
        for entry in self.mirrors:
            self.mirrors.remove(entry)
            entry.linked = False
            if entry.ops is not None:
                entry.ops.release()


class ReleaseWalksRegistry(BlindCore):
    """Release walks every mirror ever registered, unregistered ones included."""

    name = "blind-release-walks-registry"

    def release_pass(self) -> None:
        for entry in list(self.known.values()):
            entry.linked = False
            if entry.ops is not None:
                entry.ops.release()
        self.mirrors = []

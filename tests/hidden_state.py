"""Cores with hidden state: each keeps something the model does not, so that two sequences the
model cannot tell apart leave the core in different states, and only one of them fails.

They are the exhaustive engine's own test of merging: a search that merged on the model's state
alone continued only the first sequence to reach each state, and lost these cores' shortest
counterexamples. Each is :class:`SeedCore` with one mechanism changed, the way a real bug would
be, and each has a shortest counterexample of three operations in the explorer's scope.
"""

from __future__ import annotations

from typing import Final

from conformance import CpuView
from conformance.core._seed_core import EAGAIN, SeedCore
from hmm_ref import Errno, HmmMirrorOps, HmmUpdate, PfnEncoding

__all__ = ["HIDDEN_STATE", "SkipsBusyMirror", "SnapshotHmmDropsMirror", "StaleMirrorError"]


class SnapshotHmmDropsMirror(SeedCore):
    """Remembers whether a snapshot came before the first register: the first mirror
    registered on an hmm a snapshot made is never linked into its list, so no start calls it
    (INV-2, INV-6). Register then snapshot, the order the model merges the other into, is fine."""

    made_by_snapshot: bool = False

    def begin(self, cpu: CpuView) -> None:
        super().begin(cpu)
        self.made_by_snapshot = False

    def snapshot(self, range_id: int, vma: int, start: int, end: int, encoding: PfnEncoding) -> int:
        had_hmm = self.hmm
        result = super().snapshot(range_id, vma, start, end, encoding)
        self.made_by_snapshot = self.made_by_snapshot or (self.hmm and not had_hmm)
        return result

    def register(self, mirror: int, ops: HmmMirrorOps | None) -> int:
        if ops is not None and self.made_by_snapshot and not self.mirrors:
            self.made_by_snapshot = False
            return 0  # answered as if linked, and never linked
        return super().register(mirror, ops)


class SkipsBusyMirror(SeedCore):
    """Remembers a mirror that answered -EAGAIN to a blockable start (where the answer means
    nothing, INV-2) as busy, and skips it in the next pass (INV-2, INV-6). The model sees that
    answer leave the state an answer of 0 does."""

    busy: set[int]

    def begin(self, cpu: CpuView) -> None:
        super().begin(cpu)
        self.busy = set()

    def mirror_pass(self, update: HmmUpdate) -> int:
        skipped, self.busy = self.busy, set()
        for mirror, ops in list(self.mirrors):
            if mirror in skipped:
                continue
            answer = ops.sync_cpu_device_pagetables(update)
            if answer == EAGAIN and not update.blockable:
                return EAGAIN
            if answer == EAGAIN:
                self.busy.add(mirror)
        return 0


class StaleMirrorError(SeedCore):
    """Keeps a mirror's error (not -EAGAIN) in the hmm, as a shadowed ``ret`` might, and
    returns it from the next start instead of 0 (INV-2, INV-5). The model sees a blockable
    start answered -ENOMEM leave the state an answer of 0 does."""

    kept: int = 0

    def begin(self, cpu: CpuView) -> None:
        super().begin(cpu)
        self.kept = 0

    def mirror_pass(self, update: HmmUpdate) -> int:
        result, self.kept = self.kept, 0
        for _, ops in list(self.mirrors):
            answer = ops.sync_cpu_device_pagetables(update)
            if answer == EAGAIN and not update.blockable:
                return EAGAIN
            if answer not in (0, EAGAIN):
                self.kept = answer
        return result if result != -Errno.EAGAIN else 0


#: Each core, with the rules its shortest case breaks.
HIDDEN_STATE: Final = (
    (SnapshotHmmDropsMirror, frozenset({"INV-2", "INV-6"})),
    (SkipsBusyMirror, frozenset({"INV-2", "INV-6"})),
    (StaleMirrorError, frozenset({"INV-2", "INV-5"})),
)

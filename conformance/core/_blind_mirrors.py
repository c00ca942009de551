"""The blind set's faulty cores of registration, starts and ends: each is :class:`BlindCore`
with one hook changed (``_blind_base.py`` says how the set was written)."""

from __future__ import annotations

import dataclasses

from hmm_ref import HmmMirrorOps, HmmUpdate

from ._blind_base import EAGAIN, BlindCore, Mirror, Range

# ===================================================================== REG: registration


class UnregisterUnknownPopsLast(BlindCore):
    """The lookup returns -1 for "not found", C style, and unregister only checks the list."""

    name = "blind-unregister-unknown-pops-last"

    def unregister(self, mirror: int) -> None:
        found = self.find_mirror(mirror)
        index = -1 if found is None else found
        if self.mirrors:  # "nothing to unlink on an empty list"
            self.unlink_mirror(index)  # -1: the tail, i.e. the oldest mirror


class RegisterOpsCheckOnCreate(BlindCore):
    """The NULL-ops test moved into the path that allocates the per-mm state."""

    name = "blind-register-ops-check-on-create"

    def ops_acceptable(self, ops: HmmMirrorOps | None) -> bool:
        # Checked only when the hmm is about to be created; later registers skip it, and the
        # mirror pass quietly steps over a mirror without ops.
        return ops is not None or self.hmm_exists


class StaleCallListOnRegister(BlindCore):
    """The mirror pass walks a cached copy of the list that only unregister refreshes."""

    name = "blind-stale-call-list-on-register"

    def on_begin(self) -> None:
        self._cached: list[Mirror] | None = None

    def call_order(self) -> list[Mirror]:
        if self._cached is None:
            self._cached = list(self.mirrors)
        return list(self._cached)

    def unlink_mirror(self, index: int) -> None:
        super().unlink_mirror(index)
        self._cached = None


class UnregisterDeferredInWindow(BlindCore):
    """While a window is open, unregister only queues the unlink for the last end."""

    name = "blind-unregister-deferred-in-window"

    def on_begin(self) -> None:
        self._deferred: list[Mirror] = []

    def unlink_mirror(self, index: int) -> None:
        if self.windows > 0:  # "do not touch the list while an invalidation is in flight"
            entry = self.mirrors[index]
            if entry not in self._deferred:
                self._deferred.append(entry)
            return
        super().unlink_mirror(index)

    def end_pass(self, start: int, end: int) -> None:
        super().end_pass(start, end)
        if self.windows == 0:
            for entry in self._deferred:
                if entry in self.mirrors:
                    self.mirrors.remove(entry)
                    entry.linked = False
            self._deferred = []


class RegisterRecreatesHmm(BlindCore):
    """The first register sets up a fresh hmm, dropping the one a snapshot created earlier."""

    name = "blind-register-recreates-hmm"

    def register(self, mirror: int, ops: HmmMirrorOps | None) -> int:
        if ops is not None and not self.mirrors:
            for rng in self.live:  # the old hmm, and its range list, are forgotten
                rng.on_list = False
            self.live = []
        return super().register(mirror, ops)


# ===================================================================== INV: the start


class EagainLastAnswerWins(BlindCore):
    """The loop goes on after -EAGAIN but the result is decided by the last mirror's answer."""

    name = "blind-eagain-last-answer-wins"

    def mirror_pass(self, update: HmmUpdate) -> int:
        ret = 0
        for entry in self.call_order():
            ret = self.call_mirror(entry, update)
        return EAGAIN if not update.blockable and ret == EAGAIN else 0


class EagainIgnoresBlockable(BlindCore):
    """The early return tests ``ret == -EAGAIN`` without ``!update->blockable``."""

    name = "blind-eagain-ignores-blockable"

    def stops(self, update: HmmUpdate, ret: int) -> bool:
        return ret == EAGAIN


class NonblockErrorReturned(BlindCore):
    """Non-blockable: any negative answer is returned as the result (``if (ret < 0) return``)."""

    name = "blind-nonblock-error-returned"

    def mirror_pass(self, update: HmmUpdate) -> int:
        for entry in self.call_order():
            ret = self.call_mirror(entry, update)
            if not update.blockable and ret < 0:
                return ret
        return 0


class HardErrorBreaksLoop(BlindCore):
    """A hard error (-ENOMEM, -EIO) from a mirror ends the loop in either mode; result 0."""

    name = "blind-hard-error-breaks-loop"

    def mirror_pass(self, update: HmmUpdate) -> int:
        for entry in self.call_order():
            ret = self.call_mirror(entry, update)
            if self.stops(update, ret):
                return EAGAIN
            if ret < 0 and ret != EAGAIN:
                break  # "the device is gone, nothing more to do"
        return 0


class CachedUpdateBlockable(BlindCore):
    """A cached hmm_update is reused; start refreshes start and end but not ``blockable``."""

    name = "blind-cached-update-blockable"

    def on_begin(self) -> None:
        self._update: HmmUpdate | None = None

    def make_update(self, start: int, end: int, blockable: bool) -> HmmUpdate:
        if self._update is None:
            self._update = super().make_update(start, end, blockable)
        else:
            self._update = dataclasses.replace(self._update, start=start, end=end)
        return self._update


class EagainRetriesMirror(BlindCore):
    """A non-blockable -EAGAIN is retried once on the same mirror ("maybe the lock is free")."""

    name = "blind-eagain-retries-mirror"

    def call_mirror(self, entry: Mirror, update: HmmUpdate) -> int:
        ret = super().call_mirror(entry, update)
        if not update.blockable and ret == EAGAIN:
            ret = super().call_mirror(entry, update)
        return ret


class UpdateClippedToVma(BlindCore):
    """The mirrors' update is clipped to the vma that contains its start."""

    name = "blind-update-clipped-to-vma"

    def make_update(self, start: int, end: int, blockable: bool) -> HmmUpdate:
        assert self.cpu is not None
        for area in self.cpu.vmas:
            if area.start <= start < area.end:
                end = min(end, area.end)
                break
        return super().make_update(start, end, blockable)


class RangesAfterMirrors(BlindCore):
    """The start calls the mirrors first and invalidates the ranges afterwards (pre-6/7 order)."""

    name = "blind-ranges-after-mirrors"

    def start_pass(self, start: int, end: int, update: HmmUpdate) -> int:
        ret = self.mirror_pass(update)
        self.range_pass(start, end)
        return ret


class NonblockFailSkipsRanges(BlindCore):
    """Non-blockable: mirrors first, and a failed start returns before the range pass."""

    name = "blind-nonblock-fail-skips-ranges"

    def start_pass(self, start: int, end: int, update: HmmUpdate) -> int:
        if update.blockable:
            return super().start_pass(start, end, update)
        ret = self.mirror_pass(update)
        if ret == EAGAIN:
            return ret  # "the caller will retry; leave the snapshots alone"
        self.range_pass(start, end)
        return ret


class PassGuardLeaks(BlindCore):
    """A re-entrancy flag set by the mirror pass is not cleared on the -EAGAIN early return."""

    name = "blind-pass-guard-leaks"

    def on_begin(self) -> None:
        self._in_pass = False

    def mirror_pass(self, update: HmmUpdate) -> int:
        if self._in_pass:
            return 0  # "nested call: the outer pass covers this update"
        self._in_pass = True
        for entry in self.call_order():
            ret = self.call_mirror(entry, update)
            if self.stops(update, ret):
                return EAGAIN  # the flag stays set
        self._in_pass = False
        return 0


class NonblockFailsOnLiveRange(BlindCore):
    """Non-blockable: -EAGAIN whenever a snapshot in progress overlaps the update."""

    name = "blind-nonblock-fails-on-live-range"

    def start_pass(self, start: int, end: int, update: HmmUpdate) -> int:
        busy = any(self.overlaps(rng, start, end) for rng in self.live)
        ret = super().start_pass(start, end, update)
        if not update.blockable and busy:
            return EAGAIN  # "let the fault finish; the reaper will come back"
        return ret


class StickyEagainResult(BlindCore):
    """The non-blockable result is kept in a field that is never reset after an -EAGAIN."""

    name = "blind-sticky-eagain-result"

    def on_begin(self) -> None:
        self._ret = 0

    def mirror_pass(self, update: HmmUpdate) -> int:
        for entry in self.call_order():
            ret = self.call_mirror(entry, update)
            if self.stops(update, ret):
                self._ret = EAGAIN
                return self._ret
        return 0 if update.blockable else self._ret


# ===================================================================== END: the end


class EndRetriesFailedMirrors(BlindCore):
    """Mirrors that answered a hard error at start are called again, blockable, at end."""

    name = "blind-end-retries-failed-mirrors"

    def on_begin(self) -> None:
        self._retry: list[Mirror] = []

    def call_mirror(self, entry: Mirror, update: HmmUpdate) -> int:
        ret = super().call_mirror(entry, update)
        if ret not in (0, EAGAIN) and entry not in self._retry:
            self._retry.append(entry)
        return ret

    def end_pass(self, start: int, end: int) -> None:
        super().end_pass(start, end)
        retry, self._retry = self._retry, []
        update = self.make_update(start, end, True)
        for entry in retry:
            if entry.linked:
                BlindCore.call_mirror(self, entry, update)


class EndOnlyRangesSeenAtStart(BlindCore):
    """End revisits only the ranges its start saw, missing snapshots taken inside the window."""

    name = "blind-end-only-ranges-seen-at-start"

    def on_begin(self) -> None:
        self._seen: dict[tuple[int, int], list[list[Range]]] = {}

    def window_opened(self, start: int, end: int) -> None:
        touched = [rng for rng in self.live if self.overlaps(rng, start, end)]
        self._seen.setdefault((start, end), []).append(touched)

    def end_pass(self, start: int, end: int) -> None:
        stack = self._seen.get((start, end))
        touched = stack.pop() if stack else []
        for rng in touched:
            if rng.on_list and self.overlaps(rng, start, end):
                self.invalidate_range(rng, start, end)


class EndDeferredToLastWindow(BlindCore):
    """Only the end that closes the last open window runs the range pass (with its own span)."""

    name = "blind-end-deferred-to-last-window"

    def end_pass(self, start: int, end: int) -> None:
        if self.windows == 0:
            super().end_pass(start, end)


class ValidRestoredWhenQuiescent(BlindCore):
    """When the last open window ends, every registered range is marked valid again (5.2)."""

    name = "blind-valid-restored-when-quiescent"

    def end_pass(self, start: int, end: int) -> None:
        super().end_pass(start, end)
        if self.windows == 0:
            for rng in self.live:
                rng.valid = True

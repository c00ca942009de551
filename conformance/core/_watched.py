"""A core candidate in process, each outermost call within the step's budget
(:mod:`conformance._alarm`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import final

from hmm_ref import HmmMirrorOps, PfnEncoding

from .._alarm import Watchdog, Watched
from ._adapter import Candidate, CpuView, Handshake, ObservesAhead, RangeView, faults_of

__all__ = ["WatchedCandidate", "watched"]


@final
class WatchedCandidate(Watched[Candidate]):
    """A :class:`~conformance.Candidate` whose every outermost call has the step's budget."""

    def handshake(self) -> Handshake:
        return self._call("handshake", self.inner.handshake)

    def begin(self, cpu: CpuView) -> None:
        self._call("begin", self.inner.begin, cpu)

    def register(self, mirror: int, ops: HmmMirrorOps | None) -> int:
        return self._call("register", self.inner.register, mirror, ops)

    def unregister(self, mirror: int) -> None:
        self._call("unregister", self.inner.unregister, mirror)

    def snapshot(self, range_id: int, vma: int, start: int, end: int, encoding: PfnEncoding) -> int:
        return self._call("snapshot", self.inner.snapshot, range_id, vma, start, end, encoding)

    def fault(
        self,
        range_id: int,
        vma: int,
        start: int,
        end: int,
        encoding: PfnEncoding,
        *,
        pfns: Sequence[int],
        block: bool,
    ) -> int:
        inner = faults_of(self.inner)  # only a candidate that declared FAULT is asked
        return self._call(
            "fault",
            lambda: inner.fault(range_id, vma, start, end, encoding, pfns=pfns, block=block),
        )

    def observe(self, range_id: int) -> RangeView:
        return self._call("observe", self.inner.observe, range_id)

    def range_done(self, range_id: int) -> bool:
        return self._call("range_done", self.inner.range_done, range_id)

    def invalidate_start(self, start: int, end: int, blockable: bool) -> int:
        return self._call("invalidate_start", self.inner.invalidate_start, start, end, blockable)

    def invalidate_end(self, start: int, end: int) -> None:
        self._call("invalidate_end", self.inner.invalidate_end, start, end)

    def release(self) -> None:
        self._call("release", self.inner.release)

    def close(self) -> None:
        self._call("close", self.inner.close)

    def observes_ahead(self) -> bool:
        inner = self.inner
        return isinstance(inner, ObservesAhead) and inner.observes_ahead()

    def expect_observes(self, after: Sequence[int], in_sync: Sequence[int]) -> None:
        assert isinstance(self.inner, ObservesAhead), "only once observes_ahead() said so"
        self.inner.expect_observes(after, in_sync)


def watched(
    factory: Callable[[], Candidate], *, seconds: float, watchdog: Watchdog | None = None
) -> Callable[[], Candidate]:
    """``factory``, with each candidate it makes in a :class:`WatchedCandidate`."""
    return lambda: WatchedCandidate(factory(), seconds=seconds, watchdog=watchdog)

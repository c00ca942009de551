"""The state machine's rule for ``hmm_vma_fault`` (the FLT rules), mixed into the core machine.

A fault draws its span as a snapshot does (a readable vma, or a span the rules refuse; in a
case whose swarm says so, from a seam: a device-private page just below a page to fill), a
request for each page and what the CPU's fault handler does at each page, both from those the
case's swarm allows: the world's answer, as a mirror's reply is. The driver's fault path
(``device_fault`` in ``_machine.py``) faults through :meth:`FaultRules._fault` too. It keeps
the caller's side of the protocol in two places:

- a device-private page is never asked to be faulted back: the migration back to system memory
  invalidates the page through the notifier chain, into the candidate, which the harness does
  not model (docs/spec.md, FLT-2 open point);
- outside the strict profile, a blocking fault never meets a handler that must wait, which in
  the seed drops mmap_sem (FLT-6, a seed defect).

Its encodings are the swarm's whose ``values[NONE]`` lacks ``flags[VALID]``: the walk reads a
faulted page's entry, ``values[NONE]`` by then, as a new request (hmm_ref/_fault.py rule 3).
"""

from __future__ import annotations

from dataclasses import replace
from typing import ClassVar, Self

from hypothesis import strategies as st
from hypothesis.stateful import Bundle, precondition, rule

from hmm_ref import (
    DEFAULT_ENCODING,
    PAGE_SIZE,
    FaultOutcome,
    HmmPfnFlag,
    HmmPfnValue,
    PteKind,
)

from .._generation import VMAS
from ._adapter import Capability
from ._draws import (
    DRIVER_SPANS,
    KIND_DEVICE,
    KIND_NONE,
    REFUSED_SPANS,
    SNAPSHOTTABLE,
    Swarm,
    seams,
    vma_span,
)
from ._machine_names import MachineNames
from ._ops import FaultSnapshot

__all__ = ["FaultRules"]

_DEVICE = 4


class FaultRules(MachineNames):
    """The fault rule, over the names of the machine it is mixed into."""

    ranges = Bundle("ranges")
    #: Whether the candidate faults (its handshake's FAULT capability), for :meth:`_seamed`.
    faulting: ClassVar[bool] = False

    @classmethod
    def for_capabilities(cls, capabilities: frozenset[Capability]) -> type[Self]:
        """This machine, for a candidate of these capabilities."""
        return type(cls.__name__, (cls,), {"faulting": Capability.FAULT in capabilities})

    def _seamed(self, swarm: Swarm, data: st.DataObject) -> Swarm:
        """The case's swarm, drawn to aim its faults at seams or not (:attr:`Swarm.seams`) for a
        candidate that faults only, so that the others' cases stay as they were. Such a case's
        world and CPU hold holes and device-private pages too, which make seams."""
        if not self.faulting or not data.draw(st.booleans(), label="seams"):
            return swarm
        kinds = tuple(sorted({*swarm.kinds, KIND_NONE, KIND_DEVICE}))
        return replace(swarm, seams=True, kinds=kinds)

    @precondition(
        lambda self: not self.model.released and Capability.FAULT in self.model.capabilities
    )
    @rule(
        target=ranges,
        kind=DRIVER_SPANS,
        vma=st.sampled_from(SNAPSHOTTABLE),
        first=st.integers(0, 7),
        length=st.integers(1, 8),
        block=st.booleans(),
        data=st.data(),
    )
    def fault(
        self, *, kind: str, vma: int, first: int, length: int, block: bool, data: st.DataObject
    ) -> int:
        """``hmm_vma_fault`` over a drawn span, with a request and a handler's answer per page."""
        if kind == "ok":
            vma, start, end = self._aimed(vma, first, length)
        else:
            vma, start, end = REFUSED_SPANS[kind]
        return self._fault(vma, start, end, block, data)

    def _aimed(self, vma: int, first: int, length: int) -> tuple[int, int, int]:
        """Where a fault drawn at page ``first`` of vma ``vma`` (``length`` pages) falls, as
        (vma, start, end): there, or, if the case's swarm says so, from the seam that ``first``
        picks, over its two pages at least."""
        if self._swarm.seams and (found := seams(self.model.cpu)):
            vma, first = found[first % len(found)]
            length = max(length, 2)
        return (vma, *vma_span(vma, first, length))

    def _fault(self, vma: int, start: int, end: int, block: bool, data: st.DataObject) -> int:
        """``hmm_vma_fault`` of ``[start, end)``, drawing the encoding, the requests and the
        handler's answers; the new range's handle."""
        encoding = self._encoding(data)
        if encoding.values[HmmPfnValue.NONE] & encoding.flags[HmmPfnFlag.VALID]:
            encoding = DEFAULT_ENCODING
        npages = (end - start) // PAGE_SIZE
        asked = st.sampled_from(self._swarm.requests)
        requests = data.draw(st.lists(asked, min_size=npages, max_size=npages), label="requests")
        # Aimed at seams, a fault fills each page just above a device page: asks, and maps it.
        fills = set[int]()
        if self._swarm.seams:
            fills = {VMAS[v].start + (i + 1) * PAGE_SIZE for v, i in seams(self.model.cpu)}
        for index, request in enumerate(requests):
            pte = self.model.cpu.pte(start + index * PAGE_SIZE)
            if pte.kind is PteKind.DEVICE_PRIVATE and request & 1:
                requests[index] = request & ~_DEVICE
            elif start + index * PAGE_SIZE in fills:
                requests[index] = request | 1
        may_wait = not block or self.model.strict()
        outcomes = st.sampled_from(self._swarm.outcomes)
        handler = tuple(
            (start + index * PAGE_SIZE, outcome)
            for index, outcome in enumerate(
                data.draw(st.lists(outcomes, min_size=npages, max_size=npages), label="handler")
            )
            if outcome is not FaultOutcome.OK
            and (may_wait or outcome is FaultOutcome.ERROR)
            and not (outcome is FaultOutcome.ERROR and start + index * PAGE_SIZE in fills)
        )
        range_id = self._range_id()
        self._do(
            FaultSnapshot(
                range=range_id,
                vma=vma,
                start=start,
                end=end,
                encoding=encoding,
                block=block,
                requests=tuple(requests),
                handler=handler,
            )
        )
        return range_id

"""The faulting snapshot as an operation (``hmm_vma_fault``), and its JSON fields."""

from __future__ import annotations

import functools
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Final, final

from hmm_ref import PAGE_SIZE, FaultOutcome, HmmPfnFlag, PfnEncoding

from .._case import ADDRESS_END, CaseFormatError, Operation, span
from .._case_json import shown

__all__ = ["REQUEST_FLAGS", "FaultSnapshot", "handler_from_json", "request_from_json"]


#: The request bits of :attr:`FaultSnapshot.requests`: each stands for a flag of the encoding.
REQUEST_FLAGS: Final = (
    (1, HmmPfnFlag.VALID),
    (2, HmmPfnFlag.WRITE),
    (4, HmmPfnFlag.DEVICE_PRIVATE),
)
_REQUEST_WORDS: Final = {1: "read", 2: "write", 4: "device"}


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class FaultSnapshot(Operation):
    """``hmm_vma_fault(range, block)`` of ``[start, end)`` in vma number ``vma``.

    ``requests`` holds one request per page, as bits: 1 asks for the page (``flags[VALID]``:
    fault it in for read), 2 for write (``flags[WRITE]``), 4 to fault a device-private page back
    (``flags[DEVICE_PRIVATE]``); the range's entries start as those flags of ``encoding``
    (:meth:`pfns`). ``handler`` says what the CPU's fault handler does at a page address (an
    address not listed: it maps the page), which makes the case deterministic, as
    :attr:`InvalidateStart.replies` does for mirrors.
    """

    name: ClassVar[str] = "fault"
    range: int
    vma: int
    start: int
    end: int
    encoding: PfnEncoding
    block: bool
    requests: tuple[int, ...]
    handler: tuple[tuple[int, FaultOutcome], ...] = ()

    def __post_init__(self) -> None:
        span("fault", self.start, self.end)
        npages = (self.end - self.start) // PAGE_SIZE
        if len(self.requests) != npages:
            raise CaseFormatError(
                f"fault: {len(self.requests)} requests for [{self.start:#x}, {self.end:#x}), "
                f"which has {npages} pages; give one per page"
            )
        if any(not 0 <= request <= 7 for request in self.requests):
            raise CaseFormatError("fault: a request is a sum of 1 (read), 2 (write), 4 (device)")
        for addr, _ in self.handler:
            span("fault handler", addr, addr + PAGE_SIZE)

    def pfns(self) -> tuple[int, ...]:
        """The entries the caller fills the range with before the call."""
        flags = self.encoding.flags
        return tuple(
            functools.reduce(
                operator.or_, (flags[flag] for bit, flag in REQUEST_FLAGS if request & bit), 0
            )
            for request in self.requests
        )

    def outcome(self, addr: int) -> FaultOutcome:
        """What the fault handler does at the page of ``addr``."""
        return dict(self.handler).get(addr - addr % PAGE_SIZE, FaultOutcome.OK)

    def describe(self) -> str:
        mode = "blocking" if self.block else "non-blocking"
        asked = [
            f"p{i} " + "+".join(word for bit, word in _REQUEST_WORDS.items() if request & bit)
            for i, request in enumerate(self.requests)
            if request
        ]
        text = (
            f"{mode} fault r{self.range} = [{self.start:#x}, {self.end:#x}) of vma {self.vma}"
            f", asking {', '.join(asked) if asked else 'nothing'}"
        )
        waits = [f"{addr:#x} {outcome.value}" for addr, outcome in self.handler]
        return text + (f"; the fault handler at {', '.join(waits)}" if waits else "")


def request_from_json(item: object, where: str) -> int:
    if type(item) is not int or not 0 <= item <= 7:
        raise CaseFormatError(
            f"{where}: {shown(item)} is not a request; give 0 to 7, a sum of 1 (read), "
            "2 (write) and 4 (device)"
        )
    return item


def handler_from_json(items: Sequence[object], where: str) -> tuple[tuple[int, FaultOutcome], ...]:
    pairs: list[tuple[int, FaultOutcome]] = []
    outcomes = {outcome.value: outcome for outcome in FaultOutcome}
    for i, item in enumerate(items):
        if not (
            isinstance(item, list)
            and len(item) == 2
            and type(item[0]) is int
            and 0 <= item[0] <= ADDRESS_END
            and item[1] in outcomes
        ):
            raise CaseFormatError(
                f"{where}[{i}]: {shown(item)} is not [page address, outcome]; give an address "
                f"and one of {', '.join(sorted(outcomes))}"
            )
        pairs.append((item[0], outcomes[item[1]]))
    return tuple(pairs)

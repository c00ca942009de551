"""The state machines' shared base: what an interrupted or stuck run saves is the case so far."""

from __future__ import annotations

from typing import Any, ClassVar

from conformance import BUDGETS, case_from_json, run, start
from conformance._counting import LIVE
from conformance.driver import driver_case_from_json, run_driver, start_driver
from conformance.driver._catalogue import BaseDriver
from hmm_ref import HmmMirrorOps

from .candidates import Wrapped

SMALL = BUDGETS["fast"]


def _now() -> dict[str, Any]:
    assert LIVE.document is not None, "a case is under way"
    return dict(LIVE.document())


class _PeekingCore(Wrapped):
    """The reference, which keeps the document of the case under way at each register."""

    name = "peeking"
    seen: ClassVar[list[dict[str, Any]]] = []

    def register(self, mirror: int, ops: HmmMirrorOps | None) -> int:
        type(self).seen.append(_now())
        return super().register(mirror, ops)


class _PeekingDriver(BaseDriver):
    """The base driver, which keeps the document of the case under way at each fault."""

    seen: ClassVar[list[dict[str, Any]]] = []

    def start_fault(self, fault: int, start: int, end: int) -> None:
        type(self).seen.append(_now())
        super().start_fault(fault, start, end)


def test_the_case_under_way_reads_as_its_sides_case_file() -> None:
    """While a step runs, the live document (what the watchdog saves of a call that never
    returns) is the case so far in its side's format, the step under way included."""
    candidate, handshake = start(_PeekingCore)
    # Generated cases only: an aimed case is a replay, whose live document is the whole case.
    result = run(candidate, handshake, budget=SMALL, seed_value=1, aim=False)
    assert result.failure is None
    assert _PeekingCore.seen
    for document in _PeekingCore.seen:
        case = case_from_json(document)
        assert case.ops
        assert case.ops[-1].name == "register"
    driver, driver_handshake = start_driver(_PeekingDriver)
    run_driver(driver, driver_handshake, budget=SMALL, seed_value=1)
    assert _PeekingDriver.seen
    for document in _PeekingDriver.seen:
        assert document["side"] == "driver"
        driver_case = driver_case_from_json(document)
        assert driver_case.ops
        assert driver_case.ops[-1].name == "start_fault"

"""Driver-side operations are data: each round-trips through JSON, and bad JSON is named."""

from __future__ import annotations

import json

import pytest

from conformance import CaseFormatError, World
from conformance._driver_ops import (
    DRIVER_SIDE,
    CpuSetEntry,
    DriverCase,
    DriverOperation,
    Exit,
    NotifierEnd,
    NotifierStart,
    RunFault,
    StartFault,
    StepFault,
    driver_case_from_json,
    driver_case_to_json,
    driver_op_from_json,
    driver_op_to_json,
    side_of,
)
from conformance._machine import ENCODINGS, VMAS
from hmm_ref import PTE_MIGRATION, Pte

OPS: list[DriverOperation] = [
    NotifierStart(start=0x10000, end=0x12000, blockable=True),
    NotifierStart(start=0x10000, end=0x11000, blockable=False),
    NotifierEnd(start=0x10000, end=0x12000),
    CpuSetEntry(addr=0x11000, pte=Pte.present(0x2A0, write=True)),
    CpuSetEntry(addr=0x11000, pte=PTE_MIGRATION),
    Exit(),
    StartFault(fault=3, start=0x10000, end=0x14000),
    StepFault(fault=3),
    RunFault(fault=3),
]


@pytest.mark.parametrize("op", OPS, ids=lambda op: op.name)
def test_every_driver_operation_round_trips_through_json(op: DriverOperation) -> None:
    """op -> JSON text -> op gives the same value."""
    text = json.dumps(driver_op_to_json(op))
    assert driver_op_from_json(json.loads(text)) == op


def test_a_driver_case_round_trips_and_says_its_side() -> None:
    """The case file is the core's format with side "driver" and the driver's encoding."""
    world = World(vmas=VMAS, ptes=((0x10000, Pte.present(0x100, write=True)),))
    case = DriverCase(world=world, encoding=ENCODINGS[2], ops=tuple(OPS))
    data = json.loads(json.dumps(driver_case_to_json(case)))
    assert data["format"] == "hmm-conformance/case"
    assert data["side"] == DRIVER_SIDE == side_of(data)
    assert driver_case_from_json(data) == case


def test_descriptions_name_the_actor_and_the_span() -> None:
    """Each operation reads as one line: who acts, on what."""
    assert [op.describe() for op in OPS] == [
        "CPU: blockable invalidate_start [0x10000, 0x12000)",
        "OOM reaper: non-blockable invalidate_start [0x10000, 0x11000)",
        "invalidate_end [0x10000, 0x12000)",
        "CPU sets the entry of 0x11000 to present pfn 0x2a0 rw",
        "CPU sets the entry of 0x11000 to migration",
        "the process exits (release, then every page unmapped)",
        "device fault f3 over [0x10000, 0x14000) starts",
        "fault f3 takes a step",
        "fault f3 runs",
    ]


def test_side_of_reads_core_by_default_and_refuses_unknown_sides() -> None:
    """No side field, or not an object: core; a side that is neither: a format error."""
    assert side_of({"format": "x"}) == "core"
    assert side_of([1, 2]) == "core"
    with pytest.raises(CaseFormatError, match=r"case\.side: 'gpu' is not 'core' or 'driver'"):
        side_of({"side": "gpu"})


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"op": "teleport"}, "op.op: unknown driver operation 'teleport'; one of invalidate_start"),
        ({"op": "step_fault"}, "op: missing field 'fault'"),
        ({"op": "start_fault", "fault": 0, "start": 1, "end": 4096}, "is not page aligned"),
        ({"op": "set_pte", "addr": 4096, "pte": {"kind": "present", "pfn": -1}}, "op: "),
        ({"op": "invalidate_start", "start": 0, "end": 4096}, "missing field 'blockable'"),
    ],
)
def test_malformed_driver_operations_name_the_field(data: object, message: str) -> None:
    """Unknown kinds, missing fields, bad spans and bad entries are CaseFormatErrors."""
    with pytest.raises(CaseFormatError, match=message.replace("(", r"\(").replace(")", r"\)")):
        driver_op_from_json(data)


def _case(**changes: object) -> dict[str, object]:
    case = driver_case_to_json(DriverCase(world=World(vmas=VMAS), encoding=ENCODINGS[0]))
    case.update(changes)
    return case


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_case(format="other"), "case.format: expected 'hmm-conformance/case'"),
        (_case(version=2), "case.version: 2 is not 1"),
        (_case(side="core"), "case.side: expected 'driver'; this is a core case"),
        (
            _case(encoding={"flags": [0, 2, 4], "values": [1, 2, 3], "pfn_shift": 12}),
            "case.encoding: hmm_range: flags\\[VALID\\] is 0",
        ),
        (_case(ops=[{"op": "exit"}, {"op": "run_fault"}]), "case.ops\\[1\\]: missing field"),
    ],
)
def test_malformed_driver_cases_are_refused_with_the_reason(data: object, message: str) -> None:
    """A case of another format, version or side, or with a bad encoding or op, is refused."""
    with pytest.raises(CaseFormatError, match=message):
        driver_case_from_json(data)

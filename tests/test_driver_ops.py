"""Driver-side operations are data: each round-trips through JSON, and bad JSON is named."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance import CaseFormatError, World, reference_driver
from conformance._generation import ENCODINGS, VMAS, ptes
from conformance._side import Failure
from conformance.core._ops import REPLAY_FIELDS
from conformance.driver._machine import DRIVER_ENCODINGS
from conformance.driver._ops import (
    DRIVER_SIDE,
    CpuSetEntry,
    DriverCase,
    DriverOp,
    Exit,
    NotifierEnd,
    NotifierStart,
    RunFault,
    StartFault,
    StepFault,
    driver_case_from_json,
    driver_case_to_json,
    driver_decodes,
    driver_op_from_json,
    driver_op_to_json,
    side_of,
)
from conformance.driver._side import replay_driver, start_driver
from hmm_ref import DEFAULT_ENCODING, PAGE_SIZE, PTE_MIGRATION, HmmPfnFlag, Pte

from .test_ops import worlds

OPS: list[DriverOp] = [
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
def test_every_driver_operation_round_trips_through_json(op: DriverOp) -> None:
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


SNAPPED = {"op": "start_fault", "fault": 0, "start": 0x10000, "end": 0x11000}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            _case(ops=[{**SNAPPED, "fault": -1}]),
            "case.ops[0].fault: -1 is out of range; give 0 to 2147483647",
        ),
        (
            _case(ops=[{**SNAPPED, "vma": 0}]),
            "case.ops[0]: unknown field 'vma'; a start_fault operation has op, fault, start, end",
        ),
        (
            _case(ops=[{"op": "exit", "code": 0}]),
            "case.ops[0]: unknown field 'code'; an exit operation has op",
        ),
        (
            _case(ops=[{"op": "set_pte", "addr": 0x40000, "pte": {"kind": "none"}}]),
            "case.ops[0].addr: 0x40000 is in no vma of the world",
        ),
        (
            _case(ops=[{"op": "invalidate_end", "start": 0, "end": 2**64}]),
            "case.ops[0].end: 18446744073709551616 is not an address",
        ),
        (
            _case(
                encoding={
                    **driver_case_to_json(
                        DriverCase(world=World(vmas=VMAS), encoding=ENCODINGS[0])
                    )["encoding"],
                    "extra": 1,
                }
            ),
            "case.encoding: unknown field 'extra'; an encoding has flags, values, pfn_shift",
        ),
        (
            _case(
                encoding={"flags": [2**63, 2**62, 2**61], "values": [14, 15, 14], "pfn_shift": 4}
            ),
            "case.encoding.flags: 0x8000000000000000 lies above the pfn, which starts at bit 4",
        ),
        (_case(world={"vmas": [], "ptes": []}), "case.world.vmas: no vma"),
        (
            _case(world={"vmas": [{"start": 0, "end": 4096}], "ptes": [], "mm": 1}),
            "case.world: unknown field 'mm'; a world has vmas, ptes",
        ),
        (
            _case(comment="x"),
            "case: unknown field 'comment'; a driver case has format, version, side, world, "
            "encoding, ops, profile, seed, depth, candidate, failure",
        ),
    ],
)
def test_driver_cases_the_engine_cannot_run_are_refused_with_the_field(
    data: object, message: str
) -> None:
    """An operation naming what the world lacks, an encoding no driver decodes, or a field the
    format does not define is refused with its path and what is allowed."""
    with pytest.raises(CaseFormatError) as caught:
        driver_case_from_json(data)
    assert message in str(caught.value)


def test_a_driver_replay_files_header_fields_are_accepted() -> None:
    """The fields a replay file records beside the case leave the decoded case as it was."""
    header = {"profile": "seed", "seed": 7, "depth": 3, "candidate": {"name": "x"}, "failure": []}
    assert set(header) == set(REPLAY_FIELDS)
    assert driver_case_from_json(_case(**header)) == driver_case_from_json(_case())


def test_the_driver_generators_draw_every_decodable_encoding_and_one_laid_out_apart() -> None:
    """Every core encoding a driver can decode, and one whose valid and write bits and pfn
    shift all differ from the default's, so a driver that ignores its range's encoding is seen."""
    assert all(driver_decodes(e) for e in DRIVER_ENCODINGS)
    assert {e for e in ENCODINGS if driver_decodes(e)} < set(DRIVER_ENCODINGS)
    valid, write = HmmPfnFlag.VALID, HmmPfnFlag.WRITE
    assert any(
        e.flag(valid) != DEFAULT_ENCODING.flag(valid)
        and e.flag(write) != DEFAULT_ENCODING.flag(write)
        and e.pfn_shift != DEFAULT_ENCODING.pfn_shift
        for e in DRIVER_ENCODINGS
    )


@st.composite
def driver_cases(draw: st.DrawFn) -> DriverCase:
    """A driver case the decoder accepts, with few faults and spans near its world."""
    world = draw(worlds())
    pages = [a for v in world.vmas for a in range(v.start, v.end, PAGE_SIZE)]
    near = st.integers(0, pages[-1] // PAGE_SIZE + 2).map(lambda page: page * PAGE_SIZE)
    spans = st.tuples(near, st.integers(1, 8)).map(lambda s: (s[0], s[0] + s[1] * PAGE_SIZE))
    faults = st.integers(0, 2)
    kinds: st.SearchStrategy[DriverOp] = st.one_of(
        st.builds(
            lambda s, b: NotifierStart(start=s[0], end=s[1], blockable=b), spans, st.booleans()
        ),
        st.builds(lambda s: NotifierEnd(start=s[0], end=s[1]), spans),
        st.builds(CpuSetEntry, addr=st.sampled_from(pages), pte=ptes),
        st.just(Exit()),
        st.builds(lambda f, s: StartFault(fault=f, start=s[0], end=s[1]), faults, spans),
        st.builds(StepFault, fault=faults),
        st.builds(RunFault, fault=faults),
    )
    encoding = draw(st.sampled_from(DRIVER_ENCODINGS))
    return DriverCase(world=world, encoding=encoding, ops=tuple(draw(st.lists(kinds, max_size=8))))


@settings(max_examples=200, deadline=None)
@given(driver_cases())
def test_no_driver_case_the_decoder_accepts_crashes_the_reference_driver(case: DriverCase) -> None:
    """A decodable driver case round-trips, and runs against the reference driver with no
    CRASH, HANG or PROTOCOL verdict unless it is refused as breaking the caller's protocol."""
    decoded = driver_case_from_json(json.loads(json.dumps(driver_case_to_json(case))))
    assert decoded == case
    candidate, handshake = start_driver(reference_driver)
    try:
        outcome = replay_driver(candidate, handshake, decoded)
    except CaseFormatError:
        return
    if isinstance(outcome, Failure):
        assert all(v.rule is not None for v in outcome.verdicts), outcome.verdicts[0].detail

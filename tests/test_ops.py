"""Operations as data: exact JSON round trips, readable descriptions, precise parse errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import hmm_ref as H
from conformance import (
    Case,
    CaseFormatError,
    InvalidateEnd,
    InvalidateStart,
    Observe,
    Operation,
    RangeDone,
    RegisterMirror,
    Release,
    SetCpuEntry,
    Snapshot,
    UnregisterMirror,
    VmaSpec,
    World,
    case_from_json,
    case_to_json,
)
from conformance._machine import ENCODINGS, ptes
from conformance._ops import op_from_json, op_to_json

ids = st.integers(0, 1000)
addrs = st.integers(0, 2**20).map(lambda page: page * H.PAGE_SIZE)
spans = st.tuples(addrs, st.integers(1, 64)).map(lambda s: (s[0], s[0] + s[1] * H.PAGE_SIZE))
ranges = st.tuples(addrs, st.integers(0, 64)).map(lambda s: (s[0], s[0] + s[1] * H.PAGE_SIZE))

operations: st.SearchStrategy[Operation] = st.one_of(
    st.builds(RegisterMirror, mirror=ids, with_ops=st.booleans()),
    st.builds(UnregisterMirror, mirror=ids),
    st.builds(
        lambda r, v, span, e: Snapshot(range=r, vma=v, start=span[0], end=span[1], encoding=e),
        ids,
        st.integers(0, 3),
        ranges,
        st.sampled_from(ENCODINGS),
    ),
    st.builds(Observe, range=ids),
    st.builds(RangeDone, range=ids),
    st.builds(
        lambda span, b, r: InvalidateStart(start=span[0], end=span[1], blockable=b, replies=r),
        spans,
        st.booleans(),
        st.dictionaries(ids, st.integers(-4095, 4095)).map(lambda d: tuple(sorted(d.items()))),
    ),
    st.builds(lambda span: InvalidateEnd(start=span[0], end=span[1]), spans),
    st.builds(SetCpuEntry, addr=addrs, pte=ptes),
    st.just(Release()),
)
worlds = st.builds(
    World,
    vmas=st.lists(
        st.builds(
            VmaSpec,
            start=addrs,
            end=addrs,
            read=st.booleans(),
            write=st.booleans(),
            special=st.booleans(),
        ),
        max_size=4,
    ).map(tuple),
    ptes=st.lists(st.tuples(addrs, ptes), max_size=6).map(tuple),
)


@given(operations)
def test_every_operation_round_trips_through_json_text(op: Operation) -> None:
    """op -> JSON text -> op gives the same value, for every kind of operation."""
    assert op_from_json(json.loads(json.dumps(op_to_json(op)))) == op
    assert op.describe()


@given(worlds, st.lists(operations, max_size=8))
def test_every_case_round_trips_through_json_text(world: World, ops: list[Operation]) -> None:
    """A whole case, world and operations, survives a trip through JSON text unchanged."""
    case = Case(world=world, ops=tuple(ops))
    assert case_from_json(json.loads(json.dumps(case_to_json(case)))) == case


def test_descriptions_read_like_the_kernel() -> None:
    """Descriptions name the call, the span, and the non-zero answers."""
    start = InvalidateStart(start=0x10000, end=0x12000, blockable=False, replies=((1, -11), (2, 0)))
    assert (
        start.describe() == "non-blockable invalidate_start [0x10000, 0x12000); m1 answers -EAGAIN"
    )
    assert start.reply(1) == -11
    assert start.reply(7) == 0
    assert RegisterMirror(mirror=3, with_ops=False).describe() == "register mirror m3 (no ops)"
    assert (
        SetCpuEntry(addr=0x11000, pte=H.Pte.present(0x42, write=True)).describe()
        == "CPU sets the entry of 0x11000 to present pfn 0x42 rw"
    )
    assert (
        SetCpuEntry(addr=0x11000, pte=H.PTE_SWAP).describe()
        == "CPU sets the entry of 0x11000 to swap"
    )


def _case(**changes: Any) -> dict[str, Any]:
    data = case_to_json(Case(world=World(vmas=(VmaSpec(start=0, end=4096),)), ops=(Release(),)))
    data.update(changes)
    return data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "case: expected an object, got list"),
        (_case(format="other"), "case.format: expected 'hmm-conformance/case'"),
        (_case(version=2), "case.version: 2 is not 1"),
        (_case(ops=[{"op": "frobnicate"}]), "case.ops[0].op: unknown operation 'frobnicate'"),
        (_case(ops=[{"op": "register"}]), "case.ops[0]: missing field 'mirror'"),
        (_case(ops=[{"op": "register", "mirror": "1"}]), "case.ops[0].mirror: expected an integer"),
        (
            _case(ops=[{"op": "register", "mirror": True}]),
            "case.ops[0].mirror: expected an integer",
        ),
        (
            _case(ops=[{"op": "register", "mirror": 1, "with_ops": 1}]),
            "case.ops[0].with_ops: expected true or false",
        ),
        (
            _case(
                ops=[
                    {
                        "op": "invalidate_start",
                        "start": 0,
                        "end": 1,
                        "blockable": True,
                        "replies": {"m1": 0},
                    }
                ]
            ),
            "case.ops[0].replies: key 'm1' is not a mirror number",
        ),
        (
            _case(ops=[{"op": "set_pte", "addr": 0, "pte": {"kind": "weird"}}]),
            "case.ops[0].pte.kind: 'weird' is not one of",
        ),
        (
            _case(
                ops=[
                    {
                        "op": "snapshot",
                        "range": 0,
                        "vma": 0,
                        "start": 0,
                        "end": 1,
                        "encoding": {"flags": [1, 2], "values": [8, 16, 32], "pfn_shift": 12},
                    }
                ]
            ),
            "case.ops[0].encoding.flags: expected three integers",
        ),
        (_case(ops={"op": "release"}), "case.ops: expected a list"),
        (
            _case(world={"vmas": [{"start": 0}], "ptes": []}),
            "case.world.vmas[0]: missing field 'end'",
        ),
        (
            _case(world={"vmas": [], "ptes": [{"addr": 0, "pte": {"kind": 3}}]}),
            "case.world.ptes[0].pte.kind: expected a string",
        ),
        (
            _case(ops=[{"op": "invalidate_end", "start": 8192, "end": 4096}]),
            "case.ops[0]: invalidate_end: [0x2000, 0x1000) is reversed",
        ),
        (
            _case(
                ops=[
                    {
                        "op": "invalidate_start",
                        "start": 4096,
                        "end": 4096,
                        "blockable": True,
                        "replies": {},
                    }
                ]
            ),
            "case.ops[0]: invalidate_start: [0x1000, 0x1000) is empty",
        ),
        (
            _case(ops=[{"op": "set_pte", "addr": 100, "pte": {"kind": "none"}}]),
            "case.ops[0]: set_pte: [0x64, 0x1064) is not page aligned",
        ),
        (
            _case(ops=[{"op": "set_pte", "addr": 0, "pte": {"kind": "present", "pfn": -1}}]),
            "case.ops[0]: pfn -1 out of range",
        ),
        (
            _case(
                ops=[
                    {
                        "op": "snapshot",
                        "range": 0,
                        "vma": 0,
                        "start": 0,
                        "end": 4096,
                        "encoding": {"flags": [0, 2, 4], "values": [8, 16, 32], "pfn_shift": 12},
                    }
                ]
            ),
            "case.ops[0]: hmm_range: flags[VALID] is 0",
        ),
    ],
)
def test_malformed_cases_name_the_field_that_is_wrong(data: object, message: str) -> None:
    """Each malformed input is refused with the path to the bad field and what was expected."""
    with pytest.raises(CaseFormatError) as caught:
        case_from_json(data)
    assert message in str(caught.value)


def test_omitted_optional_fields_take_their_defaults() -> None:
    """A hand-written register without with_ops registers a mirror with ops."""
    assert op_from_json({"op": "register", "mirror": 4}) == RegisterMirror(mirror=4)
    world = case_from_json(
        {
            "format": "hmm-conformance/case",
            "version": 1,
            "ops": [],
            "world": {"vmas": [{"start": 0, "end": 8192}], "ptes": []},
        }
    ).world
    assert world.vmas == (VmaSpec(start=0, end=8192),)


def test_operations_refuse_spans_the_kernel_never_passes() -> None:
    """Made in code too, an operation refuses an unaligned, empty or reversed span."""
    with pytest.raises(CaseFormatError, match="not page aligned"):
        Snapshot(range=0, vma=0, start=1, end=4096, encoding=H.DEFAULT_ENCODING)
    with pytest.raises(CaseFormatError, match="reversed"):
        Snapshot(range=0, vma=0, start=8192, end=4096, encoding=H.DEFAULT_ENCODING)
    assert Snapshot(range=0, vma=0, start=4096, end=4096, encoding=H.DEFAULT_ENCODING).end == 4096

"""Operations as data: exact JSON round trips, readable descriptions, precise parse errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hmm_ref as H
from conformance import (
    Case,
    CaseFormatError,
    CoreOperation,
    Failure,
    InvalidateEnd,
    InvalidateStart,
    Observe,
    Profile,
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
    reference,
    replay,
    start,
)
from conformance._generation import ENCODINGS, ptes
from conformance.core._ops import (
    MAX_ERRNO,
    MAX_HANDLE,
    MAX_PAGES,
    MAX_VMAS,
    REPLAY_FIELDS,
    op_from_json,
    op_to_json,
)

ids = st.integers(0, 1000)
addrs = st.integers(0, 2**20).map(lambda page: page * H.PAGE_SIZE)


def operations_in(
    vmas: int,
    pages: st.SearchStrategy[int],
    addresses: st.SearchStrategy[int] = addrs,
    handles: st.SearchStrategy[int] = ids,
) -> st.SearchStrategy[CoreOperation]:
    """Every kind of operation, naming one of ``vmas`` vmas and changing only ``pages``."""
    spans = st.tuples(addresses, st.integers(1, 64)).map(
        lambda s: (s[0], s[0] + s[1] * H.PAGE_SIZE)
    )
    ranges = st.tuples(addresses, st.integers(0, 64)).map(
        lambda s: (s[0], s[0] + s[1] * H.PAGE_SIZE)
    )
    replies = st.dictionaries(handles, st.integers(-MAX_ERRNO, 0)).map(
        lambda d: tuple(sorted(d.items()))
    )
    return st.one_of(
        st.builds(RegisterMirror, mirror=handles, with_ops=st.booleans()),
        st.builds(UnregisterMirror, mirror=handles),
        st.builds(
            lambda r, v, span, e: Snapshot(range=r, vma=v, start=span[0], end=span[1], encoding=e),
            handles,
            st.integers(0, vmas - 1),
            ranges,
            st.sampled_from(ENCODINGS),
        ),
        st.builds(Observe, range=handles),
        st.builds(RangeDone, range=handles),
        st.builds(
            lambda span, b, r: InvalidateStart(start=span[0], end=span[1], blockable=b, replies=r),
            spans,
            st.booleans(),
            replies,
        ),
        st.builds(lambda span: InvalidateEnd(start=span[0], end=span[1]), spans),
        st.builds(SetCpuEntry, addr=pages, pte=ptes),
        st.just(Release()),
    )


operations = operations_in(4, addrs)


@st.composite
def worlds(draw: st.DrawFn) -> World:
    """A world a case can run in: vmas in address order with gaps or not, entries inside."""
    vmas: list[VmaSpec] = []
    start = draw(st.integers(0, 16)) * H.PAGE_SIZE
    for _ in range(draw(st.integers(1, 4))):
        end = start + draw(st.integers(1, 8)) * H.PAGE_SIZE
        flags = draw(st.tuples(st.booleans(), st.booleans(), st.booleans()))
        vmas.append(VmaSpec(start=start, end=end, read=flags[0], write=flags[1], special=flags[2]))
        start = end + draw(st.integers(0, 2)) * H.PAGE_SIZE
    pages = [addr for vma in vmas for addr in range(vma.start, vma.end, H.PAGE_SIZE)]
    mapped = draw(st.lists(st.sampled_from(pages), unique=True, max_size=6))
    return World(vmas=tuple(vmas), ptes=tuple((addr, draw(ptes)) for addr in mapped))


@st.composite
def cases(draw: st.DrawFn, local: bool = False) -> Case:
    """A case the decoder accepts: its operations name only what its world has (and, if
    ``local``, few handles and spans near the world, so that the steps meet)."""
    world = draw(worlds())
    pages = [a for v in world.vmas for a in range(v.start, v.end, H.PAGE_SIZE)]
    near = st.integers(0, pages[-1] // H.PAGE_SIZE + 2).map(lambda page: page * H.PAGE_SIZE)
    kinds = operations_in(
        len(world.vmas),
        st.sampled_from(pages),
        near if local else addrs,
        st.integers(0, 2) if local else ids,
    )
    return Case(world=world, ops=tuple(draw(st.lists(kinds, max_size=8))))


@given(operations)
def test_every_operation_round_trips_through_json_text(op: CoreOperation) -> None:
    """op -> JSON text -> op gives the same value, for every kind of operation."""
    assert op_from_json(json.loads(json.dumps(op_to_json(op)))) == op
    assert op.describe()


@given(cases())
def test_every_case_round_trips_through_json_text(case: Case) -> None:
    """A whole case, world and operations, survives a trip through JSON text unchanged."""
    text = json.dumps(case_to_json(case))
    assert case_from_json(json.loads(text)) == case
    assert json.dumps(case_to_json(case_from_json(json.loads(text)))) == text


@settings(max_examples=200, deadline=None)
@given(cases(local=True))
def test_no_case_the_decoder_accepts_crashes_the_reference(case: Case) -> None:
    """A decodable case runs against the reference with no CRASH, HANG or PROTOCOL verdict,
    unless it breaks the caller's side of the protocol, which is refused as the case's fault."""
    decoded = case_from_json(json.loads(json.dumps(case_to_json(case))))
    candidate, handshake = start(reference)
    try:
        outcome = replay(candidate, handshake, decoded, Profile.SEED)
    except CaseFormatError:
        return
    if isinstance(outcome, Failure):
        assert all(v.rule is not None for v in outcome.verdicts), outcome.verdicts[0].detail


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
            _case(
                world={
                    "vmas": [{"start": 0, "end": 4096}],
                    "ptes": [{"addr": 0, "pte": {"kind": 3}}],
                }
            ),
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


SNAPSHOT: dict[str, Any] = op_to_json(
    Snapshot(range=0, vma=0, start=0, end=4096, encoding=H.DEFAULT_ENCODING)
)
VMA = {"start": 0, "end": 4096, "read": True, "write": True, "special": False}


def _world(*vmas: dict[str, Any], ptes: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"vmas": list(vmas), "ptes": ptes or []}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            _case(ops=[{**SNAPSHOT, "vma": 77}]),
            "case.ops[0].vma: 77 is not a vma of the world; give 0 to 0",
        ),
        (_case(ops=[{**SNAPSHOT, "vma": -1}]), "case.ops[0].vma: -1 is out of range; give 0 to"),
        (
            _case(world=_world(), ops=[SNAPSHOT]),
            "case.world.vmas: no vma; a world has at least one",
        ),
        (
            _case(world=_world(VMA, {**VMA, "start": 0, "end": 8192})),
            "case.world.vmas[1]: [0x0, 0x2000) starts below the end of vma 0 (0x1000); vmas are "
            "in address order and do not overlap",
        ),
        (
            _case(world=_world({**VMA, "start": 8192, "end": 12288}, VMA)),
            "case.world.vmas[1]: [0x0, 0x1000) starts below the end of vma 0",
        ),
        (
            _case(world=_world({**VMA, "end": 100})),
            "case.world.vmas[0]: vma: [0x0, 0x64) is not page aligned",
        ),
        (_case(world=_world({**VMA, "end": 0})), "case.world.vmas[0]: vma: [0x0, 0x0) is empty"),
        (
            _case(world=_world({**VMA, "end": (MAX_PAGES + 1) * H.PAGE_SIZE})),
            f"case.world.vmas[0]: vma: [0x0, 0x10001000) covers {MAX_PAGES + 1} pages; a span "
            f"covers at most {MAX_PAGES}",
        ),
        (
            _case(
                world=_world(
                    {**VMA, "end": MAX_PAGES * H.PAGE_SIZE},
                    {**VMA, "start": MAX_PAGES * H.PAGE_SIZE, "end": (MAX_PAGES + 1) * 4096},
                )
            ),
            f"case.world.vmas: {MAX_PAGES + 1} pages in all; a world maps at most {MAX_PAGES}",
        ),
        (
            _case(
                world=_world(
                    *({**VMA, "start": i * 4096, "end": i * 4096 + 4096} for i in range(257))
                )
            ),
            f"case.world.vmas: {MAX_VMAS + 1} vmas; a world has at most {MAX_VMAS}",
        ),
        (
            _case(world=_world({**VMA, "end": 2**64})),
            "case.world.vmas[0].end: 18446744073709551616 is not an address; give 0 to "
            "0xfffffffffffff000",
        ),
        (
            _case(world=_world({**VMA, "colour": "red"})),
            "case.world.vmas[0]: unknown field 'colour'; a vma has start, end, read, write, "
            "special",
        ),
        (
            _case(world={**_world(VMA), "brk": 0}),
            "case.world: unknown field 'brk'; a world has vmas, ptes",
        ),
        (
            _case(world=_world(VMA, ptes=[{"addr": 8192, "pte": {"kind": "swap"}}])),
            "case.world.ptes[0].addr: 0x2000 is in no vma; entries map vma pages",
        ),
        (
            _case(world=_world(VMA, ptes=[{"addr": 10, "pte": {"kind": "swap"}}])),
            "case.world.ptes[0].addr: 0xa is not page aligned",
        ),
        (
            _case(world=_world(VMA, ptes=[{"addr": 0, "pte": {"kind": "swap"}}] * 2)),
            "case.world.ptes[1].addr: 0x0 has an entry already",
        ),
        (
            _case(world=_world(VMA, ptes=[{"addr": 0, "pte": {"kind": "present", "pfn": -1}}])),
            "case.world.ptes[0].pte: pfn -1 out of range",
        ),
        (
            _case(world=_world(VMA, ptes=[{"addr": 0, "pte": {"kind": "swap"}, "n": 1}])),
            "case.world.ptes[0]: unknown field 'n'; an entry has addr, pte",
        ),
        (
            _case(world=_world(VMA, ptes=[{"addr": 0, "pte": {"kind": "swap", "pfn": 1}}])),
            "case.world.ptes[0].pte: unknown field 'pfn'; a swap entry has kind",
        ),
        (
            _case(
                world=_world(VMA, ptes=[{"addr": 0, "pte": {"kind": "present", "pfn": 1, "x": 0}}])
            ),
            "case.world.ptes[0].pte: unknown field 'x'; a present entry has kind, pfn, write",
        ),
        ({k: v for k, v in _case().items() if k != "world"}, "case: missing field 'world'"),
        (
            _case(ops=[{"op": "release", "now": True}]),
            "case.ops[0]: unknown field 'now'; a release operation has op",
        ),
        (
            _case(ops=[{**SNAPSHOT, "vmas": 0}]),
            "case.ops[0]: unknown field 'vmas'; a snapshot operation has op, range, vma, start, "
            "end, encoding",
        ),
        (
            _case(ops=[{**SNAPSHOT, "encoding": {**SNAPSHOT["encoding"], "shift": 3}}]),
            "case.ops[0].encoding: unknown field 'shift'; an encoding has flags, values, pfn_shift",
        ),
        (
            _case(ops=[{"op": "set_pte", "addr": 0, "pte": {"kind": "none"}, "why": ""}]),
            "case.ops[0]: unknown field 'why'; a set_pte operation has op, addr, pte",
        ),
        (
            _case(ops=[{"op": "set_pte", "addr": 8192, "pte": {"kind": "none"}}]),
            "case.ops[0].addr: 0x2000 is in no vma of the world; the CPU changes entries only",
        ),
        (
            _case(ops=[{"op": "register", "mirror": MAX_HANDLE + 1}]),
            f"case.ops[0].mirror: {MAX_HANDLE + 1} is out of range; give 0 to {MAX_HANDLE}",
        ),
        (
            _case(ops=[{"op": "invalidate_end", "start": 0, "end": 2**70}]),
            "case.ops[0].end: 1180591620717411303424 is not an address",
        ),
        (
            _case(ops=[{"op": "invalidate_end", "start": 0, "end": 2**64 - 4096 + 1}]),
            "case.ops[0].end: 18446744073709547521 is not an address",
        ),
        (
            _case(ops=[{"op": "invalidate_end", "start": 0, "end": (MAX_PAGES + 1) * 4096}]),
            f"case.ops[0]: invalidate_end: [0x0, 0x10001000) covers {MAX_PAGES + 1} pages",
        ),
        (
            _case(
                ops=[
                    {
                        "op": "invalidate_start",
                        "start": 0,
                        "end": 4096,
                        "blockable": False,
                        "replies": {"0": 11},
                    }
                ]
            ),
            "case.ops[0].replies.0: 11 is not an answer a callback gives; give 0 or a negative "
            "errno (-4095 to -1)",
        ),
        (
            _case(
                ops=[
                    {
                        "op": "invalidate_start",
                        "start": 0,
                        "end": 4096,
                        "blockable": False,
                        "replies": {"01": -11},
                    }
                ]
            ),
            "case.ops[0].replies: key '01' is not a mirror number; give 0 to 2147483647",
        ),
        (
            _case(note="hand-written"),
            "case: unknown field 'note'; a core case has format, version, side, world, ops, "
            "profile, seed, depth, candidate, failure",
        ),
        (_case(side="driver"), "case.side: 'driver' is not 'core'; this is no core case"),
        (
            _case(ops=[{"op": "x" * 100}]),
            f"case.ops[0].op: unknown operation '{'x' * 56}...; one of register, unregister",
        ),
    ],
)
def test_cases_the_engine_cannot_run_are_refused_with_the_field(data: object, message: str) -> None:
    """A world or operation that would crash the reference, or a field this format does not
    define, is refused with its path and what is allowed, in one line."""
    with pytest.raises(CaseFormatError) as caught:
        case_from_json(data)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_replay_files_header_fields_are_accepted_and_ignored() -> None:
    """The fields a replay file records beside the case leave the decoded case as it was."""
    header = {"profile": "seed", "seed": 7, "depth": 3, "candidate": {"name": "x"}, "failure": []}
    assert set(header) == set(REPLAY_FIELDS)
    assert case_from_json(_case(side="core", **header)) == case_from_json(_case())


def test_the_largest_world_and_spans_the_format_allows_decode() -> None:
    """A world of MAX_PAGES pages ending at the top of the address space, with spans of
    MAX_PAGES pages, is a case."""
    top = 2**64 - H.PAGE_SIZE
    low = top - MAX_PAGES * H.PAGE_SIZE
    world = World(vmas=(VmaSpec(start=low, end=top),), ptes=((top - H.PAGE_SIZE, H.PTE_SWAP),))
    ops = (
        InvalidateStart(start=low, end=top, blockable=True, replies=((MAX_HANDLE, -MAX_ERRNO),)),
        SetCpuEntry(addr=low, pte=H.PTE_NONE),
    )
    case = Case(world=world, ops=ops)
    assert case_from_json(json.loads(json.dumps(case_to_json(case)))) == case


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
    """Made in code too, an operation refuses an unaligned, empty, reversed, too long span, or
    one past the 64-bit address space."""
    with pytest.raises(CaseFormatError, match="not page aligned"):
        Snapshot(range=0, vma=0, start=1, end=4096, encoding=H.DEFAULT_ENCODING)
    with pytest.raises(CaseFormatError, match="reversed"):
        Snapshot(range=0, vma=0, start=8192, end=4096, encoding=H.DEFAULT_ENCODING)
    assert Snapshot(range=0, vma=0, start=4096, end=4096, encoding=H.DEFAULT_ENCODING).end == 4096
    with pytest.raises(CaseFormatError, match="ends above 0xfffffffffffff000, the last page end"):
        SetCpuEntry(addr=2**64 - H.PAGE_SIZE, pte=H.PTE_NONE)
    with pytest.raises(CaseFormatError, match=f"covers {MAX_PAGES + 1} pages; a span covers at"):
        InvalidateEnd(start=0, end=(MAX_PAGES + 1) * H.PAGE_SIZE)

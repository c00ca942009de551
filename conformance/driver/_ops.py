"""Operations as data, on the driver side: what the CPU, the OOM reaper and the device do.

A driver case is a :class:`World` (the vmas and the CPU page table, as on the core side), the
encoding the driver asks HMM for, and a sequence of the operations below. Every operation is a
frozen value with a JSON form that round-trips exactly; the case file is the core's
``hmm-conformance/case`` format with ``"side": "driver"`` and an ``"encoding"``.

Why the CPU's changes are separate operations (start, entries, end) rather than one composite
step: the rules the driver side is about live *inside* an invalidation window. A device fault
that takes its snapshot before a window and checks it after (DRV-4), a fault that snapshots
inside the window, and the device page table while a window is open (which DRV-5 does not judge)
are reachable only if other operations can run between a start and its end. The generator still
emits a whole CPU change from one rule, so the pattern is not lost when Hypothesis switches
rules off, and the shrinker and the report still see every step.

Faults are named by small integers chosen by whoever writes the case, as ranges are on the core
side; the candidate keeps its own fault objects behind them for the length of one case.

A driver case read from JSON is held to the core's rules for a world and its operations (see
``conformance.core._ops``), and to one of its own: the encoding is one a driver can decode.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Final, TypeAlias, final

from hmm_ref import PAGE_SIZE, HmmError, PfnEncoding, Pte

from .._case import (
    CASE_FORMAT,
    CASE_VERSION,
    REPLAY_FIELDS,
    CaseFormatError,
    Json,
    Operation,
    World,
    mapped_by,
    span,
)
from .._case_json import (
    Reader,
    case_encoding,
    case_pte,
    check_format,
    encoding_to_json,
    op_to_json,
    parse_op,
    shown,
    world_from_json,
    world_to_json,
)

__all__ = [
    "DRIVER_SIDE",
    "CpuSetEntry",
    "DriverCase",
    "DriverOp",
    "DriverOperation",
    "Exit",
    "NotifierEnd",
    "NotifierStart",
    "RunFault",
    "StartFault",
    "StepFault",
    "driver_case_from_json",
    "driver_case_to_json",
    "driver_decodes",
    "driver_op_from_json",
    "driver_op_to_json",
    "side_of",
]

#: The value of a case file's ``"side"`` field for driver cases (core cases have none).
DRIVER_SIDE: Final = "driver"


class DriverOperation(Operation):
    """Base of every driver-side operation."""


def _pte_text(pte: Pte) -> str:
    return pte.kind.value + (f" pfn {pte.pfn:#x}{' rw' if pte.write else ''}" if pte.mapped else "")


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class NotifierStart(DriverOperation):
    """``mmu_notifier_invalidate_range_start``: blockable (the CPU is about to change the
    entries) or not (the OOM reaper)."""

    name: ClassVar[str] = "invalidate_start"
    start: int
    end: int
    blockable: bool

    def __post_init__(self) -> None:
        span("invalidate_start", self.start, self.end)

    def describe(self) -> str:
        who = "CPU: blockable" if self.blockable else "OOM reaper: non-blockable"
        return f"{who} invalidate_start [{self.start:#x}, {self.end:#x})"


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class NotifierEnd(DriverOperation):
    """``mmu_notifier_invalidate_range_end``, after a start that succeeded (END-3)."""

    name: ClassVar[str] = "invalidate_end"
    start: int
    end: int

    def __post_init__(self) -> None:
        span("invalidate_end", self.start, self.end)

    def describe(self) -> str:
        return f"invalidate_end [{self.start:#x}, {self.end:#x})"


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class CpuSetEntry(DriverOperation):
    """The CPU changes one entry (unmap, migrate, write-protect), inside an open window."""

    name: ClassVar[str] = "set_pte"
    addr: int
    pte: Pte

    def __post_init__(self) -> None:
        span("set_pte", self.addr, self.addr + PAGE_SIZE)

    def describe(self) -> str:
        return f"CPU sets the entry of {self.addr:#x} to {_pte_text(self.pte)}"


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class Exit(DriverOperation):
    """The process exits (``exit_mmap``): HMM's release calls the driver's, then every vma is
    unmapped with no notifier left to hear of it."""

    name: ClassVar[str] = "exit"

    def describe(self) -> str:
        return "the process exits (release, then every page unmapped)"


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class StartFault(DriverOperation):
    """The device faults on ``[start, end)``: the driver starts its fault path (no step yet)."""

    name: ClassVar[str] = "start_fault"
    fault: int
    start: int
    end: int

    def __post_init__(self) -> None:
        span("start_fault", self.start, self.end)

    def describe(self) -> str:
        return f"device fault f{self.fault} over [{self.start:#x}, {self.end:#x}) starts"


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class StepFault(DriverOperation):
    """Fault ``fault`` takes its next step (snapshot, lock, check and commit, or unlock)."""

    name: ClassVar[str] = "step_fault"
    fault: int

    def describe(self) -> str:
        return f"fault f{self.fault} takes a step"


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class RunFault(DriverOperation):
    """Fault ``fault`` takes steps until it finishes, or until its next step would block."""

    name: ClassVar[str] = "run_fault"
    fault: int

    def describe(self) -> str:
        return f"fault f{self.fault} runs"


#: Every driver operation: a closed union, dispatched with ``match`` and ``assert_never``.
DriverOp: TypeAlias = (
    NotifierStart | NotifierEnd | CpuSetEntry | Exit | StartFault | StepFault | RunFault
)


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class DriverCase:
    """A complete driver-side test: a world, the driver's encoding, and the operations."""

    world: World
    encoding: PfnEncoding
    ops: tuple[DriverOp, ...] = field(default=())


def driver_op_to_json(op: DriverOp) -> Json:
    """The JSON form of ``op``: an object with ``"op"`` naming the kind, then its fields."""
    return op_to_json(op)


#: Each driver operation's parser (its fields are its dataclass's).
_PARSERS: Final[Mapping[type[DriverOp], Callable[[Reader], DriverOp]]] = {
    NotifierStart: lambda r: NotifierStart(
        start=r.address("start"), end=r.address("end"), blockable=r.boolean("blockable")
    ),
    NotifierEnd: lambda r: NotifierEnd(start=r.address("start"), end=r.address("end")),
    CpuSetEntry: lambda r: CpuSetEntry(addr=r.address("addr"), pte=case_pte(r.obj("pte"))),
    Exit: lambda r: Exit(),
    StartFault: lambda r: StartFault(
        fault=r.handle("fault"), start=r.address("start"), end=r.address("end")
    ),
    StepFault: lambda r: StepFault(fault=r.handle("fault")),
    RunFault: lambda r: RunFault(fault=r.handle("fault")),
}


def driver_op_from_json(data: object, where: str = "op") -> DriverOp:
    """Parse one driver operation; :class:`CaseFormatError` names the field that is wrong."""
    return parse_op(data, where, _PARSERS, "driver operation")


def driver_decodes(encoding: PfnEncoding) -> bool:
    """True if a driver can read entries of ``encoding``: ``hmm_pfn_to_pfn`` shifts an entry
    right by ``pfn_shift`` without masking, so every flag must lie below the pfn (nouveau and
    amdgpu keep theirs there); with a flag above it, even the reference driver misreads pages."""
    return max(encoding.flags) < 1 << encoding.pfn_shift


def driver_case_to_json(case: DriverCase) -> Json:
    """The JSON form of a driver case: the core's case format, with ``"side": "driver"``."""
    return {
        "format": CASE_FORMAT,
        "version": CASE_VERSION,
        "side": DRIVER_SIDE,
        "world": world_to_json(case.world),
        "encoding": encoding_to_json(case.encoding),
        "ops": [driver_op_to_json(op) for op in case.ops],
    }


def side_of(data: object) -> str:
    """Which side a case file is for: ``"driver"``, or ``"core"`` when it says nothing."""
    if isinstance(data, dict):
        side = data.get("side", "core")
        if side in ("core", DRIVER_SIDE):
            return str(side)
        raise CaseFormatError(f"case.side: {shown(side)} is not 'core' or {DRIVER_SIDE!r}")
    return "core"


def _op_in_world(op: DriverOp, mapped: Callable[[int], bool], where: str) -> DriverOp:
    """``op``, if what it names exists in the world (``mapped`` says which addresses do); a
    fault may lie outside every vma, as a fault the driver must refuse."""
    if isinstance(op, CpuSetEntry) and not mapped(op.addr):
        raise CaseFormatError(
            f"{where}.addr: {op.addr:#x} is in no vma of the world; the CPU changes entries "
            "only inside one"
        )
    return op


def driver_case_from_json(data: object) -> DriverCase:
    """Parse a driver case written by :func:`driver_case_to_json`, or a replay file that holds
    one: as :func:`conformance.core._ops.case_from_json`, with the encoding the driver decodes."""
    reader = Reader(data, "case")
    check_format(reader)
    if side_of(reader.data) != DRIVER_SIDE:
        raise CaseFormatError(f"case.side: expected {DRIVER_SIDE!r}; this is a core case")
    reader.only(
        ("format", "version", "side", "world", "encoding", "ops", *REPLAY_FIELDS), "a driver case"
    )
    try:
        encoding = case_encoding(reader.obj("encoding"))
    except HmmError as error:
        raise CaseFormatError(f"case.encoding: {error}") from None
    if not driver_decodes(encoding):
        raise CaseFormatError(
            f"case.encoding.flags: {max(encoding.flags):#x} lies above the pfn, which starts "
            f"at bit {encoding.pfn_shift}; drivers read the pfn as entry >> pfn_shift, so every "
            "flag lies below it"
        )
    world = world_from_json(reader._get("world"), "case.world")
    mapped = mapped_by(world)
    ops = tuple(
        _op_in_world(driver_op_from_json(item, f"case.ops[{i}]"), mapped, f"case.ops[{i}]")
        for i, item in enumerate(reader.array("ops"))
    )
    return DriverCase(world=world, encoding=encoding, ops=ops)

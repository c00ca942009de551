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
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Final, final

from hmm_ref import PAGE_SIZE, HmmError, PfnEncoding, Pte

from ._ops import (
    CASE_FORMAT,
    CASE_VERSION,
    CaseFormatError,
    Json,
    Operation,
    World,
    _encoding_from_json,
    _encoding_to_json,
    _pte_from_json,
    _pte_to_json,
    _Reader,
    _span,
    world_from_json,
    world_to_json,
)

__all__ = [
    "DRIVER_SIDE",
    "CpuSetEntry",
    "DriverCase",
    "DriverOperation",
    "Exit",
    "NotifierEnd",
    "NotifierStart",
    "RunFault",
    "StartFault",
    "StepFault",
    "driver_case_from_json",
    "driver_case_to_json",
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
        _span("invalidate_start", self.start, self.end)

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
        _span("invalidate_end", self.start, self.end)

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
        _span("set_pte", self.addr, self.addr + PAGE_SIZE)

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
        _span("start_fault", self.start, self.end)

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


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class DriverCase:
    """A complete driver-side test: a world, the driver's encoding, and the operations."""

    world: World
    encoding: PfnEncoding
    ops: tuple[DriverOperation, ...] = field(default=())


def driver_op_to_json(op: DriverOperation) -> Json:
    """The JSON form of ``op``: an object with ``"op"`` naming the kind."""
    data: Json = {"op": op.name}
    if isinstance(op, NotifierStart):
        data.update(start=op.start, end=op.end, blockable=op.blockable)
    elif isinstance(op, NotifierEnd):
        data.update(start=op.start, end=op.end)
    elif isinstance(op, CpuSetEntry):
        data.update(addr=op.addr, pte=_pte_to_json(op.pte))
    elif isinstance(op, StartFault):
        data.update(fault=op.fault, start=op.start, end=op.end)
    elif isinstance(op, StepFault | RunFault):
        data.update(fault=op.fault)
    else:
        assert isinstance(op, Exit), f"unknown driver operation {op!r}"
    return data


_PARSERS: Final[Mapping[str, Callable[[_Reader], DriverOperation]]] = {
    "invalidate_start": lambda r: NotifierStart(
        start=r.integer("start"), end=r.integer("end"), blockable=r.boolean("blockable")
    ),
    "invalidate_end": lambda r: NotifierEnd(start=r.integer("start"), end=r.integer("end")),
    "set_pte": lambda r: CpuSetEntry(addr=r.integer("addr"), pte=_pte_from_json(r.obj("pte"))),
    "exit": lambda r: Exit(),
    "start_fault": lambda r: StartFault(
        fault=r.integer("fault"), start=r.integer("start"), end=r.integer("end")
    ),
    "step_fault": lambda r: StepFault(fault=r.integer("fault")),
    "run_fault": lambda r: RunFault(fault=r.integer("fault")),
}


def driver_op_from_json(data: object, where: str = "op") -> DriverOperation:
    """Parse one driver operation; :class:`CaseFormatError` names the field that is wrong."""
    reader = _Reader(data, where)
    name = reader.string("op")
    parser = _PARSERS.get(name)
    if parser is None:
        raise CaseFormatError(
            f"{where}.op: unknown driver operation {name!r}; one of {', '.join(_PARSERS)}"
        )
    try:
        return parser(reader)
    except CaseFormatError as error:
        if str(error).startswith(where):
            raise
        raise CaseFormatError(f"{where}: {error}") from None
    except (ValueError, HmmError) as error:  # a bad pte value
        raise CaseFormatError(f"{where}: {error}") from None


def driver_case_to_json(case: DriverCase) -> Json:
    """The JSON form of a driver case: the core's case format, with ``"side": "driver"``."""
    return {
        "format": CASE_FORMAT,
        "version": CASE_VERSION,
        "side": DRIVER_SIDE,
        "world": world_to_json(case.world),
        "encoding": _encoding_to_json(case.encoding),
        "ops": [driver_op_to_json(op) for op in case.ops],
    }


def side_of(data: object) -> str:
    """Which side a case file is for: ``"driver"``, or ``"core"`` when it says nothing."""
    if isinstance(data, dict):
        side = data.get("side", "core")
        if side in ("core", DRIVER_SIDE):
            return str(side)
        raise CaseFormatError(f"case.side: {side!r} is not 'core' or {DRIVER_SIDE!r}")
    return "core"


def driver_case_from_json(data: object) -> DriverCase:
    """Parse a driver case written by :func:`driver_case_to_json` (extra fields are ignored)."""
    reader = _Reader(data, "case")
    if reader.string("format") != CASE_FORMAT:
        raise CaseFormatError(f"case.format: expected {CASE_FORMAT!r}; is this a replay file?")
    version = reader.integer("version")
    if version != CASE_VERSION:
        raise CaseFormatError(
            f"case.version: {version} is not {CASE_VERSION}, the one this tool reads"
        )
    if side_of(reader.data) != DRIVER_SIDE:
        raise CaseFormatError(f"case.side: expected {DRIVER_SIDE!r}; this is a core case")
    try:
        encoding = _encoding_from_json(reader.obj("encoding"))
    except HmmError as error:
        raise CaseFormatError(f"case.encoding: {error}") from None
    ops = tuple(
        driver_op_from_json(item, f"case.ops[{i}]") for i, item in enumerate(reader.array("ops"))
    )
    return DriverCase(
        world=world_from_json(reader.data.get("world"), "case.world"), encoding=encoding, ops=ops
    )

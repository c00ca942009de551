"""The case format: the vocabulary every side's cases share, below the sides.

A case is a :class:`World` (the vmas and the initial CPU page table) and a sequence of
operations, each a frozen value of one side (:class:`Operation` is the base of all of them) with
a JSON form that round-trips exactly. This module holds what the sides' case files have in
common: the header, the world, spans, entries and encodings, and the typed reader whose errors
name the path of the field that is wrong. Each side's module of operations (``_ops`` for the
core, ``_driver_ops`` for drivers) builds on it and never on the other side's.

A case read from JSON is held to what the engine assumes of every case, so that a bad file is the
file's fault and never shows up as a CRASH of the candidate: the world has at least one vma, in
address order without overlaps, and entries only inside them; handles and addresses fit the wire
protocol (C ints, 64-bit words); spans are small enough for the model and the reference to walk
page by page; and no object carries a field this format does not define.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar, Final, TypeAlias, TypeVar, final

from hmm_ref import PAGE_SIZE, PTE_NONE, HmmError, PfnEncoding, Pte, PteKind

__all__ = [
    "ADDRESS_END",
    "CASE_FORMAT",
    "CASE_VERSION",
    "FIELD_CODECS",
    "MAX_ERRNO",
    "MAX_HANDLE",
    "MAX_PAGES",
    "MAX_VMAS",
    "REPLAY_FIELDS",
    "CaseFormatError",
    "CpuState",
    "Json",
    "Operation",
    "Reader",
    "VmaSpec",
    "World",
    "case_encoding",
    "case_pte",
    "check_format",
    "encoding_from_json",
    "encoding_to_json",
    "exact_overlap",
    "mapped_by",
    "op_to_json",
    "parse_op",
    "pte_from_json",
    "pte_to_json",
    "shown",
    "span",
    "world_from_json",
    "world_to_json",
]

CASE_FORMAT: Final = "hmm-conformance/case"
CASE_VERSION: Final = 1

Json: TypeAlias = dict[str, Any]

#: The largest mirror, range or fault number and vma index: the wire's C servers read handles
#: into an ``int``.
MAX_HANDLE: Final = 2**31 - 1
#: Addresses are unsigned 64-bit words on the wire, so every span ends at or below this.
ADDRESS_END: Final = 2**64 - PAGE_SIZE
#: The most pages a vma, a snapshot, a window or a fault covers, and the vmas of a world together:
#: the model and the reference walk every page of each (``HmmRange`` allocates one entry per
#: page up front), so a larger span would exhaust memory, a crash that is the case's fault.
MAX_PAGES: Final = 1 << 16
#: The most vmas a world has: the model looks a page up in the vmas one by one.
MAX_VMAS: Final = 256
#: A mirror's callback answers 0 or a negative errno; the kernel's errnos end at ``MAX_ERRNO``.
MAX_ERRNO: Final = 4095
#: Fields a replay file carries beside the case (``conformance._report.replay_document``): what
#: the failing run recorded. ``replay`` reads the profile; the others are for the reader.
REPLAY_FIELDS: Final = ("profile", "seed", "depth", "candidate", "failure")


class CaseFormatError(ValueError):
    """A case, world or operation in JSON form is malformed; the message says where and why."""


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class VmaSpec:
    """One vma of the world: ``[start, end)`` and its permissions."""

    start: int
    end: int
    read: bool = True
    write: bool = True
    special: bool = False

    @property
    def npages(self) -> int:
        return (self.end - self.start) // PAGE_SIZE


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class World:
    """The CPU side at the start of a case: vmas in address order and the non-empty entries."""

    vmas: tuple[VmaSpec, ...]
    ptes: tuple[tuple[int, Pte], ...] = ()


class Operation:
    """Base of every operation; ``name`` is the tag of its JSON form."""

    name: ClassVar[str]

    def describe(self) -> str:
        """One line a reader understands without the JSON."""
        raise NotImplementedError


def span(name: str, start: int, end: int, *, empty: bool = False) -> None:
    if start % PAGE_SIZE or end % PAGE_SIZE or start < 0:
        raise CaseFormatError(f"{name}: [{start:#x}, {end:#x}) is not page aligned")
    if end < start or (end == start and not empty):
        raise CaseFormatError(
            f"{name}: [{start:#x}, {end:#x}) is {'reversed' if end < start else 'empty'}"
        )
    if end > ADDRESS_END:
        raise CaseFormatError(
            f"{name}: [{start:#x}, {end:#x}) ends above {ADDRESS_END:#x}, the last page end "
            "a 64-bit address holds"
        )
    if (end - start) // PAGE_SIZE > MAX_PAGES:
        raise CaseFormatError(
            f"{name}: [{start:#x}, {end:#x}) covers {(end - start) // PAGE_SIZE} pages; a span "
            f"covers at most {MAX_PAGES}"
        )


@final
class CpuState:
    """The CPU side of a case, owned by the harness; candidates see it as a ``CpuView``."""

    def __init__(self, world: World) -> None:
        self._vmas = world.vmas
        self._ptes: dict[int, Pte] = {addr: pte for addr, pte in world.ptes if pte != PTE_NONE}

    @property
    def vmas(self) -> Sequence[VmaSpec]:
        return self._vmas

    def pte(self, addr: int) -> Pte:
        return self._ptes.get(addr - addr % PAGE_SIZE, PTE_NONE)

    def entries(self) -> tuple[tuple[int, Pte], ...]:
        """The non-empty entries, in address order."""
        return tuple(sorted(self._ptes.items()))

    def set_pte(self, addr: int, pte: Pte) -> None:
        if pte == PTE_NONE:
            self._ptes.pop(addr, None)
        else:
            self._ptes[addr] = pte


def exact_overlap(start: int, end: int, low: int, high: int) -> bool:
    """True if ``[start, end)`` and ``[low, high)`` share a page."""
    return start < high and low < end


# -- JSON ------------------------------------------------------------------------------------


def shown(value: object) -> str:
    """``repr(value)``, cut short: an error message stays one readable line whatever the input."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class Reader:
    """Typed access to one JSON object, with errors that name the path."""

    def __init__(self, data: object, where: str) -> None:
        if not isinstance(data, dict):
            raise CaseFormatError(f"{where}: expected an object, got {type(data).__name__}")
        self.data: dict[str, object] = data
        self.where = where

    def _get(self, key: str) -> object:
        if key not in self.data:
            raise CaseFormatError(f"{self.where}: missing field {key!r}")
        return self.data[key]

    def integer(self, key: str) -> int:
        value = self._get(key)
        if not isinstance(value, int) or isinstance(value, bool):
            raise CaseFormatError(f"{self.where}.{key}: expected an integer, got {shown(value)}")
        return value

    def handle(self, key: str) -> int:
        """A mirror, range or fault number, or a vma index."""
        value = self.integer(key)
        if not 0 <= value <= MAX_HANDLE:
            raise CaseFormatError(
                f"{self.where}.{key}: {shown(value)} is out of range; give 0 to {MAX_HANDLE}"
            )
        return value

    def address(self, key: str) -> int:
        """A virtual address: an unsigned 64-bit word (alignment is the span's to check)."""
        value = self.integer(key)
        if not 0 <= value <= ADDRESS_END:
            raise CaseFormatError(
                f"{self.where}.{key}: {shown(value)} is not an address; give 0 to {ADDRESS_END:#x}"
            )
        return value

    def boolean(self, key: str, default: bool | None = None) -> bool:
        if default is not None and key not in self.data:
            return default
        value = self._get(key)
        if not isinstance(value, bool):
            raise CaseFormatError(f"{self.where}.{key}: expected true or false, got {shown(value)}")
        return value

    def string(self, key: str) -> str:
        value = self._get(key)
        if not isinstance(value, str):
            raise CaseFormatError(f"{self.where}.{key}: expected a string, got {shown(value)}")
        return value

    def array(self, key: str) -> Sequence[object]:
        value = self._get(key)
        if not isinstance(value, list):
            raise CaseFormatError(f"{self.where}.{key}: expected a list, got {shown(value)}")
        return value

    def obj(self, key: str) -> Reader:
        return Reader(self._get(key), f"{self.where}.{key}")

    def only(self, allowed: Sequence[str], what: str) -> None:
        """Refuse a field outside ``allowed``: a misspelt field would otherwise be ignored."""
        for key in self.data:
            if key not in allowed:
                raise CaseFormatError(
                    f"{self.where}: unknown field {shown(key)}; {what} has {', '.join(allowed)}"
                )


def _ints(items: Sequence[object], where: str) -> tuple[int, int, int]:
    numbers = [i for i in items if isinstance(i, int) and not isinstance(i, bool)]
    if len(numbers) != 3 or len(items) != 3:
        raise CaseFormatError(f"{where}: expected three integers, got {shown(list(items))}")
    return numbers[0], numbers[1], numbers[2]


def pte_to_json(pte: Pte) -> Json:
    if pte.mapped:
        return {"kind": pte.kind.value, "pfn": pte.pfn, "write": pte.write}
    return {"kind": pte.kind.value}


def pte_from_json(reader: Reader) -> Pte:
    kind_name = reader.string("kind")
    try:
        kind = PteKind(kind_name)
    except ValueError:
        kinds = ", ".join(k.value for k in PteKind)
        raise CaseFormatError(
            f"{reader.where}.kind: {shown(kind_name)} is not one of {kinds}"
        ) from None
    if kind in (PteKind.PRESENT, PteKind.DEVICE_PRIVATE):
        return Pte(kind=kind, pfn=reader.integer("pfn"), write=reader.boolean("write", False))
    return Pte(kind=kind)


def case_pte(reader: Reader) -> Pte:
    """An entry in a case: :func:`pte_from_json`, with no field its kind does not have."""
    pte = pte_from_json(reader)
    if pte.mapped:
        reader.only(("kind", "pfn", "write"), f"a {pte.kind.value} entry")
    else:
        reader.only(("kind",), f"a {pte.kind.value} entry")
    return pte


def encoding_to_json(encoding: PfnEncoding) -> Json:
    return {
        "flags": list(encoding.flags),
        "values": list(encoding.values),
        "pfn_shift": encoding.pfn_shift,
    }


def encoding_from_json(reader: Reader) -> PfnEncoding:
    return PfnEncoding(
        flags=_ints(reader.array("flags"), f"{reader.where}.flags"),
        values=_ints(reader.array("values"), f"{reader.where}.values"),
        pfn_shift=reader.integer("pfn_shift"),
    )


def case_encoding(reader: Reader) -> PfnEncoding:
    """An encoding in a case: :func:`encoding_from_json`, with no other field."""
    reader.only(("flags", "values", "pfn_shift"), "an encoding")
    return encoding_from_json(reader)


_Op = TypeVar("_Op", bound=Operation)


def op_to_json(op: Operation) -> Json:
    """The JSON form of any operation: ``"op"`` naming its kind, then its dataclass fields in
    order, each written by :data:`FIELD_CODECS` (a plain value when its type is not there)."""
    data: Json = {"op": op.name}
    for field_ in dataclasses.fields(op):  # type: ignore[arg-type]
        encode = FIELD_CODECS.get(str(field_.type))
        value = getattr(op, field_.name)
        data[field_.name] = value if encode is None else encode(value)
    return data


def _replies_to_json(replies: tuple[tuple[int, int], ...]) -> Json:
    return {str(mirror): reply for mirror, reply in replies}


#: How an operation's field is written to JSON, by its type as the dataclass declares it.
FIELD_CODECS: Final[Mapping[str, Callable[[Any], Json]]] = MappingProxyType(
    {
        "PfnEncoding": encoding_to_json,
        "Pte": pte_to_json,
        "tuple[tuple[int, int], ...]": _replies_to_json,
    }
)


def parse_op(
    data: object,
    where: str,
    parsers: Mapping[type[_Op], Callable[[Reader], _Op]],
    kind: str,
) -> _Op:
    """One operation of ``parsers`` (by class): its kind, then no field its class does not
    have, then its fields."""
    reader = Reader(data, where)
    name = reader.string("op")
    by_name = {cls.name: cls for cls in parsers}
    if name not in by_name:
        raise CaseFormatError(
            f"{where}.op: unknown {kind} {shown(name)}; one of {', '.join(by_name)}"
        )
    cls = by_name[name]
    fields = [field_.name for field_ in dataclasses.fields(cls)]  # type: ignore[arg-type]
    reader.only(("op", *fields), f"{'an' if name[0] in 'aeiou' else 'a'} {name} operation")
    try:
        return parsers[cls](reader)
    except CaseFormatError as error:
        if str(error).startswith(where):
            raise
        raise CaseFormatError(f"{where}: {error}") from None
    except (ValueError, HmmError) as error:  # a bad pte or encoding value
        raise CaseFormatError(f"{where}: {error}") from None


def mapped_by(world: World) -> Callable[[int], bool]:
    """Whether an address lies in a vma of ``world``, whose vmas are in address order."""
    starts = [vma.start for vma in world.vmas]

    def mapped(addr: int) -> bool:
        index = bisect.bisect_right(starts, addr) - 1
        return index >= 0 and addr < world.vmas[index].end

    return mapped


def world_to_json(world: World) -> Json:
    """The JSON form of a world."""
    return {
        "vmas": [
            {"start": v.start, "end": v.end, "read": v.read, "write": v.write, "special": v.special}
            for v in world.vmas
        ],
        "ptes": [{"addr": addr, "pte": pte_to_json(pte)} for addr, pte in world.ptes],
    }


def _vmas_from_json(items: Sequence[object], where: str) -> tuple[VmaSpec, ...]:
    if not items:
        raise CaseFormatError(f"{where}: no vma; a world has at least one, which snapshots name")
    if len(items) > MAX_VMAS:
        raise CaseFormatError(f"{where}: {len(items)} vmas; a world has at most {MAX_VMAS}")
    vmas: list[VmaSpec] = []
    for index, item in enumerate(items):
        at = f"{where}[{index}]"
        vma = Reader(item, at)
        vma.only(("start", "end", "read", "write", "special"), "a vma")
        spec = VmaSpec(
            start=vma.address("start"),
            end=vma.address("end"),
            read=vma.boolean("read", True),
            write=vma.boolean("write", True),
            special=vma.boolean("special", False),
        )
        try:
            span("vma", spec.start, spec.end)
        except CaseFormatError as error:
            raise CaseFormatError(f"{at}: {error}") from None
        # The reference keeps its vmas sorted (mmap) and the model indexes them as written:
        # only in address order do both mean the same vma by one index.
        if vmas and spec.start < vmas[-1].end:
            raise CaseFormatError(
                f"{at}: [{spec.start:#x}, {spec.end:#x}) starts below the end of vma {index - 1} "
                f"({vmas[-1].end:#x}); vmas are in address order and do not overlap"
            )
        vmas.append(spec)
    pages = sum(vma.npages for vma in vmas)
    if pages > MAX_PAGES:
        raise CaseFormatError(f"{where}: {pages} pages in all; a world maps at most {MAX_PAGES}")
    return tuple(vmas)


def world_from_json(data: object, where: str = "world") -> World:
    """Parse a world; :class:`CaseFormatError` if it is malformed or not one a case can run in."""
    reader = Reader(data, where)
    reader.only(("vmas", "ptes"), "a world")
    world = World(vmas=_vmas_from_json(reader.array("vmas"), f"{where}.vmas"))
    mapped = mapped_by(world)
    ptes: dict[int, Pte] = {}
    for index, item in enumerate(reader.array("ptes")):
        at = f"{where}.ptes[{index}]"
        entry = Reader(item, at)
        entry.only(("addr", "pte"), "an entry")
        addr = entry.address("addr")
        if addr % PAGE_SIZE:
            raise CaseFormatError(f"{at}.addr: {addr:#x} is not page aligned")
        if not mapped(addr):
            raise CaseFormatError(f"{at}.addr: {addr:#x} is in no vma; entries map vma pages")
        if addr in ptes:
            raise CaseFormatError(f"{at}.addr: {addr:#x} has an entry already; give one a page")
        try:
            ptes[addr] = case_pte(entry.obj("pte"))
        except ValueError as error:  # a pfn out of range, or one on an entry without a page
            if isinstance(error, CaseFormatError):
                raise
            raise CaseFormatError(f"{at}.pte: {error}") from None
    return World(vmas=world.vmas, ptes=tuple(ptes.items()))


def check_format(reader: Reader) -> None:
    """The tag and version every case file starts with."""
    if reader.string("format") != CASE_FORMAT:
        raise CaseFormatError(f"case.format: expected {CASE_FORMAT!r}; is this a replay file?")
    version = reader.integer("version")
    if version != CASE_VERSION:
        raise CaseFormatError(
            f"case.version: {shown(version)} is not {CASE_VERSION}, the one this tool reads"
        )

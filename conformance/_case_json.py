"""The case format's JSON: a typed reader whose errors name the path of the field that is
wrong, and the codecs of the parts every side's cases share (entries, encodings, the world, an
operation's fields, the header). The format itself is :mod:`conformance._case`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Final, TypeVar

from hmm_ref import PAGE_SIZE, HmmError, PfnEncoding, Pte, PteKind

from ._case import (
    ADDRESS_END,
    CASE_FORMAT,
    CASE_VERSION,
    MAX_HANDLE,
    MAX_PAGES,
    MAX_VMAS,
    CaseFormatError,
    Json,
    Operation,
    VmaSpec,
    World,
    mapped_by,
    span,
)

__all__ = [
    "FIELD_CODECS",
    "Reader",
    "case_encoding",
    "case_pte",
    "check_format",
    "encoding_from_json",
    "encoding_to_json",
    "op_to_json",
    "parse_op",
    "pte_from_json",
    "pte_to_json",
    "shown",
    "world_from_json",
    "world_to_json",
]


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
FIELD_CODECS: Final[Mapping[str, Callable[[Any], Any]]] = MappingProxyType(
    {
        "PfnEncoding": encoding_to_json,
        "Pte": pte_to_json,
        "tuple[tuple[int, int], ...]": _replies_to_json,
        "tuple[int, ...]": list,
        "tuple[tuple[int, FaultOutcome], ...]": lambda pairs: [
            [addr, outcome.value] for addr, outcome in pairs
        ],
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

"""A candidate's own state, as a value: what the exhaustive search merges on besides the model.

Two sequences that leave the model in the same state may leave the candidate in different
ones: a flag a failed start left set, a counter that counted what the model did not, a list in
another order. Merging them on the model alone then continues only the first, and a shortest
counterexample reached through the second is lost. So the search keys each state on the model
and on the candidate's own state too, and merges two sequences only when both agree.

A candidate in process is an object graph, and :func:`own_state` walks it into a hashable value
as the stateful software model checkers do with a program's heap (Java PathFinder's state
matching, CMC's hashing of a C program's state): attributes by name, containers by content,
each object numbered at its first visit, so that sharing and cycles are part of the value too.
What the harness handed the candidate (the CPU view, a mirror's ops, a driver's environment)
is not the candidate's: it becomes the label the harness gave it, so that its own history (the
calls it recorded) does not keep apart states the candidate cannot tell apart.

A candidate may say what its state is instead, with a ``search_state()`` method: the search
walks what it returns. The harness's own proxies do so (an in-process proxy gives its inner
candidate; a candidate over the wire, whose state is in another process, gives None), and so
can a candidate whose state the walk cannot see, such as one in C: what it returns is all the
search merges on besides the model, so it must hold everything the candidate's next answers
depend on, or ``--every-sequence`` is the only sure search.

Sound for a deterministic candidate whose answers depend on nothing but the state walked (not
on class attributes, module globals or memory outside Python): two sequences with the same
model state and the same own state then have the same futures, step for step.
"""

from __future__ import annotations

import enum
import types
from collections.abc import Hashable, Mapping
from typing import Any, Final, TypeAlias

__all__ = ["Handed", "handing", "own_state"]

#: How the walk takes an object of each kind (:func:`_work_out`).
_VALUE, _DECLARED, _SEQUENCE, _MAPPING, _SET, _METHOD, _CODE, _OBJECT = range(8)

_SCALARS: Final = (type(None), bool, int, float, complex, str, bytes, enum.Enum)
_CODE_KINDS: Final = (
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodDescriptorType,
    types.ModuleType,
    type,
)


#: :func:`_work_out` for each type met, worked out once.
_HOW: Final[dict[type, int]] = {}


#: The kinds the walk takes by their base class, in this order.
_BY_BASE: Final[tuple[tuple[tuple[type, ...], int], ...]] = (
    (_CODE_KINDS, _CODE),
    ((list, tuple), _SEQUENCE),
    ((dict,), _MAPPING),
    ((set, frozenset), _SET),
    ((types.MethodType,), _METHOD),
)


def _work_out(kind: type) -> int:
    """How the walk takes an object of ``kind``."""
    params = getattr(kind, "__dataclass_params__", None)
    if issubclass(kind, _SCALARS) or (params is not None and params.frozen and params.eq):
        return _VALUE  # a frozen dataclass is a value, compared and hashed by its fields
    for bases, how in _BY_BASE:
        if issubclass(kind, bases):
            return how
    return _DECLARED if callable(getattr(kind, "search_state", None)) else _OBJECT


#: What the harness handed a candidate, by ``id``: each object (kept, so that its id stays its
#: own) with the label it stands for in a candidate's state.
Handed: TypeAlias = Mapping[int, tuple[object, Hashable]]


def handing(**labelled: object) -> dict[int, tuple[object, Hashable]]:
    """What the harness hands a candidate at the start of a case, by the labels given: an
    executor adds what it hands later (a mirror's ops)."""
    return {id(thing): (thing, label) for label, thing in labelled.items()}


def own_state(candidate: object, given: Handed) -> Hashable:
    """The state of ``candidate`` as a hashable value; what the harness ``given`` it stands
    for itself by its label."""
    return _Walk(given).of(candidate)


class _Walk:
    def __init__(self, given: Handed) -> None:
        self.given = given
        #: Objects met so far, by id, with their number: a second meeting is a reference.
        self.met: dict[int, int] = {}

    def of(self, thing: object) -> Hashable:
        how = _HOW.get(type(thing))
        if how is None:
            how = _HOW[type(thing)] = _work_out(type(thing))
        if how == _VALUE:
            return thing  # hashable, compared by value
        handed = self.given.get(id(thing))
        if handed is not None:
            return ("given", handed[1])
        seen = self.met.get(id(thing))
        if seen is not None:
            return ("seen", seen)
        self.met[id(thing)] = len(self.met)
        return self._inside(how, thing)

    def _inside(self, how: int, thing: Any) -> Hashable:
        kind = type(thing).__qualname__
        if how == _SEQUENCE:
            return (kind, tuple(map(self.of, thing)))
        if how == _MAPPING:
            keys, values = map(self.of, thing.keys()), map(self.of, thing.values())
            return (kind, tuple(zip(keys, values, strict=True)))
        if how == _SET:
            return (kind, frozenset(map(self.of, thing)))
        if how == _OBJECT:
            return (kind, self._fields(thing))
        return self._code_or_declared(how, kind, thing)

    def _code_or_declared(self, how: int, kind: str, thing: Any) -> Hashable:
        """What a candidate says its state is, a bound method, or a function, class or module
        (its name, and what a function's closure holds)."""
        if how == _DECLARED:
            return ("declared", kind, self.of(thing.search_state()))
        if how == _METHOD:
            return ("method", thing.__func__.__qualname__, self.of(thing.__self__))
        cells = getattr(thing, "__closure__", None) or ()
        name = getattr(thing, "__qualname__", kind)
        return (kind, name, self.of([cell.cell_contents for cell in cells]))

    def _fields(self, thing: object) -> tuple[Hashable, ...]:
        attributes = getattr(thing, "__dict__", {})
        fields = list(zip(attributes.keys(), map(self.of, attributes.values()), strict=True))
        for name in _slots(type(thing)):
            if hasattr(thing, name):
                fields.append((name, self.of(getattr(thing, name))))
        return tuple(fields)


#: :func:`_slots` for each type met, worked out once.
_SLOTS: Final[dict[type, tuple[str, ...]]] = {}


def _slots(kind: type) -> tuple[str, ...]:
    """The names of the slots of ``kind`` and its bases, as ``getattr`` takes them."""
    names = _SLOTS.get(kind)
    if names is None:
        names = _SLOTS[kind] = _slot_names(kind)
    return names


def _slot_names(kind: type) -> tuple[str, ...]:
    names: list[str] = []
    for cls in kind.__mro__:
        slots = cls.__dict__.get("__slots__", ())
        for slot in (slots,) if isinstance(slots, str) else slots:
            private = slot.startswith("__") and not slot.endswith("__")
            name = f"_{cls.__name__.lstrip('_')}{slot}" if private else slot  # its real name
            if name not in ("__dict__", "__weakref__"):
                names.append(name)
    return tuple(names)

"""The registry of protocol sides: one row per side (:class:`~conformance._side.Side`).

The command line's ``--side``, the plugin's ``--hmm-side`` and a replay file's ``side`` field
name a side here. A new side is one package that defines its :class:`Side` and one row below;
:func:`register` adds one at run time (a plugin's, or a test's).
"""

from __future__ import annotations

from typing import Any, Final

from ._case import CaseFormatError
from ._case_json import shown
from ._errors import AdapterError
from ._side import Side
from .core._side import CORE
from .driver._side import DRIVER

__all__ = ["SIDES", "register", "side_named", "side_of"]

#: Every side, by name, the default first.
SIDES: Final[dict[str, Side[Any, Any, Any, Any]]] = {
    CORE.name: CORE,
    DRIVER.name: DRIVER,
}


def register(side: Side[Any, Any, Any, Any]) -> None:
    """Add ``side`` to the registry (a name already taken is refused)."""
    if side.name in SIDES:
        raise ValueError(f"a side named {side.name!r} is registered already")
    SIDES[side.name] = side


def side_named(name: str) -> Side[Any, Any, Any, Any]:
    """The side called ``name``; :class:`AdapterError` naming the sides there are if none is."""
    try:
        return SIDES[name]
    except KeyError:
        raise AdapterError(f"no side {name!r}: the sides are {', '.join(SIDES)}") from None


def side_of(document: object) -> Side[Any, Any, Any, Any]:
    """The side a case file is for: its ``side`` field, the core when it has none;
    :class:`CaseFormatError` naming the sides there are if it names none of them."""
    name = document.get("side", CORE.name) if isinstance(document, dict) else CORE.name
    if isinstance(name, str) and name in SIDES:
        return SIDES[name]
    names = [repr(known) for known in SIDES]
    listed = f"{', '.join(names[:-1])} or {names[-1]}" if len(names) > 1 else names[0]
    raise CaseFormatError(f"case.side: {shown(name)} is not {listed}")

"""A mirror whose answers are scripted and whose calls are recorded: for tests and demos.

The kernel gives a mirror's callbacks no way to be observed from outside; a conformance check,
a unit test or a walk-through needs exactly that. :class:`ScriptedMirrorOps` answers
``sync_cpu_device_pagetables`` with a fixed value or a function of the update, and appends every
call, with the mirror's name, to a journal that several mirrors may share, so the order in which
HMM called them is visible.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, final

from ._hmm import HmmUpdate

__all__ = ["MirrorEvent", "ScriptedMirrorOps"]


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class MirrorEvent:
    """One callback that HMM made: ``sync`` with its update, or ``release``."""

    mirror: str
    kind: Literal["sync", "release"]
    update: HmmUpdate | None = None
    #: What the callback answered (``sync`` only).
    reply: int = 0


@final
class ScriptedMirrorOps:
    """Mirror ops that answer ``reply`` (an int, or a function of the update) and record calls."""

    def __init__(
        self,
        name: str = "mirror",
        *,
        reply: int | Callable[[HmmUpdate], int] = 0,
        journal: list[MirrorEvent] | None = None,
    ) -> None:
        self.name = name
        self.reply = reply
        #: Every call to this mirror, oldest first (shared with others if a journal was given).
        self.journal: list[MirrorEvent] = journal if journal is not None else []

    def __repr__(self) -> str:
        return f"<ScriptedMirrorOps {self.name!r}>"

    @property
    def updates(self) -> list[HmmUpdate]:
        """The updates this mirror received, oldest first."""
        return [
            event.update
            for event in self.journal
            if event.mirror == self.name and event.update is not None
        ]

    @property
    def releases(self) -> int:
        """How many times this mirror's release op was called."""
        return sum(
            1 for event in self.journal if event.mirror == self.name and event.kind == "release"
        )

    def sync_cpu_device_pagetables(self, update: HmmUpdate) -> int:
        reply = self.reply(update) if callable(self.reply) else self.reply
        self.journal.append(MirrorEvent(mirror=self.name, kind="sync", update=update, reply=reply))
        return reply

    def release(self) -> None:
        self.journal.append(MirrorEvent(mirror=self.name, kind="release"))

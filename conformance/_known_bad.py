"""A side's catalogue of known-bad candidates, which ``hmm-conformance catalogue`` runs.

Each side gives its :class:`Catalogue` as its ``catalogue``: a table of :class:`KnownBad`
candidates, each with the rules it must be caught against, the length of its shortest
counterexample and its origin (a bug of the kernel's history, or a mutation). The command runs
each through the random engine and, for a side with an exhaustive engine, finds its shortest
counterexample in the scope; the tests demand that each is caught and shrunk to that length.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Generic, TypeVar, final

__all__ = ["Catalogue", "KnownBad", "entry_name"]

CandidateT = TypeVar("CandidateT")


def entry_name(cls: type) -> str:
    """A catalogue entry's name from its class's: ``SleepsWhenNotBlockable`` ->
    ``sleeps-when-not-blockable``."""
    return "".join(f"-{c.lower()}" if c.isupper() else c for c in cls.__name__).lstrip("-")


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class KnownBad(Generic[CandidateT]):
    """One known-bad candidate: its name, the rules it must be caught against, its origin.

    ``graded`` marks an entry that breaks no MUST rule: it must conform, with its rules
    graded (a SHOULD latitude taken), not fail.
    """

    name: str
    make: Callable[[], CandidateT]
    rules: frozenset[str]
    #: The length of a shortest counterexample (recorded from the exhaustive engine where the
    #: side has one, worked out by hand where not; a test checks it); 0 for a graded entry.
    shortest: int
    origin: str
    graded: bool = False
    #: Rules of the entry whose own shortest counterexample is longer than ``shortest``, with
    #: that length: a bug that shows in two ways may break one of them in fewer operations,
    #: and the minimiser keeps the rule a case broke, so a run that meets the bug the other
    #: way first can shrink no further than this.
    shortest_by_rule: tuple[tuple[str, int], ...] = ()

    def shortest_for(self, broken: Collection[str], shortest: int | None) -> int | None:
        """The length a case that broke ``broken`` can shrink to at best: ``shortest`` (the
        entry's, or what a search found), unless every rule of the entry it broke has a
        longer shortest of its own (:attr:`shortest_by_rule`), then the least of those."""
        mine = [rule for rule in broken if rule in self.rules]
        longer = dict(self.shortest_by_rule)
        if shortest is None or not mine or any(rule not in longer for rule in mine):
            return shortest
        return min(longer[rule] for rule in mine)


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class Catalogue(Generic[CandidateT]):
    """A side's known-bad candidates, and how the command speaks of them."""

    entries: tuple[KnownBad[CandidateT], ...]
    #: What the entries are, in the plural ("cores", "drivers").
    plural: str
    #: What their failing cases are called ("counterexamples", "driver counterexamples").
    counterexamples: str = "counterexamples"
    #: What the closing line adds when every entry was caught (say, how a graded one was).
    caught_note: str = ""

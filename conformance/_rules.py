"""The rule catalogue: every specification rule's ID, level and one-line statement, which side
checks it, and when a run leaves it out.

docs/spec.md states each rule in full, with its kernel source and the code that implements and
checks it; this table is the same catalogue as data, for the oracle, the reports and the tests
that keep the two in step. What decides whether a rule is in force in a run is stated here once,
as tables (:data:`OWNERS`, :data:`GATES`) and one function (:func:`out_of_force`): the engines,
the oracles and the reports ask here.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, final

__all__ = [
    "GATES",
    "OWNERS",
    "RULES",
    "RULES_BY_ID",
    "Level",
    "Profile",
    "Rule",
    "out_of_force",
    "rules_of",
]


@final
class Profile(enum.Enum):
    """Which rules are in force."""

    #: The seed's behaviour: MUST and MAY rules; seed-defect sequences are not generated.
    SEED = "seed"
    #: Also the SEED-DEFECT rules: their sequences are generated and the later fixes demanded.
    STRICT = "strict"


@final
class Level(enum.Enum):
    """How a rule binds a candidate."""

    #: The seed always does it; doing otherwise fails.
    MUST = "MUST"
    #: Latitude: the seed picks one behaviour, a candidate may pick another listed one.
    MAY = "MAY"
    #: The seed does something later kernels fixed; only the strict profile demands the fix.
    SEED_DEFECT = "SEED-DEFECT"
    #: Graded, never failed.
    SHOULD = "SHOULD"


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    """One rule: ``id`` such as ``INV-5``, its level, and a one-line statement."""

    id: str
    level: Level
    title: str

    @property
    def group(self) -> str:
        """The rule's group: ``REG``, ``INV``, ``END``, ``RNG``, ``REL``, ``MN`` or ``DRV``."""
        return self.id.split("-")[0]

    @property
    def side(self) -> str | None:
        """The side whose runs check the rule (:data:`OWNERS`; None for a group it does not
        list, such as a side's rules added at run time)."""
        return OWNERS.get(self.group)


def _rule(rule_id: str, level: Level, title: str) -> Rule:
    return Rule(id=rule_id, level=level, title=title)


M, Y, D, S = Level.MUST, Level.MAY, Level.SEED_DEFECT, Level.SHOULD

RULES: tuple[Rule, ...] = (
    _rule("REG-1", M, "register without ops returns -EINVAL and changes nothing"),
    _rule("REG-2", M, "a registered mirror takes part in every invalidation start"),
    _rule(
        "REG-3", M, "an unregistered mirror is never called again; unregistering twice is a no-op"
    ),
    _rule("REG-4", Y, "mirrors are called newest first (seed) or in another order"),
    _rule("REG-5", D, "register after unregistering one of several mirrors must succeed"),
    _rule("INV-1", M, "each called mirror gets exactly this update, at most once per start"),
    _rule("INV-2", M, "blockable start calls every mirror, ignores answers, returns 0"),
    _rule("INV-3", M, "non-blockable start passes blockable=False to every mirror it calls"),
    _rule("INV-4", M, "non-blockable start returns -EAGAIN if a called mirror returned -EAGAIN"),
    _rule("INV-5", M, "no spurious failure: -EAGAIN only from a mirror's -EAGAIN, non-blockable"),
    _rule("INV-6", M, "a start that returns 0 has called every registered mirror"),
    _rule("INV-7", Y, "after a mirror's -EAGAIN the rest are skipped (seed) or still called"),
    _rule("INV-8", M, "answers other than 0 and -EAGAIN change neither result nor loop"),
    _rule("INV-9", M, "overlapping ranges are invalid before any mirror callback runs"),
    _rule("END-1", M, "invalidate_range_end calls no mirror"),
    _rule("END-2", M, "invalidate_range_end invalidates overlapping ranges too"),
    _rule("END-3", M, "end never follows a non-blockable start that returned -EAGAIN"),
    _rule("RNG-1", M, "a snapshot registers a valid range encoded with its own encoding"),
    _rule("RNG-2", M, "bad bounds -EINVAL, unreadable -EPERM (NONE), special -EINVAL (SPECIAL)"),
    _rule("RNG-3", M, "an invalidation marks overlapping ranges invalid and clears the overlap"),
    _rule("RNG-4", M, "a range that neither overlaps nor touches the update is unchanged"),
    _rule("RNG-5", Y, "a range the update only touches below is invalidated (seed) or left"),
    _rule("RNG-6", M, "valid is sticky until range_done"),
    _rule("RNG-7", M, "range_done returns valid and unregisters the range"),
    _rule("RNG-8", M, "range_done True means every entry matches the CPU page table now"),
    _rule("RNG-9", M, "range_done twice, on an unknown or on an empty range is a usage error"),
    _rule("FLT-1", M, "a fault is refused as a snapshot is, and faults nothing"),
    _rule("FLT-2", M, "the pages asked for, and only they, are faulted, first to last"),
    _rule("FLT-3", M, "a fault returning 0 registers a valid range encoding the faulted table"),
    _rule("FLT-4", M, "retry -EBUSY, failure -EFAULT; NONE from the failing page; unregistered"),
    _rule("FLT-5", M, "non-blocking faults allow retry and do not wait; blocking ones may wait"),
    _rule("FLT-6", D, "a blocking fault never drops mmap_sem (no retry allowed)"),
    _rule("REL-1", M, "release calls each mirror's release once; no callback afterwards"),
    _rule("REL-2", Y, "release order newest first (seed) or another"),
    _rule("REL-3", D, "ranges registered at release are invalid afterwards"),
    _rule("MN-1", M, "the chain calls every notifier after a failure and returns the last error"),
    _rule("MN-2", M, "the OOM reaper skips failed vmas without end, retries 10 times, gives up"),
    _rule("DRV-1", M, "a non-blockable callback does not sleep; it answers -EAGAIN instead"),
    _rule("DRV-2", M, "a callback that returns 0 leaves no device entry in the update's span"),
    _rule("DRV-3", M, "a callback answers -EAGAIN only when not blockable"),
    _rule(
        "DRV-4", M, "device entries are committed only from a snapshot whose range_done was True"
    ),
    _rule("DRV-5", M, "outside invalidations, device entries match the CPU's, with no more rights"),
    _rule("DRV-6", S, "no -EAGAIN when there is nothing to do in the update's span"),
    _rule("DRV-7", M, "no lock is kept across a return but a fault's D; no step waits forever"),
)

RULES_BY_ID: Mapping[str, Rule] = MappingProxyType({rule.id: rule for rule in RULES})


#: The side whose runs check each group of rules: ``core`` runs check an HMM core, ``driver``
#: runs a mirror driver. The MN rules (the notifier chain and the OOM reaper around HMM) are the
#: reference's own: hmm_ref's tests check them, and no candidate's run does.
OWNERS: Final[Mapping[str, str | None]] = MappingProxyType(
    {
        "REG": "core",
        "INV": "core",
        "END": "core",
        "RNG": "core",
        "FLT": "core",
        "REL": "core",
        "MN": None,
        "DRV": "driver",
    }
)

#: The capability (as a candidate declares it) without which a rule's sequences are never
#: generated: the rule is then out of force, and shows as skipped.
GATES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "INV-9": "observe-in-callback",
        **{f"FLT-{n}": "fault" for n in range(1, 7)},
        "REL-1": "release",
        "REL-2": "release",
        "REL-3": "release",
    }
)

#: The capability a candidate declares to be driven through the SEED-DEFECT rules' sequences.
STRICT_CAPABILITY: Final = "strict"


def rules_of(side: str) -> tuple[Rule, ...]:
    """The rules a run of ``side`` checks, in catalogue order."""
    return tuple(rule for rule in RULES if rule.side == side)


def out_of_force(rule: Rule, *, strict: bool, capabilities: Collection[str]) -> str | None:
    """Why ``rule`` is not checked in a run (a note for the report), or None if it is.

    ``strict`` is the strict profile; ``capabilities`` are what the candidate declared.
    """
    if rule.level is Level.SEED_DEFECT:
        if not strict:
            return "strict profile only"
        if STRICT_CAPABILITY not in capabilities:
            return "candidate did not declare the strict capability"
    gate = GATES.get(rule.id)
    if gate is not None and gate not in capabilities:
        return f"needs capability {gate}"
    return None

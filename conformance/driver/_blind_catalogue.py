"""The blind set's entries in the driver catalogue: each faulty driver, the rules that must
catch it, its shortest counterexample in the driver explorer's scope, and its origin.

The drivers are in ``_blind_callbacks.py`` and ``_blind_faults.py`` (their base, and how the set
was written, in ``_blind_base.py``). They were measured over five seeds at the default budget
before they were added; docs/benchmarks.md has the table.
"""

from __future__ import annotations

from typing import Final

from .._known_bad import KnownBad, entry_name
from . import _blind_callbacks as C
from . import _blind_faults as F
from ._adapter import DriverCandidate
from ._blind_base import BlindBase

__all__ = ["BLIND_CATALOGUE"]


def _blind(
    cls: type[BlindBase], shortest: int, rules: str, origin: str
) -> KnownBad[DriverCandidate]:
    """``SwallowEagain`` -> ``blind-swallow-eagain``."""
    return KnownBad(
        name=f"blind-{entry_name(cls)}",
        make=cls,
        rules=frozenset(rules.split()),
        shortest=shortest,
        origin=f"blind set: {origin}",
    )


BLIND_CATALOGUE: Final = (
    _blind(C.SleepNonBlockMutexLock, 3, "DRV-1", "mutex_lock where a trylock belongs (#20, #21)"),
    _blind(C.SleepFlushWaitManyEntries, 3, "DRV-1", "waits on the flush fence for big batches"),
    _blind(C.SleepWhenFaultInFlight, 2, "DRV-1", "waits for faults in flight to drain"),
    _blind(C.SleepSecondCall, 2, "DRV-1", "a sleeping allocation on the second callback"),
    _blind(C.EagainWhenBlockable, 3, "DRV-3 DRV-2", "-EAGAIN in blockable mode too (#8)"),
    _blind(C.BlockableTrylockEagain, 4, "DRV-3 DRV-2", "a trylock in blockable mode too"),
    _blind(C.SwallowEagain, 5, "DRV-2", "contention answered 0, nothing cleared (#13b)"),
    _blind(C.EagainAfterPartialClearNoLock, 5, "DRV-4", "clears a page without D, then -EAGAIN"),
    _blind(C.IllegalErrno, 5, "DRV-3", "-EBUSY where -EAGAIN belongs (#20)"),
    _blind(C.LockLeakEarlyReturn, 1, "DRV-7", "returns 0 early with D held (#14)"),
    _blind(C.LockLeakOnEagain, 3, "DRV-7", "-EAGAIN from the walk with D held (#14)"),
    _blind(C.ClearMissLastPage, 3, "DRV-2", "an exclusive end made inclusive"),
    _blind(C.ClearOffByOneStartNonBlockable, 3, "DRV-2", "non-blockable clears from start + 1"),
    _blind(C.ClearFirstPageOnly, 3, "DRV-2", "clears the first page only"),
    _blind(C.ExtentStartContainment, 3, "DRV-2", "extents matched by their start (#18)"),
    _blind(C.WriteProtectInsteadOfClear, 3, "DRV-2 DRV-4", "write-protects instead of clearing"),
    _blind(F.IgnoreRangeDone, 4, "DRV-4", "the result of range_done ignored (#17)"),
    _blind(F.InvertedRangeDone, 4, "DRV-4", "the result of range_done inverted (#17)"),
    _blind(F.CheckBeforeLock, 2, "DRV-4", "range_done called before D is taken"),
    _blind(F.CommitAfterUnlock, 2, "DRV-4", "commits after releasing D"),
    _blind(F.CommitAfterRelease, 4, "DRV-5", "commits after the mm's release (#12)"),
    _blind(F.ReleaseNoClear, 3, "DRV-5", "release leaves the device's mappings (#1)"),
    _blind(F.WriteWithoutFlag, 2, "DRV-5", "device write rights without the WRITE flag"),
    _blind(F.DecodeDefaultEncoding, 2, "DRV-5", "decodes with a fixed layout, not the range's"),
    _blind(F.ErrorValueAsPage, 2, "DRV-5", "an ERROR entry committed as a page (#22)"),
    _blind(F.RwsemReadInInvalidate, 3, "DRV-4", "the callback takes D's read side"),
)

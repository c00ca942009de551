"""The blind set's entries in the core catalogue: each faulty core, the rules that must catch it,
its shortest counterexample in the exhaustive engine's scope, and its origin.

The cores are in ``_blind_mirrors.py`` and ``_blind_ranges.py`` (their base, and how the set was
written, in ``_blind_base.py``), and the faulting ones in ``_blind_faults.py`` (their base in
``_blind_fault_base.py``), written the same way once ``hmm_vma_fault`` was modelled. They were
measured over five seeds at the default budget before they were added; ``python3 tasks.py
bench`` measures them again.
"""

from __future__ import annotations

from typing import Final

from .._known_bad import KnownBad
from . import _blind_faults as F
from . import _blind_mirrors as M
from . import _blind_ranges as R
from ._adapter import Candidate
from ._blind_base import BlindCore

__all__ = ["BLIND_CATALOGUE"]


def _blind(
    cls: type[BlindCore], shortest: int, rules: str, origin: str, **longer: int
) -> KnownBad[Candidate]:
    """An entry; ``longer`` gives the rules whose own shortest is longer (``REL_1=4``)."""
    return KnownBad(
        name=cls.name,
        make=cls,
        rules=frozenset(rules.split()),
        shortest=shortest,
        origin=f"blind set: {origin}",
        shortest_by_rule=tuple((rule.replace("_", "-"), n) for rule, n in longer.items()),
    )


BLIND_CATALOGUE: Final = (
    _blind(
        M.UnregisterUnknownPopsLast, 3, "REG-3 REG-2 INV-6 REL-1", "'not found' -1 used as an index"
    ),
    _blind(
        M.RegisterOpsCheckOnCreate, 2, "REG-1", "the NULL-ops test only when the hmm is created"
    ),
    _blind(
        M.StaleCallListOnRegister,
        3,
        "REG-2 INV-6 REL-1",
        "a mirror list copy only unregister refreshes",
        REL_1=4,  # a start before the register (3 operations); after release, 4
    ),
    _blind(
        M.UnregisterDeferredInWindow, 4, "REG-3", "unregister deferred while a window is open (#4)"
    ),
    _blind(
        M.RegisterRecreatesHmm, 3, "RNG-3 RNG-8", "the first register drops earlier snapshots (#11)"
    ),
    _blind(M.EagainLastAnswerWins, 3, "INV-4", "the last mirror's answer decides (#13b)"),
    _blind(
        M.EagainIgnoresBlockable, 2, "INV-2 INV-5 INV-6", "-EAGAIN honoured when blockable too (#8)"
    ),
    _blind(M.NonblockErrorReturned, 2, "INV-8 INV-5", "any negative answer returned (#20)"),
    _blind(M.HardErrorBreaksLoop, 3, "INV-8 INV-2 INV-6", "a hard error ends the mirror loop"),
    _blind(
        M.CachedUpdateBlockable, 3, "INV-1 INV-3", "a reused update keeps its first blockable (#5)"
    ),
    _blind(M.EagainRetriesMirror, 2, "INV-1", "a mirror retried after its -EAGAIN"),
    _blind(M.UpdateClippedToVma, 2, "INV-1 INV-6", "the update cut at the end of its first vma"),
    _blind(M.RangesAfterMirrors, 3, "INV-9", "mirrors told before the ranges (#7)"),
    _blind(
        M.NonblockFailSkipsRanges,
        3,
        "RNG-3 INV-9",
        "a failed non-blockable start skips the ranges (#6)",
    ),
    _blind(
        M.PassGuardLeaks, 3, "INV-6 INV-2 REG-2", "a guard left set on the -EAGAIN return (#14)"
    ),
    _blind(
        M.NonblockFailsOnLiveRange, 2, "INV-5", "non-blockable refused over a live snapshot (#21)"
    ),
    _blind(M.StickyEagainResult, 3, "INV-5", "an -EAGAIN result never reset (#13a)"),
    _blind(
        M.EndRetriesFailedMirrors, 3, "END-1", "end calls the mirrors that failed at start (#7)"
    ),
    _blind(
        M.EndOnlyRangesSeenAtStart, 3, "END-2 RNG-3 RNG-8", "end revisits only the start's ranges"
    ),
    _blind(M.EndDeferredToLastWindow, 4, "END-2 RNG-3", "only the last end invalidates (#16)"),
    _blind(
        M.ValidRestoredWhenQuiescent,
        3,
        "END-2 RNG-3 RNG-6 RNG-8",
        "valid again when no window is open (#16)",
    ),
    _blind(
        R.ClearIndexFromUpdateStart, 2, "RNG-3 END-2", "entries counted from the update's start"
    ),
    _blind(R.OverlapEndpointTest, 2, "RNG-3 END-2 RNG-8", "overlap as 'an endpoint is inside'"),
    _blind(R.RangePassStopsAtFirst, 3, "RNG-3 END-2", "the range pass stops at the first overlap"),
    _blind(R.SkipsAlreadyInvalid, 3, "RNG-3 END-2", "invalid ranges skipped, entries kept (#10)"),
    _blind(
        R.InvalidateWritesNoneValue, 2, "RNG-3 END-2", "values[NONE] written over the overlap (#10)"
    ),
    _blind(R.DevicePrivateLosesWrite, 1, "RNG-1 RNG-8", "device-private pages lose WRITE"),
    _blind(R.EncodeNoU64Truncation, 1, "RNG-1 RNG-8", "entries not cut to 64 bits"),
    _blind(R.MigrationAsError, 1, "RNG-1", "a migration entry encoded as ERROR (#22)"),
    _blind(R.PermBeforeSpecial, 1, "RNG-2", "read permission tested before special"),
    _blind(R.SnapshotToVmaEndRejected, 1, "RNG-2 RNG-1", "a snapshot to the vma's end refused"),
    _blind(R.SnapshotNeedsMirror, 1, "RNG-1 RNG-2", "a snapshot refused before any mirror"),
    _blind(R.FailedSnapshotStaysListed, 2, "RNG-2", "a failed snapshot left on the range list"),
    _blind(R.RangeDoneUnlinksByBounds, 4, "RNG-3 RNG-7", "range_done unlinks by bounds, not node"),
    _blind(R.RangeDoneTwiceQuiet, 3, "RNG-9", "a second range_done accepted"),
    _blind(R.ReleaseKeepsMirrorsLinked, 3, "REL-1", "release leaves the mirrors listed"),
    _blind(R.ReleaseUnlinksWhileIterating, 3, "REL-1", "release unlinks while it iterates (#1)"),
    _blind(R.ReleaseWalksRegistry, 3, "REL-1 REG-3", "release walks every mirror ever seen"),
    # hmm_vma_fault (the FLT rules), written blind after the fault was modelled
    _blind(
        F.ClearSkipsFailing,
        1,
        "FLT-4",
        "the clear starts after the failing page, its ERROR kept",
    ),
    _blind(F.ClearFromStart, 1, "FLT-4", "the error path clears the whole array"),
    _blind(F.ClearToError, 1, "FLT-4", "the error path fills values[ERROR], not NONE"),
    _blind(F.RequestsLeft, 1, "FLT-4", "the error path's clear is missing: the requests stay"),
    _blind(F.StaysRegistered, 1, "FLT-4 RNG-9", "the error path without range_done"),
    _blind(F.WriteRequestIgnored, 1, "FLT-2 FLT-3", "the WRITE request ignored"),
    _blind(F.WriteWithoutValid, 1, "FLT-2 FLT-3", "a WRITE bit alone faults"),
    _blind(F.WriteOnEveryFault, 1, "FLT-2 FLT-3", "FAULT_FLAG_WRITE on every fault"),
    _blind(F.DeviceUnrequested, 1, "FLT-2 FLT-3", "a device-private page faulted back unasked"),
    _blind(F.PoisonSkipped, 1, "FLT-4 FLT-3", "a poisoned entry marked but the walk goes on"),
    _blind(F.PoisonAsSwap, 1, "FLT-2 FLT-4", "no non-swap check: poison faulted like swap"),
    _blind(F.NowaitInverted, 1, "FLT-5", "RETRY_NOWAIT set from block"),
    _blind(F.BlockIgnored, 1, "FLT-5", "RETRY_NOWAIT always set"),
    _blind(F.NoRewalk, 1, "FLT-3", "no walk after a fault: the entry stays NONE"),
    _blind(F.StalePte, 1, "FLT-3", "the faulted page encoded from the entry before the fault"),
    _blind(F.ValidFalse, 1, "FLT-3", "valid never set by a fault"),
    _blind(F.EinvalZeroesRequests, 1, "FLT-1", "bounds -EINVAL zeroes the requests"),
    _blind(F.LastPageUnwalked, 1, "FLT-2 FLT-3 FLT-4", "the walk stops one page short"),
    _blind(
        F.EagainForDroppedLock,
        1,
        "FLT-4",
        "-EAGAIN for a dropped mmap_sem, as documented (#15)",
    ),
    _blind(F.RetryIsError, 1, "FLT-4", "any answer tested as an error before RETRY"),
    _blind(F.RetryFixInverted, 1, "FLT-5", "#15's fix backwards: retry only when blocking"),
    _blind(F.NowaitLost, 1, "FLT-5", "RETRY_NOWAIT never set"),
    _blind(F.MigrationAsError, 1, "FLT-2 FLT-3 FLT-4", "a migration entry taken as an error (#22)"),
    _blind(F.MigrationNotWaited, 1, "FLT-2 FLT-3", "a migration read as NONE, not waited for"),
    _blind(F.MigrationViaHandler, 1, "FLT-2", "a migration entry faulted like a swap entry"),
    _blind(F.RestartFromStart, 1, "FLT-2 FLT-3", "the walk restarts at the range's start"),
    _blind(F.RewalkKeepsRequest, 1, "FLT-2 FLT-3", "a page walked again keeps its first request"),
)

"""The driver side's public API: check a mirror driver against the DRV rules (docs/driver-side.md).

A driver candidate implements :class:`DriverCandidate`: it states itself in a
:class:`DriverHandshake` (with :class:`DriverCapability` values), gets a :class:`DriverEnv` per
case, and reports each fault's progress as a :class:`FaultView`. The reference drivers
(:func:`reference_driver`, :func:`reference_driver_rwsem`) implement it too.

:func:`start_driver` makes a candidate and reads its handshake, :func:`run_driver` checks it over
generated cases, :func:`explore_driver` over every sequence of a small :class:`DriverScope` up to
a depth, and :func:`replay_driver` runs one :class:`DriverCase` (the operations below, or a
replay file read with :func:`driver_case_from_json`) step by step. The command line's
``--side driver`` does the same.

The adapter protocol's names are also exported by :mod:`conformance` itself, next to the core
side's :class:`conformance.Candidate`.
"""

from ._adapter import (
    DRIVER_PROTOCOL_VERSION,
    DriverCandidate,
    DriverCapability,
    DriverEnv,
    DriverHandshake,
    FaultView,
)
from ._explore import DRIVER_SCOPE, DRIVER_WORLDS, DriverExploreResult, DriverScope, DriverWorld
from ._ops import (
    CpuSetEntry,
    DriverCase,
    DriverOperation,
    Exit,
    NotifierEnd,
    NotifierStart,
    RunFault,
    StartFault,
    StepFault,
    driver_case_from_json,
    driver_case_to_json,
)
from ._reference import ReferenceDriverCandidate, reference_driver, reference_driver_rwsem
from ._side import (
    DriverFailure,
    DriverRunResult,
    explore_driver,
    replay_driver,
    run_driver,
    start_driver,
)

__all__ = [
    "DRIVER_PROTOCOL_VERSION",
    "DRIVER_SCOPE",
    "DRIVER_WORLDS",
    "CpuSetEntry",
    "DriverCandidate",
    "DriverCapability",
    "DriverCase",
    "DriverEnv",
    "DriverExploreResult",
    "DriverFailure",
    "DriverHandshake",
    "DriverOperation",
    "DriverRunResult",
    "DriverScope",
    "DriverWorld",
    "Exit",
    "FaultView",
    "NotifierEnd",
    "NotifierStart",
    "ReferenceDriverCandidate",
    "RunFault",
    "StartFault",
    "StepFault",
    "driver_case_from_json",
    "driver_case_to_json",
    "explore_driver",
    "reference_driver",
    "reference_driver_rwsem",
    "replay_driver",
    "run_driver",
    "start_driver",
]

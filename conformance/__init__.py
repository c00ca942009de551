"""conformance: check implementations of the HMM mirror protocol against docs/spec.md.

The public surface: the adapter protocol a candidate implements (:class:`Candidate`,
:class:`Handshake`, :class:`Capability`, :class:`RangeView`, :class:`CpuView`, and the two
signals :class:`CandidateRejected` and :class:`CandidateWouldHang`), the reference candidate
(:func:`reference`), the C candidate (:func:`c_core`, :func:`c_core_wire`, :func:`c_core_with`),
the driver side's adapter protocol (:class:`DriverCandidate`, :class:`DriverHandshake`,
:class:`DriverCapability`, :class:`DriverEnv`, :class:`FaultView`) and its reference driver
(:func:`reference_driver`, :func:`reference_driver_rwsem`), the operations a case is made of,
the random engine (:func:`run`), the exhaustive one (:func:`explore`), and the command line
(:func:`main`).
The oracle's checks are in :mod:`conformance.oracle`, one per rule ID, and the whole driver side
(its engine and operations too) is in :mod:`conformance.driver`.
"""

from ._adapter import PROTOCOL_VERSION as PROTOCOL_VERSION
from ._adapter import AdapterError as AdapterError
from ._adapter import Candidate as Candidate
from ._adapter import CandidateRejected as CandidateRejected
from ._adapter import CandidateWouldHang as CandidateWouldHang
from ._adapter import Capability as Capability
from ._adapter import CpuView as CpuView
from ._adapter import Handshake as Handshake
from ._adapter import RangeView as RangeView
from ._ccore import c_core as c_core
from ._ccore import c_core_wire as c_core_wire
from ._ccore import c_core_with as c_core_with
from ._core_side import replay as replay
from ._core_side import run as run
from ._core_side import start as start
from ._counting import BUDGETS as BUDGETS
from ._counting import Budget as Budget
from ._driver_adapter import DRIVER_PROTOCOL_VERSION as DRIVER_PROTOCOL_VERSION
from ._driver_adapter import DriverCandidate as DriverCandidate
from ._driver_adapter import DriverCapability as DriverCapability
from ._driver_adapter import DriverEnv as DriverEnv
from ._driver_adapter import DriverHandshake as DriverHandshake
from ._driver_adapter import FaultView as FaultView
from ._driver_reference import ReferenceDriverCandidate as ReferenceDriverCandidate
from ._driver_reference import reference_driver as reference_driver
from ._driver_reference import reference_driver_rwsem as reference_driver_rwsem
from ._engine import RunResult as RunResult
from ._explore import SCOPE as SCOPE
from ._explore import ExploreResult as ExploreResult
from ._explore import Scope as Scope
from ._explore import explore as explore
from ._model import Profile as Profile
from ._ops import Case as Case
from ._ops import CaseFormatError as CaseFormatError
from ._ops import CoreOperation as CoreOperation
from ._ops import InvalidateEnd as InvalidateEnd
from ._ops import InvalidateStart as InvalidateStart
from ._ops import Observe as Observe
from ._ops import Operation as Operation
from ._ops import RangeDone as RangeDone
from ._ops import RegisterMirror as RegisterMirror
from ._ops import Release as Release
from ._ops import SetCpuEntry as SetCpuEntry
from ._ops import Snapshot as Snapshot
from ._ops import UnregisterMirror as UnregisterMirror
from ._ops import VmaSpec as VmaSpec
from ._ops import World as World
from ._ops import case_from_json as case_from_json
from ._ops import case_to_json as case_to_json
from ._reference import ReferenceCandidate as ReferenceCandidate
from ._reference import reference as reference
from ._side import Failure as Failure
from .cli import main as main

__all__ = [
    "BUDGETS",
    "DRIVER_PROTOCOL_VERSION",
    "PROTOCOL_VERSION",
    "SCOPE",
    "AdapterError",
    "Budget",
    "Candidate",
    "CandidateRejected",
    "CandidateWouldHang",
    "Capability",
    "Case",
    "CaseFormatError",
    "CoreOperation",
    "CpuView",
    "DriverCandidate",
    "DriverCapability",
    "DriverEnv",
    "DriverHandshake",
    "ExploreResult",
    "Failure",
    "FaultView",
    "Handshake",
    "InvalidateEnd",
    "InvalidateStart",
    "Observe",
    "Operation",
    "Profile",
    "RangeDone",
    "RangeView",
    "ReferenceCandidate",
    "ReferenceDriverCandidate",
    "RegisterMirror",
    "Release",
    "RunResult",
    "Scope",
    "SetCpuEntry",
    "Snapshot",
    "UnregisterMirror",
    "VmaSpec",
    "World",
    "c_core",
    "c_core_wire",
    "c_core_with",
    "case_from_json",
    "case_to_json",
    "explore",
    "main",
    "reference",
    "reference_driver",
    "reference_driver_rwsem",
    "replay",
    "run",
    "start",
]

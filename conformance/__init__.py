"""conformance: check implementations of the HMM mirror protocol against docs/spec.md.

The public surface: the adapter protocol a candidate implements (:class:`Candidate`,
:class:`Handshake`, :class:`Capability`, :class:`RangeView`, :class:`CpuView`, and the two
signals :class:`CandidateRejected` and :class:`CandidateWouldHang`), the reference candidate
(:func:`reference`), the C candidate (:func:`c_core`, :func:`c_core_wire`, :func:`c_core_with`),
the driver side's adapter protocol (:class:`DriverCandidate`, :class:`DriverHandshake`,
:class:`DriverCapability`, :class:`DriverEnv`, :class:`FaultView`) and its reference driver
(:func:`reference_driver`, :func:`reference_driver_rwsem`), the C driver (:func:`c_driver`,
:func:`c_driver_rwsem`, :func:`c_driver_wire`, :func:`c_driver_with`), the operations a case is
made of,
the random engine (:func:`run`), the exhaustive one (:func:`explore`), and the command line
(:func:`main`).
The oracle's checks are in :mod:`conformance.oracle`, one per rule ID, and the whole driver side
(its engine and operations too) is in :mod:`conformance.driver`.
"""

from ._counting import BUDGETS as BUDGETS
from ._counting import Budget as Budget
from ._engine import RunResult as RunResult
from ._side import Failure as Failure
from .ccore import c_core as c_core
from .ccore import c_core_wire as c_core_wire
from .ccore import c_core_with as c_core_with
from .cdriver import c_driver as c_driver
from .cdriver import c_driver_rwsem as c_driver_rwsem
from .cdriver import c_driver_wire as c_driver_wire
from .cdriver import c_driver_with as c_driver_with
from .cli import main as main
from .core import PROTOCOL_VERSION as PROTOCOL_VERSION
from .core import SCOPE as SCOPE
from .core import AdapterError as AdapterError
from .core import Candidate as Candidate
from .core import CandidateRejected as CandidateRejected
from .core import CandidateWouldHang as CandidateWouldHang
from .core import Capability as Capability
from .core import Case as Case
from .core import CaseFormatError as CaseFormatError
from .core import CoreOperation as CoreOperation
from .core import CpuView as CpuView
from .core import ExploreResult as ExploreResult
from .core import Faults as Faults
from .core import FaultSnapshot as FaultSnapshot
from .core import Handshake as Handshake
from .core import InvalidateEnd as InvalidateEnd
from .core import InvalidateStart as InvalidateStart
from .core import Observe as Observe
from .core import Operation as Operation
from .core import Profile as Profile
from .core import RangeDone as RangeDone
from .core import RangeView as RangeView
from .core import ReferenceCandidate as ReferenceCandidate
from .core import RegisterMirror as RegisterMirror
from .core import Release as Release
from .core import Scope as Scope
from .core import SetCpuEntry as SetCpuEntry
from .core import Snapshot as Snapshot
from .core import UnregisterMirror as UnregisterMirror
from .core import VmaSpec as VmaSpec
from .core import World as World
from .core import case_from_json as case_from_json
from .core import case_to_json as case_to_json
from .core import explore as explore
from .core import reference as reference
from .core import replay as replay
from .core import run as run
from .core import start as start
from .driver import DRIVER_PROTOCOL_VERSION as DRIVER_PROTOCOL_VERSION
from .driver import DriverCandidate as DriverCandidate
from .driver import DriverCapability as DriverCapability
from .driver import DriverEnv as DriverEnv
from .driver import DriverHandshake as DriverHandshake
from .driver import FaultView as FaultView
from .driver import ReferenceDriverCandidate as ReferenceDriverCandidate
from .driver import reference_driver as reference_driver
from .driver import reference_driver_rwsem as reference_driver_rwsem

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
    "FaultSnapshot",
    "FaultView",
    "Faults",
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
    "c_driver",
    "c_driver_rwsem",
    "c_driver_wire",
    "c_driver_with",
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

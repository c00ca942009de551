"""The core side's public API: check an HMM core against the REG, INV, END, RNG and REL rules.

A core candidate implements :class:`Candidate` (docs/writing-an-adapter.md): it states itself in
a :class:`Handshake` with :class:`Capability` values and shows its ranges and the CPU page table
as :class:`RangeView` and :class:`CpuView`. :func:`start` makes a candidate and reads its
handshake, :func:`run` checks it over generated cases, :func:`explore` over every sequence up to
a depth, and :func:`replay` runs one :class:`Case` (the operations below, or a replay file read
with :func:`case_from_json`) step by step. :func:`reference` is the reference core.

Every name here is also exported by :mod:`conformance` itself; the rules' checks are in
:mod:`conformance.oracle`.
"""

from ._adapter import PROTOCOL_VERSION as PROTOCOL_VERSION
from ._adapter import AdapterError as AdapterError
from ._adapter import Candidate as Candidate
from ._adapter import CandidateRejected as CandidateRejected
from ._adapter import CandidateWouldHang as CandidateWouldHang
from ._adapter import Capability as Capability
from ._adapter import CpuView as CpuView
from ._adapter import Faults as Faults
from ._adapter import Handshake as Handshake
from ._adapter import RangeView as RangeView
from ._explore import ExploreResult as ExploreResult
from ._model import Profile as Profile
from ._ops import Case as Case
from ._ops import CaseFormatError as CaseFormatError
from ._ops import CoreOperation as CoreOperation
from ._ops import FaultSnapshot as FaultSnapshot
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
from ._scope import SCOPE as SCOPE
from ._scope import Scope as Scope
from ._side import CoreFailure as CoreFailure
from ._side import CoreResult as CoreResult
from ._side import explore as explore
from ._side import replay as replay
from ._side import run as run
from ._side import start as start

__all__ = [
    "PROTOCOL_VERSION",
    "SCOPE",
    "AdapterError",
    "Candidate",
    "CandidateRejected",
    "CandidateWouldHang",
    "Capability",
    "Case",
    "CaseFormatError",
    "CoreFailure",
    "CoreOperation",
    "CoreResult",
    "CpuView",
    "ExploreResult",
    "FaultSnapshot",
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
    "RegisterMirror",
    "Release",
    "Scope",
    "SetCpuEntry",
    "Snapshot",
    "UnregisterMirror",
    "VmaSpec",
    "World",
    "case_from_json",
    "case_to_json",
    "explore",
    "reference",
    "replay",
    "run",
    "start",
]

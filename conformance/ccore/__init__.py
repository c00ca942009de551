"""The C candidate: the seed's HMM core written in kernel-style C, built from source at first use.

docs/c-candidate.md describes the C. :func:`c_core` runs it in process (cffi),
:func:`c_core_wire` over the wire protocol, :func:`c_core_with` makes either with compile-time
switches (the deliberate bugs of :data:`BUGS`, or the seed's own locking), and
:func:`build_server` builds the wire server and returns its path.
"""

from ._build import BUGS, build_server
from ._candidate import CCoreCandidate, LockStats, c_core, c_core_wire, c_core_with

__all__ = [
    "BUGS",
    "CCoreCandidate",
    "LockStats",
    "build_server",
    "c_core",
    "c_core_wire",
    "c_core_with",
]

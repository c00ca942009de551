"""The C driver: a reference mirror driver written in kernel-style C, built from source at first
use.

docs/c-candidate.md ("The C driver") describes the C. :func:`c_driver` runs it in process (cffi)
with a mutex for its driver lock, :func:`c_driver_rwsem` with a read/write semaphore,
:func:`c_driver_wire` over the wire protocol, :func:`c_driver_with` makes any build either way
(the deliberate bugs of :data:`BUGS`), and :func:`build_server` builds the wire server and
returns its path.
"""

from ._build import BUGS, build_server
from ._candidate import CDriverCandidate, c_driver, c_driver_rwsem, c_driver_wire, c_driver_with

__all__ = [
    "BUGS",
    "CDriverCandidate",
    "build_server",
    "c_driver",
    "c_driver_rwsem",
    "c_driver_wire",
    "c_driver_with",
]

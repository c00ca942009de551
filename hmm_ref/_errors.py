"""Errors, split by who is at fault.

- :class:`UsageError`: the *caller* broke the API contract at a point where the kernel would BUG,
  deadlock or corrupt its lists. The reference refuses the call and leaves its state exactly as it
  was, so a test can carry on after catching it.
- :class:`WouldLivelockError`: the *seed itself* would never return (REG-5). The reference says so
  instead of hanging, and leaves its state unchanged.

Kernel-level failures that the kernel reports as a return value (``-EINVAL``, ``-EAGAIN``, ...)
are return values here too, never exceptions.
"""

from __future__ import annotations

import enum
from typing import final

__all__ = ["HmmError", "UsageCode", "UsageError", "WouldLivelockError"]


class HmmError(Exception):
    """Root of every error that ``hmm_ref`` raises on purpose."""


@final
class UsageCode(enum.Enum):
    """What exactly the caller got wrong; stable, for tests and reports."""

    #: ``hmm_vma_range_done`` on a range that is not registered (never snapshotted, or failed).
    RANGE_NOT_REGISTERED = "range-not-registered"
    #: ``hmm_vma_range_done`` called a second time for one snapshot.
    RANGE_DONE_TWICE = "range-done-twice"
    #: ``hmm_vma_range_done`` on a range with ``end <= start`` (the kernel's ``BUG()``).
    RANGE_EMPTY = "range-empty"
    #: ``hmm_vma_get_pfns`` on a range that is already registered (a second list_add).
    RANGE_ALREADY_REGISTERED = "range-already-registered"
    #: ``hmm_mirror_register`` on a mirror that is already on a mirrors list.
    MIRROR_ALREADY_REGISTERED = "mirror-already-registered"
    #: An address or length that is not a multiple of the page size.
    UNALIGNED = "unaligned"
    #: A vma that overlaps another one, or an address outside every vma.
    BAD_ADDRESS = "bad-address"
    #: A pfn encoding that breaks the documented requirements of ``struct hmm_range``.
    BAD_ENCODING = "bad-encoding"
    #: A call that would take a lock that the calling context already holds.
    DEADLOCK = "deadlock"
    #: ``invalidate_range_end`` with no matching successful start (END-3).
    END_WITHOUT_START = "end-without-start"
    #: A call that needs a live mm after the mm's notifiers were released (process exit).
    MM_EXITED = "mm-exited"
    #: A notifier registered twice on one mm, or unregistered from an mm it is not on.
    NOTIFIER_STATE = "notifier-state"


class UsageError(HmmError):
    """The caller broke the API contract; nothing was changed.

    ``function`` names the kernel function whose contract was broken, ``code`` says how, and the
    message says what the kernel would have done and what to do instead.
    """

    def __init__(self, code: UsageCode, function: str, message: str) -> None:
        self.code = code
        self.function = function
        self.message = message
        super().__init__(f"{function}: {message} [{code.value}]")


class WouldLivelockError(HmmError):
    """The seed would loop forever here; the reference raises instead and changes nothing.

    Raised by ``hmm_mirror_register`` when the mm's ``struct hmm`` was poisoned by unregistering
    one of several mirrors (kernel-semantics §3.2 rule 7, bug history #3, rule REG-5).
    """

    def __init__(self, function: str, message: str) -> None:
        self.function = function
        self.message = message
        super().__init__(f"{function}: {message}")

"""The kernel around a driver that is not Python objects: its locks and HMM's two calls.

A driver over the wire (:mod:`conformance.driver._wire`) or in C in process
(:mod:`conformance.cdriver`) cannot make ``hmm_ref`` locks or hold ``hmm_ref`` ranges itself;
it names them, and :class:`DriverHost` keeps them for one case, in the case's
:class:`DriverEnv`:

- :meth:`DriverHost.lock` performs a lock primitive on the harness's lock of that name, made on
  the env's monitor at its first call, so the monitor records it in whatever non-block section
  the harness opened (DRV-1, DRV-4 and DRV-7 judge it as for a Python driver);
  :meth:`DriverHost.sleep` records a sleep point;
- :meth:`DriverHost.get_pfns` and :meth:`DriverHost.range_done` go through the env's recorded
  HMM calls, on an :class:`hmm_ref.HmmRange` kept by the driver's number for it;
- :meth:`DriverHost.news` says which of those ranges HMM has written since the driver last got
  them (an invalidation's range pass clears their entries, which in the kernel is a write into
  the driver's own array), so the driver's copy can be brought up to date.

Each raises what ``hmm_ref`` raises for the same misuse (:class:`hmm_ref.WouldBlockError`,
:class:`hmm_ref.DriverUsageError`, :class:`hmm_ref.UsageError`), so the executor judges a driver
that met one exactly as an in-process driver that raised there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final, final

from hmm_ref import (
    DriverUsageCode,
    DriverUsageError,
    HmmRange,
    Mutex,
    RwSemaphore,
    Spinlock,
    UsageCode,
    UsageError,
)

from ._adapter import DriverEnv

__all__ = ["LOCK_PRIMITIVES", "SLEEP_POINTS", "DriverHost"]

_Lock = Mutex | Spinlock | RwSemaphore

#: Each lock primitive: the kind of lock it works on, and the method of ``hmm_ref``'s lock.
LOCK_PRIMITIVES: Final[Mapping[str, tuple[type[_Lock], str]]] = {
    "mutex_lock": (Mutex, "lock"),
    "mutex_trylock": (Mutex, "trylock"),
    "mutex_unlock": (Mutex, "unlock"),
    "spin_lock": (Spinlock, "lock"),
    "spin_trylock": (Spinlock, "trylock"),
    "spin_unlock": (Spinlock, "unlock"),
    "down_read": (RwSemaphore, "down_read"),
    "down_write": (RwSemaphore, "down_write"),
    "down_read_trylock": (RwSemaphore, "down_read_trylock"),
    "down_write_trylock": (RwSemaphore, "down_write_trylock"),
    "up_read": (RwSemaphore, "up_read"),
    "up_write": (RwSemaphore, "up_write"),
}

#: The sleep points a driver may report: a wait for a fence or a flush, and ``might_sleep``.
SLEEP_POINTS: Final = ("wait", "might_sleep")


@final
class DriverHost:
    """One case's locks and ranges of a driver that names them; see the module docstring."""

    def __init__(self) -> None:
        self._env: DriverEnv | None = None
        self._locks: dict[str, _Lock] = {}
        self._ranges: dict[int, HmmRange] = {}
        #: The entries the driver last got of each range HMM may still write into.
        self._seen: dict[int, tuple[int, ...]] = {}

    def begin(self, env: DriverEnv | None) -> None:
        """Start a case in ``env`` (None: the case is over): no lock and no range yet."""
        self._env, self._locks, self._ranges, self._seen = env, {}, {}, {}

    @property
    def env(self) -> DriverEnv:
        assert self._env is not None, "the driver calls the kernel only in a case: begin() first"
        return self._env

    def lock(self, primitive: str, name: str, owner: str) -> bool | None:
        """``primitive`` (one of :data:`LOCK_PRIMITIVES`) by ``owner`` on the lock ``name``:
        what the trylocks return, None for the others."""
        kind, method = LOCK_PRIMITIVES[primitive]
        lock = self._locks.get(name)
        if lock is None:
            lock = self._locks[name] = kind(name, self.env.monitor)
        elif not isinstance(lock, kind):
            raise DriverUsageError(
                DriverUsageCode.WRONG_KIND,
                primitive,
                f"{name} is a {type(lock).__name__}, not a {kind.__name__}: one name is one lock",
            )
        operation: Callable[[str], bool | None] = getattr(lock, method)
        return operation(owner)

    def sleep(self, primitive: str, what: str, owner: str) -> None:
        """A sleep point (one of :data:`SLEEP_POINTS`): a wait for ``what``, or might_sleep."""
        monitor = self.env.monitor
        (monitor.wait if primitive == "wait" else monitor.might_sleep)(what, owner=owner)

    def get_pfns(self, number: int, start: int, end: int) -> tuple[int, tuple[int, ...]]:
        """``hmm_vma_get_pfns`` of ``[start, end)`` into the driver's range ``number``: its
        result, and the range's entries when it is 0."""
        env = self.env
        known = self._ranges.get(number)
        if known is not None and known.registered:
            raise UsageError(
                UsageCode.RANGE_ALREADY_REGISTERED,
                "hmm_vma_get_pfns",
                f"range r{number} is still registered: call range_done on it first, or "
                "snapshot into a range of another number",
            )
        vma = env.mm.find_vma(start)
        if vma is None:
            raise UsageError(
                UsageCode.BAD_ADDRESS,
                "hmm_vma_get_pfns",
                f"no vma holds {start:#x}: a driver snapshots only inside a vma",
            )
        range_ = self._ranges[number] = HmmRange(
            vma=vma, start=start, end=end, encoding=env.encoding
        )
        self._seen.pop(number, None)
        ret = env.hmm_vma_get_pfns(range_)
        if ret:
            return ret, ()
        self._seen[number] = range_.pfns
        return ret, range_.pfns

    def range_done(self, number: int) -> bool:
        """``hmm_vma_range_done`` on the driver's range ``number``."""
        range_ = self._ranges.get(number)
        if range_ is None:
            raise UsageError(
                UsageCode.RANGE_NOT_REGISTERED,
                "hmm_vma_range_done",
                f"range r{number} was never snapshotted in this case",
            )
        valid = self.env.hmm_vma_range_done(range_)
        self._seen.pop(number, None)  # no longer registered: HMM writes it no more
        return valid

    def news(self) -> dict[int, tuple[int, ...]]:
        """The entries HMM wrote into the driver's ranges since it last got them, by number;
        from now on the driver is taken to have them."""
        changed: dict[int, tuple[int, ...]] = {}
        for number, seen in self._seen.items():
            now = self._ranges[number].pfns
            if now != seen:
                changed[number] = self._seen[number] = now
        return changed

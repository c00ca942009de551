"""The C driver in process (cffi), and the factories of every build of it.

``conformance.cdriver:c_driver`` drives the driver compiled by :mod:`conformance.cdriver._build`
in process, ``c_driver_rwsem`` the same driver with a read/write semaphore for its lock,
``c_driver_wire`` its wire server; :func:`c_driver_with` makes any build either way.

The C calls the kernel around it through three ``extern "Python"`` functions, C function
pointers into this module: its lock primitives, ``hmm_vma_get_pfns`` and ``hmm_vma_range_done``.
The harness owns what they act on, so each is done here on the harness's objects: a lock call
on the lock of that name made on the env's monitor (a ``Mutex``, ``Spinlock`` or
``RwSemaphore`` as the primitive says, made at its first call), and the HMM calls through the
env on an :class:`hmm_ref.HmmRange` kept by the driver's range number. The monitor thus records
the very calls a Python driver's locks would, under the same names and owners as the reference
driver's (``dmirror-mutex.lock``, ``dmirror-mutex/fault1``), for DRV-1, DRV-4 and DRV-7. HMM
writes into a driver's ranges (an invalidation's range pass clears entries of every registered
range); before each request that runs the driver, what it wrote is copied into the C's arrays,
as the wire server gets it in a request's ``ranges``.

An exception raised in a callback (``WouldBlockError`` when a blocking lock is held, a
``UsageError`` of HMM) is kept and the C is told the call failed; it unwinds (``longjmp``) to
the entry point of the request, and when the C call returns the very exception is raised again,
so the executor judges it as it would a Python driver's.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, final

from hmm_ref import (
    DeviceEntry,
    DriverUsageCode,
    DriverUsageError,
    FaultStep,
    HmmUpdate,
    Mutex,
    RwSemaphore,
    Spinlock,
    UsageCode,
    UsageError,
)

from .._version import package_version
from ..ccore._build import handle_owner, load_module
from ..driver._adapter import (
    DRIVER_PROTOCOL_VERSION,
    DriverCandidate,
    DriverCapability,
    DriverEnv,
    DriverHandshake,
    FaultView,
)
from ..driver._host import DriverHost
from ..driver._wire import driver_exec_factory
from ._build import module_for, server_for, switches_for

if TYPE_CHECKING:
    from _hmm_cdriver import FFI, CData, Handle, IntOut, Lib, PfnArray

__all__ = [
    "CDriverCandidate",
    "Native",
    "c_driver",
    "c_driver_rwsem",
    "c_driver_wire",
    "c_driver_with",
    "load_driver",
]

_Lock = Mutex | Spinlock | RwSemaphore


@final
@dataclass(frozen=True, slots=True)
class Native:
    """One compiled build of the driver: its ``ffi`` and ``lib``."""

    ffi: FFI
    lib: Lib


@functools.cache
def load_driver(switches: tuple[str, ...] = ()) -> Native:
    """The driver built with ``switches`` (sorted ``-D`` names), built if needed, once a process."""
    return _with_callbacks(load_module(*module_for(switches)))


def _with_callbacks(module: ModuleType) -> Native:
    """The module's build, its ``extern "Python"`` functions given their bodies: the methods of
    the candidate their handle stands for, each run by :meth:`CDriverCandidate._host_call`."""
    native = Native(ffi=module.ffi, lib=module.lib)
    ffi = native.ffi
    candidate = handle_owner(ffi, CDriverCandidate, "a C driver candidate")

    def text(chars: CData) -> str:
        return ffi.string(chars).decode()

    @ffi.def_extern(name="dmirror_py_lock")
    def lock(host: Handle, primitive: CData, name: CData, owner: CData) -> int:
        return candidate(host)._host_call(
            lambda found: found._lock(text(primitive), text(name), text(owner))
        )

    @ffi.def_extern(name="dmirror_py_get_pfns")
    def get_pfns(  # noqa: PLR0917 - the C function pointer's parameters
        host: Handle, number: int, start: int, end: int, pfns: PfnArray, npages: int, ret: IntOut
    ) -> int:
        return candidate(host)._host_call(
            lambda found: found._get_pfns(number, start, end, pfns=pfns, npages=npages, ret=ret)
        )

    @ffi.def_extern(name="dmirror_py_range_done")
    def range_done(host: Handle, number: int) -> int:
        return candidate(host)._host_call(lambda found: found._range_done(number))

    return native


@final
class CDriverCandidate:
    """The C driver in process: each method is one call into the compiled module."""

    def __init__(self, native: Native) -> None:
        ffi, lib = native.ffi, native.lib
        self._ffi, self._lib = ffi, lib
        self._handle = ffi.new_handle(self)
        ops = ffi.new(
            "struct drv_host_ops *",
            {
                "lock": lib.dmirror_py_lock,
                "get_pfns": lib.dmirror_py_get_pfns,
                "range_done": lib.dmirror_py_range_done,
            },
        )
        self._c = ffi.gc(lib.dmirror_new(ops, self._handle), lib.dmirror_free)
        #: The driver's name, which names its locks, its tasks and its non-block sections.
        self.name = ffi.string(lib.dmirror_name()).decode()
        self._steps = {
            lib.DMIRROR_SNAPSHOT: FaultStep.SNAPSHOT,
            lib.DMIRROR_LOCK: FaultStep.LOCK,
            lib.DMIRROR_CHECK: FaultStep.CHECK,
            lib.DMIRROR_UNLOCK: FaultStep.UNLOCK,
        }
        self._int = ffi.new("int *")
        self._step = ffi.new("enum dmirror_step *")
        self._view = ffi.new("struct dmirror_fault_view *")
        self._entries = ffi.new("const struct dmirror_entry **")
        self._host = DriverHost()
        self._size = ffi.new("size_t *")
        self._pending: BaseException | None = None

    def __repr__(self) -> str:
        return f"<CDriverCandidate {self.handshake().name}>"

    # -- calls into C ----------------------------------------------------------------------------

    def _settle(self, code: int, what: str) -> int:
        """Raise what a callback raised, or the refusal ``code`` stands for; else ``code``."""
        error, self._pending = self._pending, None
        if error is not None:
            raise error
        lib = self._lib
        if code > -lib.DRV_E_FIRST:
            return code
        message = f"{what}: {self._ffi.string(lib.dmirror_strerror(code)).decode()}"
        if code == -lib.DRV_E_FINISHED:
            raise DriverUsageError(DriverUsageCode.FAULT_FINISHED, "DeviceFault.step", message)
        if code == -lib.DRV_E_UNALIGNED:
            raise UsageError(UsageCode.UNALIGNED, "start_fault", message)
        if code == -lib.DRV_E_EMPTY:
            raise UsageError(UsageCode.BAD_ADDRESS, "start_fault", message)
        assert code == -lib.DRV_E_NO_FAULT, f"{message}: the C abandoned a call nothing failed"
        raise KeyError(message)

    def handshake(self) -> DriverHandshake:
        return DriverHandshake(
            protocol_version=DRIVER_PROTOCOL_VERSION,
            name=self._ffi.string(self._lib.dmirror_build_name()).decode(),
            version=package_version(),
            lock=self._ffi.string(self._lib.dmirror_lock_name()).decode(),
            capabilities=frozenset({DriverCapability.RELEASE}),
        )

    def begin(self, env: DriverEnv) -> None:
        self._host.begin(env)
        encoding = env.encoding
        vmas = self._ffi.new(
            "struct dmirror_vma[]", [{"start": v.start, "end": v.end} for v in env.mm.vmas]
        )
        native = self._ffi.new(
            "struct dmirror_encoding *",
            {
                "flags": list(encoding.flags),
                "values": list(encoding.values),
                "pfn_shift": encoding.pfn_shift,
            },
        )
        self._settle(self._lib.dmirror_begin(self._c, vmas, len(env.mm.vmas), native), "begin")

    def _write_ranges(self) -> None:
        """Write what HMM wrote into the driver's ranges since the C last saw them (an
        invalidation's range pass clears entries of every registered range) into the C's own
        arrays, as HMM writes the driver's memory in the kernel."""
        for number, now in self._host.news().items():
            pfns = self._lib.dmirror_range_pfns(self._c, number, self._size)
            assert self._size[0] == len(now), f"range r{number} changed size"
            pfns[0 : len(now)] = now

    def sync_cpu_device_pagetables(self, update: HmmUpdate) -> int:
        self._write_ranges()
        code = self._lib.dmirror_sync(
            self._c, update.start, update.end, update.blockable, self._int
        )
        self._settle(code, "sync_cpu_device_pagetables")
        return self._int[0]

    def release(self) -> None:
        self._write_ranges()
        self._settle(self._lib.dmirror_release(self._c), "release")

    def start_fault(self, fault: int, start: int, end: int) -> None:
        code = self._lib.dmirror_start_fault(self._c, fault, start, end)
        self._settle(code, f"start_fault(f{fault}, [{start:#x}, {end:#x}))")

    def step_fault(self, fault: int) -> FaultStep:
        self._write_ranges()
        code = self._lib.dmirror_step_fault(self._c, fault, self._step)
        self._settle(code, f"step_fault(f{fault})")
        return self._steps[self._step[0]]

    def fault_view(self, fault: int) -> FaultView:
        self._settle(
            self._lib.dmirror_fault_view(self._c, fault, self._view), f"fault_view(f{fault})"
        )
        if self._view.next == self._lib.DMIRROR_DONE:
            return FaultView(next_step=None, result=self._view.result)
        return FaultView(next_step=self._steps[self._view.next], result=None)

    def fault_would_block(self, fault: int) -> bool:
        code = self._lib.dmirror_fault_would_block(self._c, fault)
        return self._settle(code, f"fault_would_block(f{fault})") == 1

    def invalidation_would_block(self, blockable: bool) -> bool:
        return self._lib.dmirror_invalidation_would_block(self._c, blockable) == 1

    def release_would_block(self) -> bool:
        return self._lib.dmirror_release_would_block(self._c) == 1

    def device_page_table(self) -> Mapping[int, DeviceEntry]:
        count = self._lib.dmirror_device_page_table(self._c, self._entries)
        table = self._entries[0]
        return {
            entry.addr: DeviceEntry(pfn=entry.pfn, write=entry.write)
            for entry in (table[index] for index in range(count))
        }

    def close(self) -> None:
        # The C driver itself is freed with this object; the case goes now.
        self._lib.dmirror_end(self._c)
        self._host.begin(None)

    # -- calls from C ----------------------------------------------------------------------------

    def _host_call(self, call: Callable[[CDriverCandidate], int]) -> int:
        """Run a callback for the driver; keep what it raises for :meth:`_settle` and tell the C
        the call failed (it then unwinds, making no further call)."""
        try:
            return call(self)
        except BaseException as error:  # re-raised by _settle, when the C call returns
            self._pending = error
            return self._lib.DRV_HOST_FAILED

    def _lock(self, primitive: str, name: str, owner: str) -> int:
        """Do ``primitive`` on the harness's lock ``name`` (the C makes no sleep point)."""
        return 1 if self._host.lock(primitive, name, owner) is True else 0

    def _get_pfns(
        self, number: int, start: int, end: int, *, pfns: PfnArray, npages: int, ret: IntOut
    ) -> int:
        """``hmm_vma_get_pfns`` into the C's range ``number``: its entries into ``pfns``."""
        ret[0], entries = self._host.get_pfns(number, start, end)
        if ret[0] == 0:
            assert len(entries) == npages, f"{npages} entries for r{number}: {entries}"
            pfns[0:npages] = entries
        return 0

    def _range_done(self, number: int) -> int:
        """``hmm_vma_range_done`` on the C's range ``number``."""
        return 1 if self._host.range_done(number) else 0


# -- the factories ---------------------------------------------------------------------------


def c_driver_with(
    *, bugs: Iterable[str] = (), rwsem: bool = False, wire: bool = False
) -> Callable[[], DriverCandidate]:
    """A factory of the C driver built with the named ``bugs`` (:data:`BUGS`) and, if
    ``rwsem``, a read/write semaphore for its lock; in process, or over the wire protocol if
    ``wire``. It builds at first use."""
    switches = switches_for(bugs, rwsem)
    if not wire:
        return lambda: CDriverCandidate(load_driver(switches))

    def over_the_wire() -> DriverCandidate:
        return driver_exec_factory([str(server_for(switches))])()

    return over_the_wire


def c_driver() -> CDriverCandidate:
    """The factory behind ``--adapter conformance.cdriver:c_driver``: the C driver with a mutex,
    in process."""
    return CDriverCandidate(load_driver())


def c_driver_rwsem() -> CDriverCandidate:
    """The C driver with a read/write semaphore for its lock (the dummy driver's), in process."""
    return CDriverCandidate(load_driver(switches_for((), rwsem=True)))


def c_driver_wire() -> DriverCandidate:
    """The factory behind ``--adapter conformance.cdriver:c_driver_wire``: its wire server."""
    return c_driver_with(wire=True)()

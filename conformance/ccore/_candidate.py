"""The C candidate in process (cffi), and the factories of every build of it.

``conformance:c_core`` drives the core compiled by :mod:`conformance.ccore._build` in process;
``conformance:c_core_wire`` drives its wire server; :func:`c_core_with` makes either with
compile-time switches.

The core calls its mirrors, reads the CPU page table and faults pages in through five
``extern "Python"`` functions, C function pointers into this module. An exception raised in one
of them is kept, the core is told the call failed (a mirror answered 0, a read gave ``-EFAULT``,
a fault ``VM_FAULT_SIGSEGV``) and no further callback runs; when the C call returns, the
exception is raised again, so the executor reports a crash with its traceback.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Final, final

from hmm_ref import PAGE_SIZE, HmmMirrorOps, HmmUpdate, PfnEncoding, PteKind

from .._version import package_version
from ..core._adapter import (
    PROTOCOL_VERSION,
    Candidate,
    CandidateRejected,
    CandidateWouldHang,
    Capability,
    CpuView,
    Handshake,
    RangeView,
)
from ..core._wire import exec_factory
from ._build import Core, handle_owner, load_module, module_for, server_for, switches_for

if TYPE_CHECKING:
    from _hmm_ccore import CData, CpuPteArray, Update

__all__ = ["CCoreCandidate", "LockStats", "c_core", "c_core_wire", "c_core_with", "load_core"]


@functools.cache
def load_core(switches: tuple[str, ...] = ()) -> Core:
    """The core built with ``switches`` (sorted ``-D`` names), built if needed, once a process."""
    return _with_callbacks(load_module(*module_for(switches)))


def _with_callbacks(module: ModuleType) -> Core:
    """The module's build, its ``extern "Python"`` functions given their bodies: the methods of
    the candidate their handle stands for."""
    core = Core(ffi=module.ffi, lib=module.lib)
    ffi = core.ffi
    candidate = handle_owner(ffi, CCoreCandidate, "a C core candidate")

    @ffi.def_extern(name="hmm_py_sync")
    def sync(host: CData, mirror: int, update: Update) -> int:
        return candidate(host)._sync(mirror, update)

    @ffi.def_extern(name="hmm_py_release")
    def release(host: CData, mirror: int) -> None:
        candidate(host)._release(mirror)

    @ffi.def_extern(name="hmm_py_read_ptes")
    def read_ptes(host: CData, start: int, end: int, ptes: CpuPteArray) -> int:
        return candidate(host)._read_ptes(start, end, ptes)

    @ffi.def_extern(name="hmm_py_handle_mm_fault")
    def handle_mm_fault(host: CData, addr: int, write: bool, retry: bool, nowait: bool) -> int:
        return candidate(host)._handle_mm_fault(addr, write, retry, nowait)

    @ffi.def_extern(name="hmm_py_migration_entry_wait")
    def migration_entry_wait(host: CData, addr: int) -> None:
        candidate(host)._migration_entry_wait(addr)

    return core


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class LockStats:
    """What the lock shims counted in this process (locks.h), for one build of the core."""

    #: Calls of a sleeping primitive: down_read() and down_write().
    sleeping: int
    #: Of those, the calls made inside a non-blockable start: each one breaks DRV-1's rule.
    sleeping_in_non_block: int
    #: Try-locks made inside a non-blockable start.
    trylocks_in_non_block: int
    #: Non-blockable starts that reached a notifier.
    non_block_sections: int


#: The C ints a mirror may answer.
_INT_RANGE: Final = range(-(2**31), 2**31)


@final
class CCoreCandidate:
    """The C core in process: each method is one call into the compiled module."""

    def __init__(self, core: Core) -> None:
        ffi, lib = core.ffi, core.lib
        self._ffi, self._lib = ffi, lib
        self._handle = ffi.new_handle(self)
        host = ffi.new(
            "struct hmm_candidate_host *",
            {
                "sync": lib.hmm_py_sync,
                "release": lib.hmm_py_release,
                "read_ptes": lib.hmm_py_read_ptes,
                "handle_mm_fault": lib.hmm_py_handle_mm_fault,
                "migration_entry_wait": lib.hmm_py_migration_entry_wait,
            },
        )
        self._c = ffi.gc(lib.hmm_candidate_new(host, self._handle), lib.hmm_candidate_free)
        self._kinds = {
            PteKind.NONE: lib.CPU_PTE_NONE,
            PteKind.PRESENT: lib.CPU_PTE_PRESENT,
            PteKind.DEVICE_PRIVATE: lib.CPU_PTE_DEVICE_PRIVATE,
            PteKind.SWAP: lib.CPU_PTE_SWAP,
            PteKind.MIGRATION: lib.CPU_PTE_MIGRATION,
            PteKind.POISON: lib.CPU_PTE_POISON,
        }
        self._cpu: CpuView | None = None
        self._ops: dict[int, HmmMirrorOps] = {}
        self._pending: BaseException | None = None

    def search_state(self) -> None:
        """The core's state is in C memory, out of a walk's sight: the exhaustive search merges
        on the model's state alone (:mod:`conformance._fingerprint`)."""
        return

    # -- calls into C ----------------------------------------------------------------------------

    def _settle(self, code: int) -> int:
        """Raise what a callback raised, or the refusal ``code`` stands for; else ``code``."""
        error, self._pending = self._pending, None
        if error is not None:
            raise error
        if code <= -self._lib.HMM_E_FIRST:
            message = self._ffi.string(self._lib.hmm_candidate_strerror(code)).decode()
            if code == -self._lib.HMM_E_LIVELOCK:
                raise CandidateWouldHang(message)
            raise CandidateRejected(message)
        return code

    def handshake(self) -> Handshake:
        return Handshake(
            protocol_version=PROTOCOL_VERSION,
            name=self._ffi.string(self._lib.hmm_candidate_name()).decode(),
            version=package_version(),
            capabilities=frozenset(Capability),
        )

    def begin(self, cpu: CpuView) -> None:
        vmas = self._ffi.new(
            "struct hmm_vma_spec[]",
            [
                {
                    "start": v.start,
                    "end": v.end,
                    "read": v.read,
                    "write": v.write,
                    "special": v.special,
                }
                for v in cpu.vmas
            ],
        )
        self._settle(self._lib.hmm_candidate_begin(self._c, vmas, len(cpu.vmas)))
        self._cpu, self._ops = cpu, {}

    def register(self, mirror: int, ops: HmmMirrorOps | None) -> int:
        if ops is not None:
            self._ops[mirror] = ops
        return self._settle(self._lib.hmm_candidate_register(self._c, mirror, ops is not None))

    def unregister(self, mirror: int) -> None:
        self._settle(self._lib.hmm_candidate_unregister(self._c, mirror))

    def _encoding(self, encoding: PfnEncoding) -> CData:
        return self._ffi.new(
            "struct hmm_encoding *",
            {
                "flags": list(encoding.flags),
                "values": list(encoding.values),
                "pfn_shift": encoding.pfn_shift,
            },
        )

    def snapshot(self, range_id: int, vma: int, start: int, end: int, encoding: PfnEncoding) -> int:
        native = self._encoding(encoding)
        return self._settle(
            self._lib.hmm_candidate_snapshot(self._c, range_id, vma, start, end, native)
        )

    def fault(
        self,
        range_id: int,
        vma: int,
        start: int,
        end: int,
        encoding: PfnEncoding,
        *,
        pfns: Sequence[int],
        block: bool,
    ) -> int:
        native, requests = self._encoding(encoding), self._ffi.new("uint64_t[]", list(pfns))
        return self._settle(
            self._lib.hmm_candidate_fault(
                self._c, range_id, vma, start, end, native, requests, len(pfns), block
            )
        )

    def observe(self, range_id: int) -> RangeView:
        view = self._ffi.new("struct hmm_range_view *")
        self._settle(self._lib.hmm_candidate_observe(self._c, range_id, view))
        return RangeView(
            registered=view.registered,
            valid=view.valid,
            entries=tuple(self._ffi.unpack(view.entries, view.npages)),
        )

    def range_done(self, range_id: int) -> bool:
        return self._settle(self._lib.hmm_candidate_range_done(self._c, range_id)) == 1

    def invalidate_start(self, start: int, end: int, blockable: bool) -> int:
        return self._settle(
            self._lib.hmm_candidate_invalidate_start(self._c, start, end, blockable)
        )

    def invalidate_end(self, start: int, end: int) -> None:
        self._settle(self._lib.hmm_candidate_invalidate_end(self._c, start, end))

    def release(self) -> None:
        self._settle(self._lib.hmm_candidate_release(self._c))

    def close(self) -> None:
        # The C candidate itself is freed with this object; the case goes now.
        self._settle(self._lib.hmm_candidate_end(self._c))
        self._cpu, self._ops = None, {}

    def lock_stats(self) -> LockStats:
        """The lock shims' counts so far, for every candidate of this build in this process."""
        stats = self._ffi.new("struct lock_stats *")
        self._lib.lock_stats_read(stats)
        return LockStats(
            sleeping=stats.sleeping,
            sleeping_in_non_block=stats.sleeping_in_non_block,
            trylocks_in_non_block=stats.trylocks_in_non_block,
            non_block_sections=stats.non_block_sections,
        )

    # -- calls from C ----------------------------------------------------------------------------

    def _host_call(self, call: Callable[[], int], failed: int) -> int:
        """Run a callback for the core; keep what it raises for :meth:`_settle`.

        After one callback failed, the core's call runs to its end without reaching the harness
        again: every later callback answers ``failed`` at once.
        """
        if self._pending is not None:
            return failed
        try:
            return call()
        except BaseException as error:  # re-raised by _settle, when the C call returns
            self._pending = error
            return failed

    def _sync(self, mirror: int, update: Update) -> int:
        def call() -> int:
            answer: object = self._ops[mirror].sync_cpu_device_pagetables(
                HmmUpdate(start=update.start, end=update.end, blockable=update.blockable)
            )
            if not isinstance(answer, int) or answer not in _INT_RANGE:
                raise TypeError(
                    f"mirror m{mirror}'s sync_cpu_device_pagetables answered {answer!r}, "
                    "not a C int"
                )
            return answer

        return self._host_call(call, 0)

    def _release(self, mirror: int) -> None:
        def call() -> int:
            self._ops[mirror].release()
            return 0

        self._host_call(call, 0)

    def _read_ptes(self, start: int, end: int, ptes: CpuPteArray) -> int:
        def call() -> int:
            assert self._cpu is not None, "the core reads ptes only for a snapshot in a case"
            for index, addr in enumerate(range(start, end, PAGE_SIZE)):
                pte = self._cpu.pte(addr)
                entry = ptes[index]
                entry.kind, entry.write, entry.pfn = self._kinds[pte.kind], pte.write, pte.pfn
            return 0

        return self._host_call(call, -self._lib.EFAULT)

    def _handle_mm_fault(self, addr: int, write: bool, retry: bool, nowait: bool) -> int:
        def call() -> int:
            assert self._cpu is not None, "the core faults only for a fault in a case"
            answer: object = self._cpu.handle_mm_fault(addr, write, retry, nowait)
            if not isinstance(answer, int) or answer not in _INT_RANGE:
                raise TypeError(f"handle_mm_fault({addr:#x}) answered {answer!r}, not a C int")
            return answer

        return self._host_call(call, self._lib.VM_FAULT_SIGSEGV)

    def _migration_entry_wait(self, addr: int) -> None:
        def call() -> int:
            assert self._cpu is not None, "the core waits only for a fault in a case"
            self._cpu.migration_entry_wait(addr)
            return 0

        self._host_call(call, 0)


# -- the factories ---------------------------------------------------------------------------


def c_core_with(
    *, bugs: Iterable[str] = (), seed_locking: bool = False, wire: bool = False
) -> Callable[[], Candidate]:
    """A factory of the C core built with the named ``bugs`` (:data:`BUGS`), or with the seed's
    own locking; in process, or over the wire protocol if ``wire``. It builds at first use."""
    switches = switches_for(bugs, seed_locking)
    if not wire:
        return lambda: CCoreCandidate(load_core(switches))

    def over_the_wire() -> Candidate:
        return exec_factory([str(server_for(switches))])()

    return over_the_wire


def c_core() -> CCoreCandidate:
    """The factory behind ``--adapter conformance:c_core``: the C core, in process."""
    return CCoreCandidate(load_core())


def c_core_wire() -> Candidate:
    """The factory behind ``--adapter conformance:c_core_wire``: the C core's wire server."""
    return c_core_with(wire=True)()

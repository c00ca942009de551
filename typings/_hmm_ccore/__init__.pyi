"""The C candidate (conformance/ccore) as cffi compiles it, in API mode.

Every build has this interface, whatever its compile-time switches;
``conformance.ccore._build`` names each build ``_hmm_ccore_<key>``, and
``conformance.ccore._candidate`` types it as this module. The classes stand for the C types
that the Python side reads or writes; only the members it uses are listed.
"""

from collections.abc import Callable
from typing import Literal, TypeVar, overload, type_check_only

_F = TypeVar("_F", bound=Callable[..., object])

@type_check_only
class CData:
    """A C pointer the Python side only passes on (a candidate, a handle, an array)."""

@type_check_only
class Update:
    """``const struct hmm_update *``, inside a sync callback."""

    start: int
    end: int
    blockable: bool

@type_check_only
class CpuPte:
    """``struct cpu_pte``."""

    kind: int
    write: bool
    pfn: int

@type_check_only
class CpuPteArray:
    """``struct cpu_pte *``, one entry a page, inside a read_ptes callback."""

    def __getitem__(self, index: int, /) -> CpuPte: ...

@type_check_only
class RangeView(CData):
    """``struct hmm_range_view *``."""

    registered: bool
    valid: bool
    npages: int
    entries: CData

@type_check_only
class LockStats(CData):
    """``struct lock_stats *``."""

    sleeping: int
    sleeping_in_non_block: int
    trylocks_in_non_block: int
    non_block_sections: int

@type_check_only
class FFI:
    @overload
    def new(
        self, cdecl: Literal["struct hmm_candidate_host *"], init: dict[str, CData]
    ) -> CData: ...
    @overload
    def new(
        self, cdecl: Literal["struct hmm_vma_spec[]"], init: list[dict[str, int | bool]]
    ) -> CData: ...
    @overload
    def new(
        self, cdecl: Literal["struct hmm_encoding *"], init: dict[str, int | list[int]]
    ) -> CData: ...
    @overload
    def new(self, cdecl: Literal["uint64_t[]"], init: list[int]) -> CData: ...
    @overload
    def new(self, cdecl: Literal["struct hmm_range_view *"]) -> RangeView: ...
    @overload
    def new(self, cdecl: Literal["struct lock_stats *"]) -> LockStats: ...
    def new_handle(self, x: object, /) -> CData: ...
    def from_handle(self, x: CData, /) -> object: ...
    def gc(self, cdata: CData, destructor: Callable[[CData], None], /) -> CData: ...
    def string(self, cdata: CData, /) -> bytes: ...
    def unpack(self, cdata: CData, length: int, /) -> list[int]: ...
    def def_extern(self, name: str) -> Callable[[_F], _F]: ...

@type_check_only
class Lib:
    EFAULT: int
    VM_FAULT_SIGSEGV: int
    HMM_E_FIRST: int
    HMM_E_LIVELOCK: int
    CPU_PTE_NONE: int
    CPU_PTE_PRESENT: int
    CPU_PTE_DEVICE_PRIVATE: int
    CPU_PTE_SWAP: int
    CPU_PTE_MIGRATION: int
    CPU_PTE_POISON: int
    # The extern "Python" callbacks, as C function pointers.
    hmm_py_sync: CData
    hmm_py_release: CData
    hmm_py_read_ptes: CData
    hmm_py_handle_mm_fault: CData
    hmm_py_migration_entry_wait: CData
    def hmm_candidate_new(self, ops: CData, host: CData, /) -> CData: ...
    def hmm_candidate_free(self, c: CData, /) -> None: ...
    def hmm_candidate_name(self) -> CData: ...
    def hmm_candidate_strerror(self, refusal: int, /) -> CData: ...
    def hmm_candidate_begin(self, c: CData, vmas: CData, nr_vmas: int, /) -> int: ...
    def hmm_candidate_end(self, c: CData, /) -> int: ...
    def hmm_candidate_register(self, c: CData, mirror: int, with_ops: bool, /) -> int: ...
    def hmm_candidate_unregister(self, c: CData, mirror: int, /) -> int: ...
    def hmm_candidate_snapshot(
        self, c: CData, range: int, vma: int, start: int, end: int, encoding: CData, /
    ) -> int: ...
    def hmm_candidate_fault(
        self,
        c: CData,
        range: int,
        vma: int,
        start: int,
        end: int,
        encoding: CData,
        pfns: CData,
        npfns: int,
        block: bool,
        /,
    ) -> int: ...
    def hmm_candidate_observe(self, c: CData, range: int, view: RangeView, /) -> int: ...
    def hmm_candidate_range_done(self, c: CData, range: int, /) -> int: ...
    def hmm_candidate_invalidate_start(
        self, c: CData, start: int, end: int, blockable: bool, /
    ) -> int: ...
    def hmm_candidate_invalidate_end(self, c: CData, start: int, end: int, /) -> int: ...
    def hmm_candidate_release(self, c: CData, /) -> int: ...
    def lock_stats_read(self, stats: LockStats, /) -> None: ...

ffi: FFI
lib: Lib

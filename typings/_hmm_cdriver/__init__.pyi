"""The C driver (conformance/cdriver) as cffi compiles it, in API mode.

Every build has this interface, whatever its compile-time switches;
``conformance.cdriver._build`` names each build ``_hmm_cdriver_<key>``, and
``conformance.cdriver._candidate`` types it as this module. The classes stand for the C types
that the Python side reads or writes; only the members it uses are listed.
"""

from collections.abc import Callable
from typing import Literal, TypeVar, overload, type_check_only

_F = TypeVar("_F", bound=Callable[..., object])

@type_check_only
class CData:
    """A C pointer the Python side only passes on (the driver, the host ops, an array)."""

@type_check_only
class Handle(CData):
    """``void *``: the candidate's handle, or a ``const char *`` argument of a callback."""

@type_check_only
class IntOut(CData):
    """``int *``."""

    def __getitem__(self, index: Literal[0], /) -> int: ...
    def __setitem__(self, index: Literal[0], value: int, /) -> None: ...

@type_check_only
class SizeOut(CData):
    """``size_t *``."""

    def __getitem__(self, index: Literal[0], /) -> int: ...

@type_check_only
class StepOut(CData):
    """``enum dmirror_step *``."""

    def __getitem__(self, index: Literal[0], /) -> int: ...

@type_check_only
class PfnArray(CData):
    """``uint64_t *``: a range's entries, written by HMM (the get_pfns callback, or the harness
    after an invalidation's range pass)."""

    def __setitem__(self, index: slice, value: tuple[int, ...], /) -> None: ...

@type_check_only
class View(CData):
    """``struct dmirror_fault_view *``."""

    next: int
    result: int

@type_check_only
class Entry:
    """``struct dmirror_entry``: one device page-table entry."""

    addr: int
    pfn: int
    write: bool

@type_check_only
class EntryArray:
    """``const struct dmirror_entry *``."""

    def __getitem__(self, index: int, /) -> Entry: ...

@type_check_only
class EntryOut(CData):
    """``const struct dmirror_entry **``."""

    def __getitem__(self, index: Literal[0], /) -> EntryArray: ...

@type_check_only
class FFI:
    """The module's ``ffi``."""

    @overload
    def new(self, cdecl: Literal["struct drv_host_ops *"], init: dict[str, CData], /) -> CData: ...
    @overload
    def new(
        self, cdecl: Literal["struct dmirror_vma[]"], init: list[dict[str, int]], /
    ) -> CData: ...
    @overload
    def new(
        self, cdecl: Literal["struct dmirror_encoding *"], init: dict[str, int | list[int]], /
    ) -> CData: ...
    @overload
    def new(self, cdecl: Literal["int *"], /) -> IntOut: ...
    @overload
    def new(self, cdecl: Literal["size_t *"], /) -> SizeOut: ...
    @overload
    def new(self, cdecl: Literal["enum dmirror_step *"], /) -> StepOut: ...
    @overload
    def new(self, cdecl: Literal["struct dmirror_fault_view *"], /) -> View: ...
    @overload
    def new(self, cdecl: Literal["const struct dmirror_entry **"], /) -> EntryOut: ...
    def new_handle(self, x: object, /) -> Handle: ...
    def from_handle(self, x: Handle, /) -> object: ...
    def gc(self, cdata: CData, destructor: Callable[[CData], None], /) -> CData: ...
    def string(self, cdata: CData, /) -> bytes: ...
    def def_extern(self, name: str) -> Callable[[_F], _F]: ...

@type_check_only
class Lib:
    """The module's ``lib``: constants, the callbacks as C function pointers, the driver."""

    EFAULT: int
    DRV_E_FIRST: int
    DRV_E_ABANDONED: int
    DRV_E_NO_FAULT: int
    DRV_E_FINISHED: int
    DRV_E_UNALIGNED: int
    DRV_E_EMPTY: int
    DRV_HOST_FAILED: int
    DMIRROR_SNAPSHOT: int
    DMIRROR_LOCK: int
    DMIRROR_CHECK: int
    DMIRROR_UNLOCK: int
    DMIRROR_DONE: int
    dmirror_py_lock: CData
    dmirror_py_get_pfns: CData
    dmirror_py_range_done: CData

    def dmirror_new(self, ops: CData, host: Handle, /) -> CData: ...
    def dmirror_free(self, d: CData, /) -> None: ...
    def dmirror_build_name(self) -> CData: ...
    def dmirror_name(self) -> CData: ...
    def dmirror_lock_name(self) -> CData: ...
    def dmirror_strerror(self, refusal: int, /) -> CData: ...
    def dmirror_begin(self, d: CData, vmas: CData, nr_vmas: int, encoding: CData, /) -> int: ...
    def dmirror_end(self, d: CData, /) -> None: ...
    def dmirror_sync(
        self, d: CData, start: int, end: int, blockable: bool, reply: IntOut, /
    ) -> int: ...
    def dmirror_release(self, d: CData, /) -> int: ...
    def dmirror_start_fault(self, d: CData, fault: int, start: int, end: int, /) -> int: ...
    def dmirror_step_fault(self, d: CData, fault: int, taken: StepOut, /) -> int: ...
    def dmirror_fault_view(self, d: CData, fault: int, view: View, /) -> int: ...
    def dmirror_fault_would_block(self, d: CData, fault: int, /) -> int: ...
    def dmirror_invalidation_would_block(self, d: CData, blockable: bool, /) -> int: ...
    def dmirror_release_would_block(self, d: CData, /) -> int: ...
    def dmirror_range_pfns(self, d: CData, range: int, npages: SizeOut, /) -> PfnArray: ...
    def dmirror_device_page_table(self, d: CData, entries: EntryOut, /) -> int: ...

ffi: FFI
lib: Lib

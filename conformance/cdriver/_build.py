"""Building the C driver (``conformance/cdriver/``) from source, at first use.

As the C core is built, by the machinery of :mod:`conformance.ccore._build` (its cache, flags
and compiler handling): ``module_for`` compiles the driver with cffi (API mode) into a Python
extension, and ``server_for`` compiles ``server.c`` with the system C compiler into the wire
server, each with compile-time switches (:func:`switches_for`: the lock kind, and the deliberate
bugs of :data:`BUGS`). docs/c-candidate.md, "The C driver", describes the C.

The driver uses files of the C core: ``kernel.h`` and ``list.h`` (the kernel idioms) and, in the
server, the framing every wire server shares (``wire.h``/``wire.c``) with the JSON it speaks
(``json.h``/``json.c``). A build's name is keyed by a hash of every file that goes into it, the
switches and the flags, and for the in-process module the Python and cffi versions; it is
written in a temporary directory and renamed into place.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Final

from ..ccore._build import SOURCE_DIR as CCORE_DIR
from ..ccore._build import (
    WIRE_HEADERS,
    WIRE_SOURCES,
    Sources,
    bug_switches,
    compile_module,
    compile_server,
)

__all__ = [
    "BUGS",
    "RWSEM",
    "SOURCE_DIR",
    "build_server",
    "module_for",
    "server_for",
    "switches_for",
]

#: The driver's C sources, shipped in the package.
SOURCE_DIR: Final = Path(__file__).resolve().parent
_DRIVER_SOURCES: Final = ("driver.c", "shims.c")
_DRIVER_HEADERS: Final = ("driver.h", "shims.h")
#: What it takes from the C core besides the server's framing: the kernel idioms.
_CORE_HEADERS: Final = ("kernel.h", "list.h")

#: The deliberate bugs, by name, and the switch that builds each one in (driver.c says how).
BUGS: Final = {
    "sleep": "HMM_DRV_BUG_SLEEP",
    "no-recheck": "HMM_DRV_BUG_NO_RECHECK",
}
#: The switch that makes the driver lock D a read/write semaphore instead of a mutex.
RWSEM: Final = "HMM_DRV_RWSEM"

#: What the Python side sees of the C (driver.h, shims.h); cffi checks it against the headers.
_CDEF: Final = """
#define EFAULT ...
#define DRV_E_FIRST ...
#define DRV_E_ABANDONED ...
#define DRV_E_NO_FAULT ...
#define DRV_E_FINISHED ...
#define DRV_E_UNALIGNED ...
#define DRV_E_EMPTY ...
#define DRV_HOST_FAILED ...

enum dmirror_step {
    DMIRROR_SNAPSHOT, DMIRROR_LOCK, DMIRROR_CHECK, DMIRROR_UNLOCK, DMIRROR_DONE,
};
struct dmirror_vma { unsigned long start; unsigned long end; };
struct dmirror_encoding { uint64_t flags[3]; uint64_t values[3]; unsigned int pfn_shift; };
struct dmirror_entry { unsigned long addr; uint64_t pfn; bool write; };
struct dmirror_fault_view { enum dmirror_step next; int result; };
struct drv_host_ops {
    int (*lock)(void *, const char *, const char *, const char *);
    int (*get_pfns)(void *, int, unsigned long, unsigned long, uint64_t *, size_t, int *);
    int (*range_done)(void *, int);
};
struct dmirror;

extern "Python" int dmirror_py_lock(void *, const char *, const char *, const char *);
extern "Python" int dmirror_py_get_pfns(
    void *, int, unsigned long, unsigned long, uint64_t *, size_t, int *);
extern "Python" int dmirror_py_range_done(void *, int);

struct dmirror *dmirror_new(const struct drv_host_ops *, void *);
void dmirror_free(struct dmirror *);
const char *dmirror_build_name(void);
const char *dmirror_name(void);
const char *dmirror_lock_name(void);
const char *dmirror_strerror(int);
int dmirror_begin(struct dmirror *, const struct dmirror_vma *, size_t,
                  const struct dmirror_encoding *);
void dmirror_end(struct dmirror *);
int dmirror_sync(struct dmirror *, unsigned long, unsigned long, bool, int *);
int dmirror_release(struct dmirror *);
int dmirror_start_fault(struct dmirror *, int, unsigned long, unsigned long);
int dmirror_step_fault(struct dmirror *, int, enum dmirror_step *);
int dmirror_fault_view(struct dmirror *, int, struct dmirror_fault_view *);
int dmirror_fault_would_block(struct dmirror *, int);
int dmirror_invalidation_would_block(struct dmirror *, bool);
int dmirror_release_would_block(struct dmirror *);
uint64_t *dmirror_range_pfns(struct dmirror *, int, size_t *);
size_t dmirror_device_page_table(struct dmirror *, const struct dmirror_entry **);
"""


def _sources(source_dir: Path, *, server: bool) -> Sources:
    """The driver's sources, and if ``server`` its wire server's with the core's framing."""
    compiled = [source_dir / name for name in _DRIVER_SOURCES]
    headers = [
        *(source_dir / name for name in _DRIVER_HEADERS),
        *(CCORE_DIR / name for name in _CORE_HEADERS),
    ]
    if server:
        compiled += [source_dir / "server.c", *(CCORE_DIR / name for name in WIRE_SOURCES)]
        headers += [CCORE_DIR / name for name in WIRE_HEADERS]
    return Sources(
        compiled=tuple(compiled), headers=tuple(headers), include_dirs=(source_dir, CCORE_DIR)
    )


def switches_for(bugs: Iterable[str], rwsem: bool) -> tuple[str, ...]:
    """The sorted ``-D`` names of a build with ``bugs`` (names of :data:`BUGS`) and, if
    ``rwsem``, a read/write semaphore for D; an unknown bug is an :class:`AdapterError`."""
    return bug_switches("the C driver", BUGS, bugs, *([RWSEM] if rwsem else []))


def module_for(switches: tuple[str, ...], source_dir: Path = SOURCE_DIR) -> tuple[str, Path]:
    """The module's name and the path of its build, compiling it if it is not cached."""
    return compile_module(
        "the C driver",
        "_hmm_cdriver",
        _sources(source_dir, server=False),
        switches,
        cdef=_CDEF,
        include='#include "driver.h"',
    )


def server_for(switches: tuple[str, ...], source_dir: Path = SOURCE_DIR) -> Path:
    """The path of the wire server built with ``switches``, compiling it if it is not cached."""
    return compile_server(
        "the C driver", "dmirror-c-server", _sources(source_dir, server=True), switches
    )


def build_server(*, bugs: Iterable[str] = (), rwsem: bool = False) -> Path:
    """Build the C driver's wire server (``cdriver/server.c``) with the system C compiler; its
    path."""
    return server_for(switches_for(bugs, rwsem))

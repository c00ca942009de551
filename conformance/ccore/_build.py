"""Building the C candidates from source, at first use: the C core (``conformance/ccore/``)
here, and the machinery that the C driver's build (:mod:`conformance.cdriver._build`) shares.

:func:`compile_module` compiles C sources with cffi (API mode) into a Python extension, and
:func:`compile_server` compiles a wire server with the system C compiler, each with compile-time
switches; :func:`load_module` imports a built extension. For the core, ``module_for`` and
``server_for`` build the core and its wire server (``server.c``, framed by ``wire.c``, which the
driver's server is framed by too) with the switches of :func:`switches_for`: the deliberate bugs
of :data:`BUGS`, or the seed's own locking. docs/c-candidate.md describes the C.

Builds are cached in :func:`build_dir` under a name keyed by a hash of everything that goes into
them: the C sources and headers, the switches and compiler flags, and for the in-process module
the Python and cffi versions. A build is written in a temporary directory and renamed into
place, so a run never loads a half-written file, and two runs building at once both end with a
good one.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Final, Protocol, TypeVar, final

from .._version import package_version
from ..core._adapter import (
    AdapterError,
)

if TYPE_CHECKING:
    import cffi
    from _hmm_ccore import FFI, Lib

__all__ = [
    "BUGS",
    "BUILD_DIR_ENV",
    "CFLAGS",
    "SOURCE_DIR",
    "WIRE_HEADERS",
    "WIRE_SOURCES",
    "Core",
    "Sources",
    "bug_switches",
    "build_dir",
    "build_server",
    "compile_module",
    "compile_server",
    "handle_owner",
    "load_module",
    "module_for",
    "server_for",
    "switches_for",
]

_Owner = TypeVar("_Owner")
_Handle_contra = TypeVar("_Handle_contra", contravariant=True)

#: The C sources, shipped in the package.
SOURCE_DIR: Final = Path(__file__).resolve().parent
_CORE_SOURCES: Final = ("candidate.c", "hmm.c", "locks.c", "mmu_notifier.c")
#: The framing of every wire server (wire.h), and the JSON it speaks (json.h).
WIRE_SOURCES: Final = ("json.c", "wire.c")
WIRE_HEADERS: Final = ("json.h", "wire.h")
_SERVER_SOURCES: Final = (*_CORE_SOURCES, *WIRE_SOURCES, "server.c")

#: The deliberate bugs, by name, and the switch that builds each one in (hmm.c says what it does).
BUGS: Final = {
    "eagain-ignored": "HMM_BUG_EAGAIN_IGNORED",
    "no-range-clear": "HMM_BUG_NO_RANGE_CLEAR",
}
#: The switch that takes mirrors_sem the seed's way, with down_read() in both modes.
_SEED_LOCKING: Final = "HMM_SEED_LOCKING"

#: Every build's flags. -Wunused-parameter is off, as in the kernel's W=1 builds: an ops table's
#: functions take parameters that some of them do not need.
CFLAGS: Final = ("-std=c11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Werror")

#: Where builds are cached, if set.
BUILD_DIR_ENV: Final = "HMM_CONFORMANCE_BUILD_DIR"

#: How much of the compiler's complaint an error shows.
_TAIL_LINES: Final = 25

#: What the Python side sees of the C (candidate.h, locks.h); cffi checks it against the headers.
_CDEF: Final = """
#define EFAULT ...
#define VM_FAULT_SIGSEGV ...
#define HMM_E_FIRST ...
#define HMM_E_LIVELOCK ...

enum cpu_pte_kind {
    CPU_PTE_NONE, CPU_PTE_PRESENT, CPU_PTE_DEVICE_PRIVATE,
    CPU_PTE_SWAP, CPU_PTE_MIGRATION, CPU_PTE_POISON,
};
struct cpu_pte { enum cpu_pte_kind kind; bool write; uint64_t pfn; };
struct hmm_update { unsigned long start; unsigned long end; bool blockable; ...; };
struct hmm_vma_spec {
    unsigned long start; unsigned long end; bool read; bool write; bool special;
};
struct hmm_encoding { uint64_t flags[3]; uint64_t values[3]; unsigned int pfn_shift; };
struct hmm_range_view { bool registered; bool valid; size_t npages; const uint64_t *entries; };
struct lock_stats {
    unsigned long sleeping;
    unsigned long sleeping_in_non_block;
    unsigned long trylocks_in_non_block;
    unsigned long non_block_sections;
};
struct hmm_candidate_host {
    int (*sync)(void *, int, const struct hmm_update *);
    void (*release)(void *, int);
    int (*read_ptes)(void *, unsigned long, unsigned long, struct cpu_pte *);
    int (*handle_mm_fault)(void *, unsigned long, bool, bool, bool);
    void (*migration_entry_wait)(void *, unsigned long);
};
struct hmm_candidate;

extern "Python" int hmm_py_sync(void *, int, const struct hmm_update *);
extern "Python" void hmm_py_release(void *, int);
extern "Python" int hmm_py_read_ptes(void *, unsigned long, unsigned long, struct cpu_pte *);
extern "Python" int hmm_py_handle_mm_fault(void *, unsigned long, bool, bool, bool);
extern "Python" void hmm_py_migration_entry_wait(void *, unsigned long);

struct hmm_candidate *hmm_candidate_new(const struct hmm_candidate_host *, void *);
void hmm_candidate_free(struct hmm_candidate *);
const char *hmm_candidate_name(void);
const char *hmm_candidate_strerror(int);
int hmm_candidate_begin(struct hmm_candidate *, const struct hmm_vma_spec *, size_t);
int hmm_candidate_end(struct hmm_candidate *);
int hmm_candidate_register(struct hmm_candidate *, int, bool);
int hmm_candidate_unregister(struct hmm_candidate *, int);
int hmm_candidate_snapshot(struct hmm_candidate *, int, size_t, unsigned long, unsigned long,
                           const struct hmm_encoding *);
int hmm_candidate_fault(struct hmm_candidate *, int, size_t, unsigned long, unsigned long,
                        const struct hmm_encoding *, const uint64_t *, size_t, bool);
int hmm_candidate_observe(struct hmm_candidate *, int, struct hmm_range_view *);
int hmm_candidate_range_done(struct hmm_candidate *, int);
int hmm_candidate_invalidate_start(struct hmm_candidate *, unsigned long, unsigned long, bool);
int hmm_candidate_invalidate_end(struct hmm_candidate *, unsigned long, unsigned long);
int hmm_candidate_release(struct hmm_candidate *);
void lock_stats_read(struct lock_stats *);
"""


def build_dir() -> Path:
    """Where builds are cached: ``$HMM_CONFORMANCE_BUILD_DIR``, else the user's cache directory."""
    chosen = os.environ.get(BUILD_DIR_ENV)
    if chosen:
        return Path(chosen)
    cache = os.environ.get("XDG_CACHE_HOME")
    return (Path(cache) if cache else Path.home() / ".cache") / "hmm-conformance"


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class Sources:
    """What one build compiles and reads; its cache key hashes every file of them."""

    #: The files compiled.
    compiled: tuple[Path, ...]
    #: The headers the compiled files include.
    headers: tuple[Path, ...]
    #: Where the compiler looks for them, in order.
    include_dirs: tuple[Path, ...]

    def key(self, *parts: str) -> str:
        """A digest of every file (name and contents) and of ``parts``."""
        digest = hashlib.sha256()
        for path in (*self.compiled, *self.headers):
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
        for part in parts:
            digest.update(part.encode() + b"\0")
        return digest.hexdigest()[:24]


def _tail(text: str) -> str:
    lines = text.strip().splitlines()[-_TAIL_LINES:]
    return "\n".join(f"    {line}" for line in lines) or "    (nothing)"


def _compiler_failed(what: str, how: str, output: str) -> AdapterError:
    return AdapterError(
        f"building {what} failed: {how}. A C compiler is needed (cc or gcc on PATH; the "
        f"in-process build uses $CC if set, and the Python headers). The compiler said:\n"
        f"{_tail(output)}"
    )


def _cached(target: Path, make: Callable[[Path], Path]) -> Path:
    """``target``, made unless it exists: ``make`` builds it in the temporary directory it is
    given (beside ``target``) and returns the built file, which is renamed into place."""
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}-") as work:
            os.replace(make(Path(work)), target)
    return target


def bug_switches(
    what: str, known: Mapping[str, str], bugs: Iterable[str], *others: str
) -> tuple[str, ...]:
    """The sorted ``-D`` names of the ``bugs`` named in ``known`` and of ``others``; a bug
    ``what`` (the C core, the C driver) does not know is an :class:`AdapterError`."""
    chosen = set(others)
    for bug in bugs:
        if bug not in known:
            raise AdapterError(f"{what} has no bug {bug!r}; choose from {', '.join(known)}")
        chosen.add(known[bug])
    return tuple(sorted(chosen))


def switches_for(bugs: Iterable[str], seed_locking: bool) -> tuple[str, ...]:
    """The sorted ``-D`` names of a build of the core with ``bugs`` (names of :data:`BUGS`) and,
    if ``seed_locking``, the seed's own locking."""
    return bug_switches("the C core", BUGS, bugs, *([_SEED_LOCKING] if seed_locking else []))


# -- the in-process module -------------------------------------------------------------------


@final
@dataclass(frozen=True, slots=True)
class Core:
    """One compiled build of the core: its ``ffi`` and ``lib``."""

    ffi: FFI
    lib: Lib


def _compile_quietly(
    builder: cffi.FFI, work: str, failure: type[Exception]
) -> tuple[str | None, str]:
    """Compile; the built file (None if it raised ``failure``), and everything said on stderr.

    The compiler runs as a child of this process and writes to its file descriptor 2, which is
    pointed at a temporary file meanwhile, so that an error can show what the compiler said.
    """
    with tempfile.TemporaryFile() as log:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(log.fileno(), 2)
        try:
            built: str | None = builder.compile(tmpdir=work, verbose=False)
        except failure as error:
            built = None
            log.write(f"{error}\n".encode())
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        log.seek(0)
        return built, log.read().decode(errors="replace")


def compile_module(
    what: str, prefix: str, sources: Sources, switches: tuple[str, ...], *, cdef: str, include: str
) -> tuple[str, Path]:
    """Compile ``sources`` with cffi into the Python extension ``<prefix>_<key>``, whose
    interface is ``cdef`` and whose own C is ``include``, unless it is cached: its name and the
    path of its build. ``what`` names the build in errors ("the C candidate")."""
    try:
        import cffi  # noqa: PLC0415 - optional: the `c` extra
    except ImportError as error:
        raise AdapterError(
            f"{what} needs cffi to build its Python module: pip install 'hmm-conformance[c]'"
        ) from error
    key = sources.key("module", *switches, *CFLAGS, cdef, sys.version, cffi.__version__)
    name = f"{prefix}_{key}"

    def make(work: Path) -> Path:
        builder = cffi.FFI()
        builder.cdef(cdef)
        builder.set_source(
            name,
            include,
            sources=[str(path) for path in sources.compiled],
            include_dirs=[str(path) for path in sources.include_dirs],
            define_macros=[(switch, None) for switch in switches],
            extra_compile_args=list(CFLAGS),
        )
        built, output = _compile_quietly(builder, str(work), cffi.VerificationError)
        if built is None:
            raise _compiler_failed(f"{what}'s Python module", "the compiler failed", output)
        return Path(built)

    return name, _cached(build_dir() / f"{name}{sysconfig.get_config_var('EXT_SUFFIX')}", make)


def load_module(name: str, path: Path) -> ModuleType:
    """Import the built extension ``name`` from ``path``."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None, f"{path} is not a Python extension"
    assert spec.loader is not None, f"{path} has no loader"
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Handles(Protocol[_Handle_contra]):
    """A module's ``ffi``, as far as handles go."""

    def from_handle(self, x: _Handle_contra, /) -> object: ...


def handle_owner(
    ffi: _Handles[_Handle_contra], kind: type[_Owner], what: str
) -> Callable[[_Handle_contra], _Owner]:
    """What a module's ``extern "Python"`` functions look up first: the ``kind`` (``what``, in
    the assertion) that the handle they are given, made by ``ffi.new_handle``, stands for."""

    def owner(handle: _Handle_contra) -> _Owner:
        found = ffi.from_handle(handle)
        assert isinstance(found, kind), f"{found!r} is not {what}"
        return found

    return owner


def _core_sources(source_dir: Path, compiled: Iterable[str]) -> Sources:
    return Sources(
        compiled=tuple(source_dir / name for name in compiled),
        headers=tuple(sorted(source_dir.glob("*.h"))),
        include_dirs=(source_dir,),
    )


def module_for(switches: tuple[str, ...], source_dir: Path = SOURCE_DIR) -> tuple[str, Path]:
    """The module's name and the path of its build, compiling it if it is not cached."""
    return compile_module(
        "the C candidate",
        "_hmm_ccore",
        _core_sources(source_dir, _CORE_SOURCES),
        switches,
        cdef=_CDEF,
        include='#include "candidate.h"\n#include "locks.h"',
    )


# -- the wire server -------------------------------------------------------------------------


def compile_server(what: str, program: str, sources: Sources, switches: tuple[str, ...]) -> Path:
    """Compile ``sources`` with the system C compiler into the wire server ``program``, unless
    it is cached; its path. ``what`` names the build in errors ("the C candidate")."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise AdapterError(
            f"building {what}'s wire server needs a C compiler, and neither cc nor gcc "
            "is on PATH; install one (Debian: apt-get install gcc)"
        )
    defines = [f"-D{switch}" for switch in switches]
    defines.append(f'-DWIRE_SERVER_VERSION="{package_version()}"')

    def make(work: Path) -> Path:
        built = work / program
        result = subprocess.run(
            [
                compiler,
                *CFLAGS,
                *(arg for path in sources.include_dirs for arg in ("-I", str(path))),
                *defines,
                *(str(path) for path in sources.compiled),
                "-o",
                str(built),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode:
            raise _compiler_failed(
                f"{what}'s wire server",
                f"{compiler} exited with status {result.returncode}",
                result.stderr,
            )
        return built

    key = sources.key("server", compiler, *CFLAGS, *defines)
    return _cached(build_dir() / f"{program}-{key}", make)


def server_for(switches: tuple[str, ...], source_dir: Path = SOURCE_DIR) -> Path:
    return compile_server(
        "the C candidate", "hmm-c-server", _core_sources(source_dir, _SERVER_SOURCES), switches
    )


def build_server(*, bugs: Iterable[str] = (), seed_locking: bool = False) -> Path:
    """Build the wire server (``ccore/server.c``) with the system C compiler; its path."""
    return server_for(switches_for(bugs, seed_locking))

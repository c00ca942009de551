"""Building the C candidate (``conformance/ccore/``) from source, at first use.

``module_for`` compiles the core with cffi (API mode) into a Python extension, and
``server_for`` compiles ``server.c`` with the system C compiler into the wire server, each with
compile-time switches (:func:`switches_for`: the deliberate bugs of :data:`BUGS`, or the seed's
own locking). docs/c-candidate.md describes the C.

Builds are cached in :func:`build_dir` under a name keyed by a hash of everything that goes into
them: the C sources, the switches and compiler flags, and for the in-process module the Python
and cffi versions. A build is written in a temporary directory and renamed into place, so a run
never loads a half-written file, and two runs building at once both end with a good one.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final, final

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
    "Core",
    "build_dir",
    "build_server",
    "module_for",
    "server_for",
    "switches_for",
]

#: The C sources, shipped in the package.
SOURCE_DIR: Final = Path(__file__).resolve().parent
_CORE_SOURCES: Final = ("candidate.c", "hmm.c", "locks.c", "mmu_notifier.c")
_SERVER_SOURCES: Final = (*_CORE_SOURCES, "json.c", "server.c")

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
};
struct hmm_candidate;

extern "Python" int hmm_py_sync(void *, int, const struct hmm_update *);
extern "Python" void hmm_py_release(void *, int);
extern "Python" int hmm_py_read_ptes(void *, unsigned long, unsigned long, struct cpu_pte *);

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


def _key(source_dir: Path, *parts: str) -> str:
    """A digest of every C source and header in ``source_dir``, and of ``parts``."""
    digest = hashlib.sha256()
    for path in sorted([*source_dir.glob("*.c"), *source_dir.glob("*.h")]):
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


def switches_for(bugs: Iterable[str], seed_locking: bool) -> tuple[str, ...]:
    chosen: set[str] = set()
    for bug in bugs:
        if bug not in BUGS:
            raise AdapterError(f"the C core has no bug {bug!r}; choose from {', '.join(BUGS)}")
        chosen.add(BUGS[bug])
    if seed_locking:
        chosen.add(_SEED_LOCKING)
    return tuple(sorted(chosen))


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


def module_for(switches: tuple[str, ...], source_dir: Path = SOURCE_DIR) -> tuple[str, Path]:
    """The module's name and the path of its build, compiling it if it is not cached."""
    try:
        import cffi  # noqa: PLC0415 - optional: the `c` extra
    except ImportError as error:
        raise AdapterError(
            "the C candidate needs cffi to build its Python module: "
            "pip install 'hmm-conformance[c]'"
        ) from error
    key = _key(source_dir, "module", *switches, *CFLAGS, _CDEF, sys.version, cffi.__version__)
    name = f"_hmm_ccore_{key}"
    target = build_dir() / f"{name}{sysconfig.get_config_var('EXT_SUFFIX')}"
    if target.exists():
        return name, target
    builder = cffi.FFI()
    builder.cdef(_CDEF)
    builder.set_source(
        name,
        '#include "candidate.h"\n#include "locks.h"',
        sources=[str(source_dir / source) for source in _CORE_SOURCES],
        include_dirs=[str(source_dir)],
        define_macros=[(switch, None) for switch in switches],
        extra_compile_args=list(CFLAGS),
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{name}-") as work:
        built, output = _compile_quietly(builder, work, cffi.VerificationError)
        if built is None:
            raise _compiler_failed("the C candidate's Python module", "the compiler failed", output)
        os.replace(built, target)
    return name, target


# -- the wire server -------------------------------------------------------------------------


def server_for(switches: tuple[str, ...], source_dir: Path = SOURCE_DIR) -> Path:
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise AdapterError(
            "building the C candidate's wire server needs a C compiler, and neither cc nor gcc "
            "is on PATH; install one (Debian: apt-get install gcc)"
        )
    defines = [f"-D{switch}" for switch in switches]
    defines.append(f'-DHMM_CANDIDATE_VERSION="{package_version()}"')
    target = build_dir() / f"hmm-c-server-{_key(source_dir, 'server', compiler, *CFLAGS, *defines)}"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}-") as work:
        built = Path(work) / "hmm-c-server"
        result = subprocess.run(
            [
                compiler,
                *CFLAGS,
                "-I",
                str(source_dir),
                *defines,
                *(str(source_dir / source) for source in _SERVER_SOURCES),
                "-o",
                str(built),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode:
            raise _compiler_failed(
                "the C candidate's wire server",
                f"{compiler} exited with status {result.returncode}",
                result.stderr,
            )
        os.replace(built, target)
    return target


def build_server(*, bugs: Iterable[str] = (), seed_locking: bool = False) -> Path:
    """Build the wire server (``ccore/server.c``) with the system C compiler; its path."""
    return server_for(switches_for(bugs, seed_locking))

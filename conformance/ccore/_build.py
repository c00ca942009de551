"""The C candidate: the seed's HMM core written in C (``conformance/ccore/``), built at first use.

``conformance:c_core`` compiles the core with cffi (API mode) and drives it in process;
``conformance:c_core_wire`` compiles ``ccore/server.c`` with the system C compiler and drives it
over the wire protocol. :func:`c_core_with` makes either with compile-time switches: the
deliberate bugs of :data:`BUGS`, or the seed's own locking. docs/c-candidate.md describes the C.

Builds are cached in :func:`build_dir` under a name keyed by a hash of everything that goes into
them: the C sources, the switches and compiler flags, and for the in-process module the Python
and cffi versions. A build is written in a temporary directory and renamed into place, so a run
never loads a half-written file, and two runs building at once both end with a good one.

The core calls its mirrors and reads the CPU page table through three ``extern "Python"``
functions, C function pointers into this module. An exception raised in one of them is kept,
the core is told the call failed (a mirror answered 0, a read gave ``-EFAULT``) and no further
callback runs; when the C call returns, the exception is raised again, so the executor reports
a crash with its traceback.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final, final

from hmm_ref import PAGE_SIZE, HmmMirrorOps, HmmUpdate, PfnEncoding, PteKind

from ..core._adapter import (
    PROTOCOL_VERSION,
    AdapterError,
    Candidate,
    CandidateRejected,
    CandidateWouldHang,
    Capability,
    CpuView,
    Handshake,
    RangeView,
)
from ..core._wire import exec_factory

if TYPE_CHECKING:
    import cffi
    from _hmm_ccore import FFI, CData, CpuPteArray, Lib, Update

__all__ = [
    "BUGS",
    "BUILD_DIR_ENV",
    "CFLAGS",
    "SOURCE_DIR",
    "CCoreCandidate",
    "LockStats",
    "build_dir",
    "build_server",
    "c_core",
    "c_core_wire",
    "c_core_with",
    "load_core",
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


def _version() -> str:
    return importlib.metadata.version("hmm-conformance")


def _tail(text: str) -> str:
    lines = text.strip().splitlines()[-_TAIL_LINES:]
    return "\n".join(f"    {line}" for line in lines) or "    (nothing)"


def _compiler_failed(what: str, how: str, output: str) -> AdapterError:
    return AdapterError(
        f"building {what} failed: {how}. A C compiler is needed (cc or gcc on PATH; the "
        f"in-process build uses $CC if set, and the Python headers). The compiler said:\n"
        f"{_tail(output)}"
    )


def _switches(bugs: Iterable[str], seed_locking: bool) -> tuple[str, ...]:
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
class _Core:
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


def _build_module(switches: tuple[str, ...], source_dir: Path = SOURCE_DIR) -> tuple[str, Path]:
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


@functools.cache
def load_core(switches: tuple[str, ...] = ()) -> _Core:
    """The core built with ``switches`` (sorted ``-D`` names), built if needed, once a process."""
    name, path = _build_module(switches)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None, f"{path} is not a Python extension"
    assert spec.loader is not None, f"{path} has no loader"
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    core = _Core(ffi=module.ffi, lib=module.lib)
    _attach_callbacks(core)
    return core


def _attach_callbacks(core: _Core) -> None:
    """Give the module's ``extern "Python"`` functions their bodies: the candidate's methods."""
    ffi = core.ffi

    def candidate(host: CData) -> CCoreCandidate:
        found = ffi.from_handle(host)
        assert isinstance(found, CCoreCandidate), f"{found!r} is not a C core candidate"
        return found

    @ffi.def_extern(name="hmm_py_sync")
    def sync(host: CData, mirror: int, update: Update) -> int:
        return candidate(host)._sync(mirror, update)

    @ffi.def_extern(name="hmm_py_release")
    def release(host: CData, mirror: int) -> None:
        candidate(host)._release(mirror)

    @ffi.def_extern(name="hmm_py_read_ptes")
    def read_ptes(host: CData, start: int, end: int, ptes: CpuPteArray) -> int:
        return candidate(host)._read_ptes(start, end, ptes)


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

    def __init__(self, core: _Core) -> None:
        ffi, lib = core.ffi, core.lib
        self._ffi, self._lib = ffi, lib
        self._handle = ffi.new_handle(self)
        host = ffi.new(
            "struct hmm_candidate_host *",
            {
                "sync": lib.hmm_py_sync,
                "release": lib.hmm_py_release,
                "read_ptes": lib.hmm_py_read_ptes,
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
            version=_version(),
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

    def snapshot(self, range_id: int, vma: int, start: int, end: int, encoding: PfnEncoding) -> int:
        native = self._ffi.new(
            "struct hmm_encoding *",
            {
                "flags": list(encoding.flags),
                "values": list(encoding.values),
                "pfn_shift": encoding.pfn_shift,
            },
        )
        return self._settle(
            self._lib.hmm_candidate_snapshot(self._c, range_id, vma, start, end, native)
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


# -- the wire server -------------------------------------------------------------------------


def _build_server(switches: tuple[str, ...], source_dir: Path = SOURCE_DIR) -> Path:
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise AdapterError(
            "building the C candidate's wire server needs a C compiler, and neither cc nor gcc "
            "is on PATH; install one (Debian: apt-get install gcc)"
        )
    defines = [f"-D{switch}" for switch in switches]
    defines.append(f'-DHMM_CANDIDATE_VERSION="{_version()}"')
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
    return _build_server(_switches(bugs, seed_locking))


# -- the factories ---------------------------------------------------------------------------


def c_core_with(
    *, bugs: Iterable[str] = (), seed_locking: bool = False, wire: bool = False
) -> Callable[[], Candidate]:
    """A factory of the C core built with the named ``bugs`` (:data:`BUGS`), or with the seed's
    own locking; in process, or over the wire protocol if ``wire``. It builds at first use."""
    switches = _switches(bugs, seed_locking)
    if not wire:
        return lambda: CCoreCandidate(load_core(switches))

    def over_the_wire() -> Candidate:
        return exec_factory([str(_build_server(switches))])()

    return over_the_wire


def c_core() -> CCoreCandidate:
    """The factory behind ``--adapter conformance:c_core``: the C core, in process."""
    return CCoreCandidate(load_core())


def c_core_wire() -> Candidate:
    """The factory behind ``--adapter conformance:c_core_wire``: the C core's wire server."""
    return c_core_with(wire=True)()

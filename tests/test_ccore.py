"""The C candidate in process: it behaves as the reference on every case, its two deliberate bugs
are caught, it never sleeps in a non-blockable start, what its callbacks raise reaches the
executor, and its builds fail with the compiler's own words."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import cast

import pytest

import conformance
import hmm_ref as H
from conformance import (
    AdapterError,
    Budget,
    Candidate,
    CandidateRejected,
    CandidateWouldHang,
    Case,
    CoreOperation,
    Failure,
    InvalidateStart,
    Profile,
    RegisterMirror,
    Release,
    Snapshot,
    UnregisterMirror,
    VmaSpec,
    World,
    c_core,
    c_core_wire,
    c_core_with,
    explore,
    reference,
    replay,
    run,
    start,
)
from conformance._generation import VMAS
from conformance._report import rule_rows
from conformance.ccore import BUGS, CCoreCandidate, LockStats, _build, build_server
from conformance.ccore._build import SOURCE_DIR, build_dir
from conformance.core._adapter import load_factory
from conformance.core._model import CpuState
from conformance.core._side import CoreFailure, CoreResult
from conformance.oracle import Status

pytestmark = pytest.mark.usefixtures("ccore_build_dir")

SEED = 1
#: Small, but every rule of the seed profile is reached in it (the first test checks).
BUDGET = Budget(name="ccore", examples=40, steps=30)
EAGAIN = -H.Errno.EAGAIN
WORLD = World(vmas=VMAS, ptes=((VMAS[0].start, H.Pte.present(0x100, write=True)),))
SNAP_PAGE = Snapshot(
    range=0,
    vma=0,
    start=VMAS[0].start,
    end=VMAS[0].start + H.PAGE_SIZE,
    encoding=H.DEFAULT_ENCODING,
)


def _in_process(factory: Callable[[], Candidate]) -> CCoreCandidate:
    candidate = factory()
    assert isinstance(candidate, CCoreCandidate)
    return candidate


def _since(after: LockStats, before: LockStats) -> LockStats:
    return LockStats(
        sleeping=after.sleeping - before.sleeping,
        sleeping_in_non_block=after.sleeping_in_non_block - before.sleeping_in_non_block,
        trylocks_in_non_block=after.trylocks_in_non_block - before.trylocks_in_non_block,
        non_block_sections=after.non_block_sections - before.non_block_sections,
    )


def _replay(
    factory: Callable[[], Candidate], *ops: CoreOperation, profile: Profile = Profile.SEED
) -> CoreFailure | None:
    candidate, handshake = start(factory)
    outcome = replay(candidate, handshake, Case(world=WORLD, ops=ops), profile)
    return outcome if isinstance(outcome, Failure) else None


def _rules(failure: CoreFailure | None) -> set[str | None]:
    assert failure is not None
    return {verdict.rule for verdict in failure.verdicts}


@pytest.fixture(scope="module")
def side_by_side() -> tuple[CoreResult, CoreResult, LockStats]:
    """The reference and the C core over the same generated cases, and what the shims counted."""
    expected = run(*start(reference), budget=BUDGET, seed_value=SEED)
    candidate = c_core()
    before = candidate.lock_stats()
    result = run(candidate, candidate.handshake(), budget=BUDGET, seed_value=SEED)
    return expected, result, _since(candidate.lock_stats(), before)


def test_the_c_core_conforms_and_judges_every_step_as_the_reference_does(
    side_by_side: tuple[CoreResult, CoreResult, LockStats],
) -> None:
    """Over the same cases the C core conforms with the reference's capabilities, and every
    rule's verdict counts and latitudes are the reference's: it behaved the same at every step."""
    expected, result, _ = side_by_side
    assert result.conforms
    assert result.handshake.name == "hmm-c"
    assert result.handshake.capabilities == expected.handshake.capabilities
    assert result.tally.counts == expected.tally.counts
    assert result.tally.latitudes == expected.tally.latitudes
    statuses = {row.rule.id: row.status for row in rule_rows(result)}
    assert {statuses.pop(rule) for rule in ("REG-5", "REL-3", "FLT-6")} == {"not-in-profile"}
    assert set(statuses.values()) == {"ok"}


def test_no_sleeping_lock_is_taken_in_a_non_blockable_start(
    side_by_side: tuple[CoreResult, CoreResult, LockStats],
) -> None:
    """Across the run, non-blockable starts took mirrors_sem by try-lock only, while blockable
    paths did take sleeping locks: the shims counted, and found nothing to count (DRV-1)."""
    stats = side_by_side[2]
    assert stats.sleeping_in_non_block == 0
    assert stats.non_block_sections > 0
    assert stats.trylocks_in_non_block > 0
    assert stats.sleeping > 0


def test_the_seeds_own_locking_sleeps_in_a_non_blockable_start() -> None:
    """Built to take mirrors_sem as the seed does (down_read in both modes), the core still
    conforms, and the shims count one sleeping lock per non-blockable mirror pass."""
    candidate = _in_process(c_core_with(seed_locking=True))
    assert candidate.handshake().name == "hmm-c+seed-locking"
    before = candidate.lock_stats()
    ops = (
        RegisterMirror(mirror=0),
        InvalidateStart(start=VMAS[0].start, end=VMAS[0].end, blockable=False),
        InvalidateStart(start=VMAS[0].start, end=VMAS[0].end, blockable=True),
    )
    outcome = replay(candidate, candidate.handshake(), Case(world=WORLD, ops=ops), Profile.SEED)
    assert not isinstance(outcome, Failure)
    stats = _since(candidate.lock_stats(), before)
    assert stats.sleeping_in_non_block == stats.non_block_sections == 1
    assert stats.trylocks_in_non_block == 0


def test_the_c_core_holds_for_every_sequence_of_three() -> None:
    """The exhaustive engine at depth 3 finds nothing and reaches every rule in force."""
    result = explore(*start(c_core), depth=3)
    assert result.conforms
    assert result.completed == 3
    assert result.unreached == ()


def test_under_strict_the_c_core_fails_the_seed_defects_as_the_reference_does() -> None:
    """REG-5 (the register livelock, surfaced as would-hang) and REL-3 (a range left valid at
    release) fail the C core at the same step, against the same rule, as the reference."""
    livelock = (
        RegisterMirror(mirror=0),
        RegisterMirror(mirror=1),
        UnregisterMirror(mirror=0),
        RegisterMirror(mirror=2),
    )
    for ops, rule in ((livelock, "REG-5"), ((SNAP_PAGE, Release()), "REL-3")):
        ours = _replay(c_core, *ops, profile=Profile.STRICT)
        theirs = _replay(reference, *ops, profile=Profile.STRICT)
        assert _rules(ours) == _rules(theirs) == {rule}
        assert ours is not None
        assert theirs is not None
        assert len(ours.steps) == len(theirs.steps) == len(ops)


@pytest.mark.parametrize(
    ("bug", "rules"),
    [("eagain-ignored", {"INV-4"}), ("no-range-clear", {"RNG-3", "END-2"})],
)
def test_each_bug_switch_is_caught_against_its_rule(bug: str, rules: set[str]) -> None:
    """A build with one deliberate bug fails one of its rules; the exhaustive engine's shortest
    counterexample has two steps, as the catalogue's entry for the same bug does."""
    assert bug in BUGS
    candidate, handshake = start(c_core_with(bugs=[bug]))
    assert handshake.name == f"hmm-c+{bug}"
    result = explore(candidate, handshake, depth=2)
    assert result.failure is not None
    assert {verdict.rule for verdict in result.failure.verdicts} & rules
    assert len(result.failure.case.ops) == 2


def test_an_unknown_bug_is_refused_with_the_ones_there_are() -> None:
    """Asking for a bug the C core does not have names the bugs it has."""
    with pytest.raises(AdapterError, match="no bug 'sleepy'; choose from eagain-ignored, no-"):
        c_core_with(bugs=["sleepy"])


# -- the candidate's own edges -----------------------------------------------------------------

VMA = VmaSpec(start=0x10000, end=0x14000)


class _Cpu:
    """One vma (four pages unless told); page i maps pfn 0x100 + i, writable; every read is
    logged. ``broken``: reads raise."""

    def __init__(self, *, pages: int = 4, broken: bool = False) -> None:
        self.vma = VmaSpec(start=VMA.start, end=VMA.start + pages * H.PAGE_SIZE)
        self.broken = broken
        self.reads: list[int] = []

    @property
    def vmas(self) -> Sequence[VmaSpec]:
        return (self.vma,)

    def pte(self, addr: int) -> H.Pte:
        self.reads.append(addr)
        if self.broken:
            raise OSError("the page table is gone")
        return H.Pte.present(0x100 + (addr - VMA.start) // H.PAGE_SIZE, write=True)

    def handle_mm_fault(self, addr: int, write: bool, allow_retry: bool, nowait: bool) -> int:
        raise AssertionError(f"handle_mm_fault({addr:#x}) was not to be called")

    def migration_entry_wait(self, addr: int) -> None:
        raise AssertionError(f"migration_entry_wait({addr:#x}) was not to be called")


class _Mirror:
    """Mirror ops that log each call; ``answers`` are taken one a sync (then 0)."""

    def __init__(
        self, name: str, log: list[str], *answers: Callable[[], int], release_fails: bool = False
    ) -> None:
        self.name, self.log = name, log
        self.answers = list(answers)
        self.release_fails = release_fails

    def sync_cpu_device_pagetables(self, update: H.HmmUpdate) -> int:
        self.log.append(f"sync {self.name}")
        return self.answers.pop(0)() if self.answers else 0

    def release(self) -> None:
        self.log.append(f"release {self.name}")
        if self.release_fails:
            raise OSError(f"{self.name} cannot let go")


def _raise(error: BaseException) -> Callable[[], int]:
    def answer() -> int:
        raise error

    return answer


def _fresh() -> CCoreCandidate:
    candidate = c_core()
    candidate.begin(_Cpu())
    return candidate


def test_a_mirror_callbacks_exception_is_raised_when_the_c_call_returns() -> None:
    """The exception comes out of invalidate_start as raised; no later callback reached the
    harness meanwhile; and the next call runs normally."""
    log: list[str] = []
    boom = RuntimeError("the driver fell over")
    candidate = _fresh()
    candidate.register(0, _Mirror("old", log))
    candidate.register(1, _Mirror("new", log, _raise(boom)))
    with pytest.raises(RuntimeError) as caught:
        candidate.invalidate_start(VMA.start, VMA.end, False)
    assert caught.value is boom
    assert log == ["sync new"]
    log.clear()
    assert candidate.invalidate_start(VMA.start, VMA.end, False) == 0
    assert log == ["sync new", "sync old"]


@pytest.mark.parametrize("answer", ["0", 2**40, None])
def test_a_mirror_answer_that_is_no_c_int_is_a_crash(answer: object) -> None:
    """A sync callback must answer an int that fits a C int; anything else is raised."""
    candidate = _fresh()
    candidate.register(0, _Mirror("m", [], lambda: cast(int, answer)))
    with pytest.raises(TypeError, match=r"m0's sync_cpu_device_pagetables answered .*not a C int"):
        candidate.invalidate_start(VMA.start, VMA.end, True)


def test_a_release_ops_exception_is_raised_after_release() -> None:
    """The newest mirror's release op raises: release raises it, the older one was not told."""
    log: list[str] = []
    candidate = _fresh()
    candidate.register(0, _Mirror("old", log))
    candidate.register(1, _Mirror("new", log, release_fails=True))
    with pytest.raises(OSError, match="new cannot let go"):
        candidate.release()
    assert log == ["release new"]


def test_a_page_table_read_that_fails_leaves_no_range_registered() -> None:
    """A snapshot whose read of the CPU page table raises raises that, and registers nothing."""
    candidate = c_core()
    candidate.begin(_Cpu(broken=True))
    with pytest.raises(OSError, match="the page table is gone"):
        candidate.snapshot(0, 0, VMA.start, VMA.end, H.DEFAULT_ENCODING)
    view = candidate.observe(0)
    assert not view.registered
    assert not view.valid
    with pytest.raises(CandidateRejected, match="on no list"):
        candidate.range_done(0)


def test_the_executor_reports_a_failing_callback_as_a_crash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What a callback raised reaches the executor: a CRASH verdict with its traceback."""

    def gone(self: CpuState, addr: int) -> H.Pte:
        raise OSError("the harness lost the page table")

    monkeypatch.setattr(CpuState, "pte", gone)
    failure = _replay(c_core, SNAP_PAGE)
    assert failure is not None
    [verdict] = failure.verdicts
    assert verdict.status is Status.CRASH
    assert "the harness lost the page table" in verdict.detail


def test_a_snapshot_is_encoded_and_invalidated_as_the_seed_does() -> None:
    """Entries carry the range's encoding; an invalidation zeroes the overlap only, and the
    range stays invalid; range_done reports it."""
    candidate = _fresh()
    encoding = H.PfnEncoding(flags=(1 << 63, 1 << 62, 1 << 61), values=(0xE, 0xF, 0xD), pfn_shift=4)
    assert candidate.snapshot(0, 0, VMA.start, VMA.end, encoding) == 0
    page = [encoding.encode_page(0x100 + index, write=True) for index in range(4)]
    assert candidate.observe(0) == conformance.RangeView(
        registered=True, valid=True, entries=tuple(page)
    )
    assert (
        candidate.invalidate_start(VMA.start + H.PAGE_SIZE, VMA.start + 3 * H.PAGE_SIZE, True) == 0
    )
    assert candidate.observe(0).entries == (page[0], 0, 0, page[3])
    assert candidate.range_done(0) is False


def test_a_long_snapshot_reads_every_page_once() -> None:
    """The walk reads the page table in batches, and every page is read once and encoded."""
    cpu = _Cpu(pages=150)
    candidate = c_core()
    candidate.begin(cpu)
    assert candidate.snapshot(0, 0, cpu.vma.start, cpu.vma.end, H.DEFAULT_ENCODING) == 0
    assert cpu.reads == list(range(cpu.vma.start, cpu.vma.end, H.PAGE_SIZE))
    encode = H.DEFAULT_ENCODING.encode_page
    assert candidate.observe(0).entries == tuple(encode(0x100 + i, write=True) for i in range(150))


def test_misuse_is_refused_and_leaves_the_state_as_it_was() -> None:
    """Unknown ranges and vmas, reversed or empty spans, range_done twice or on an empty range,
    and calls other than observe from inside a callback are refused; nothing changes."""
    candidate = _fresh()
    inside: list[str] = []

    def nested() -> int:
        inside.append(f"valid={candidate.observe(0).valid}")
        calls: dict[str, Callable[[], object]] = {
            "begin": lambda: candidate.begin(_Cpu()),
            "register": lambda: candidate.register(9, _Mirror("late", [])),
            "unregister": lambda: candidate.unregister(0),
            "snapshot": lambda: candidate.snapshot(1, 0, VMA.start, VMA.end, H.DEFAULT_ENCODING),
            "range_done": lambda: candidate.range_done(0),
            "invalidate_start": lambda: candidate.invalidate_start(VMA.start, VMA.end, True),
            "invalidate_end": lambda: candidate.invalidate_end(VMA.start, VMA.end),
            "release": candidate.release,
            "close": candidate.close,
        }
        for name, call in calls.items():
            with pytest.raises(CandidateRejected, match="only observe may be called"):
                call()
            inside.append(f"{name} refused")
        return 0

    assert candidate.register(0, _Mirror("m", [], nested)) == 0
    assert candidate.snapshot(0, 0, VMA.start, VMA.end, H.DEFAULT_ENCODING) == 0
    with pytest.raises(CandidateRejected, match="no snapshot by this number"):
        candidate.observe(7)
    with pytest.raises(CandidateRejected, match="no vma by this number"):
        candidate.snapshot(1, 5, VMA.start, VMA.end, H.DEFAULT_ENCODING)
    with pytest.raises(CandidateRejected, match="ends before it starts"):
        candidate.snapshot(2, 0, VMA.end, VMA.start, H.DEFAULT_ENCODING)
    with pytest.raises(CandidateRejected, match="ends before it starts"):
        candidate.invalidate_start(VMA.start, VMA.start, True)
    with pytest.raises(CandidateRejected, match="ends before it starts"):
        candidate.invalidate_end(VMA.end, VMA.start)
    assert candidate.observe(0).valid
    assert candidate.invalidate_start(VMA.start, VMA.end, True) == 0
    assert inside == [
        "valid=False",
        *(f"{name} refused" for name in ("begin", "register", "unregister", "snapshot")),
        *(f"{name} refused" for name in ("range_done", "invalidate_start", "invalidate_end")),
        "release refused",
        "close refused",
    ]
    assert candidate.range_done(0) is False
    with pytest.raises(CandidateRejected, match="done already"):
        candidate.range_done(0)
    assert candidate.snapshot(3, 0, VMA.start, VMA.start, H.DEFAULT_ENCODING) == 0
    with pytest.raises(CandidateRejected, match="end <= start"):
        candidate.range_done(3)
    assert candidate.observe(3).registered


def test_the_register_livelock_is_would_hang_and_changes_nothing() -> None:
    """After one of two mirrors is unregistered, a register is refused as would-hang, and the
    remaining mirror is still the only one called."""
    log: list[str] = []
    candidate = _fresh()
    candidate.register(0, _Mirror("first", log))
    candidate.register(1, _Mirror("second", log))
    candidate.unregister(0)
    with pytest.raises(CandidateWouldHang, match="retries for ever"):
        candidate.register(2, _Mirror("third", log))
    assert candidate.invalidate_start(VMA.start, VMA.end, True) == 0
    assert log == ["sync second"]


@pytest.mark.parametrize("factory", [c_core, reference], ids=["c-core", "reference"])
def test_a_range_that_outlives_its_hmm_ends_as_in_the_seed(
    factory: Callable[[], Candidate],
) -> None:
    """After its hmm went with the last mirror, a range's range_done makes a new hmm (bug
    history #11) and reports the range; once the mm has exited it is refused instead, since
    the seed would BUG() making one. The C core and the reference agree."""
    candidate = factory()
    for exits in (False, True):
        candidate.begin(_Cpu())
        assert candidate.register(0, _Mirror("only", [])) == 0
        assert candidate.snapshot(0, 0, VMA.start, VMA.end, H.DEFAULT_ENCODING) == 0
        candidate.unregister(0)
        if not exits:
            assert candidate.range_done(0) is True
            continue
        candidate.release()
        with pytest.raises(CandidateRejected, match=r"(?i)the mm has exited"):
            candidate.range_done(0)
        assert candidate.observe(0).registered


def test_no_hmm_is_made_on_an_exited_mm() -> None:
    """A register or snapshot that would create the mm's first hmm after release is refused."""
    candidate = _fresh()
    candidate.release()
    with pytest.raises(CandidateRejected, match="the mm has exited"):
        candidate.register(0, _Mirror("late", []))
    with pytest.raises(CandidateRejected, match="the mm has exited"):
        candidate.snapshot(0, 0, VMA.start, VMA.end, H.DEFAULT_ENCODING)


def test_close_forgets_the_case_and_the_candidate_goes_on() -> None:
    """close() ends the case (twice is fine); a new case begins on the same candidate."""
    candidate = _fresh()
    candidate.snapshot(0, 0, VMA.start, VMA.end, H.DEFAULT_ENCODING)
    candidate.close()
    candidate.close()
    with pytest.raises(CandidateRejected, match="no snapshot"):
        candidate.observe(0)
    candidate.begin(_Cpu())
    assert candidate.snapshot(0, 0, VMA.start, VMA.end, H.DEFAULT_ENCODING) == 0


# -- building -----------------------------------------------------------------------------------


def test_a_build_is_taken_from_the_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """Once built, a build is found by its key and not compiled again."""
    built = _build.module_for(())

    def never(*args: object) -> tuple[str | None, str]:
        raise AssertionError("compiled again")

    monkeypatch.setattr(_build, "_compile_quietly", never)
    name, path = _build.module_for(())
    assert (name, path) == built
    assert path.parent == build_dir()
    assert path.name.startswith(name)
    assert path.is_file()
    server = build_server()
    assert build_server() == server
    assert server.parent == build_dir()


def test_builds_go_where_the_environment_says(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """$HMM_CONFORMANCE_BUILD_DIR, else $XDG_CACHE_HOME/hmm-conformance, else ~/.cache."""
    monkeypatch.setenv(_build.BUILD_DIR_ENV, str(tmp_path / "chosen"))
    assert build_dir() == tmp_path / "chosen"
    monkeypatch.delenv(_build.BUILD_DIR_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert build_dir() == tmp_path / "xdg" / "hmm-conformance"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert build_dir() == tmp_path / "home" / ".cache" / "hmm-conformance"


def test_without_cffi_the_build_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    """cffi is an extra; without it the error names the extra to install."""
    monkeypatch.setitem(sys.modules, "cffi", None)
    with pytest.raises(AdapterError, match=r"pip install 'hmm-conformance\[c\]'"):
        _build.module_for(())


@pytest.fixture
def broken_sources(tmp_path: Path) -> Path:
    """A copy of the C sources that does not compile."""
    sources = tmp_path / "broken"
    shutil.copytree(SOURCE_DIR, sources)
    with (sources / "hmm.c").open("a") as source:
        source.write('#error "this core was broken on purpose"\n')
    return sources


def test_a_compile_error_shows_what_the_compiler_said(
    broken_sources: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Both builds fail with the compiler's message, say a C compiler is needed, and leave
    nothing behind in the cache."""
    cache = tmp_path / "cache"
    monkeypatch.setenv(_build.BUILD_DIR_ENV, str(cache))
    with pytest.raises(AdapterError) as module:
        _build.module_for((), source_dir=broken_sources)
    with pytest.raises(AdapterError) as server:
        _build.server_for((), source_dir=broken_sources)
    for caught, how in ((module, "the compiler failed"), (server, "exited with status 1")):
        message = str(caught.value)
        assert how in message
        assert "this core was broken on purpose" in message
        assert "A C compiler is needed" in message
    assert list(cache.iterdir()) == []


def test_without_a_compiler_the_build_says_one_is_needed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """No compiler where $CC points, or none on PATH: the error says a C compiler is needed."""
    monkeypatch.setenv(_build.BUILD_DIR_ENV, str(tmp_path))
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    with pytest.raises(AdapterError, match=r"(?s)C compiler is needed.*no-such-cc"):
        _build.module_for(())
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(AdapterError, match="neither cc nor gcc is on PATH"):
        build_server()


# -- the factories -------------------------------------------------------------------------------


def test_the_factories_are_where_the_command_line_looks() -> None:
    """``--adapter conformance:c_core`` names the in-process factory, and it makes a candidate
    of the protocol's version."""
    candidate, handshake = start(load_factory("conformance:c_core"))
    assert isinstance(candidate, CCoreCandidate)
    assert handshake.protocol_version == conformance.PROTOCOL_VERSION
    assert load_factory("conformance:c_core_wire") is not None


def test_the_wire_factory_runs_the_built_server() -> None:
    """``conformance:c_core_wire`` drives the C server through the wire adapter (the server's
    own tests run the suite through it)."""
    candidate, handshake = start(c_core_wire)
    try:
        assert handshake.name == "hmm-c"
        assert handshake.capabilities == frozenset(conformance.Capability)
        outcome = replay(candidate, handshake, Case(world=WORLD, ops=(SNAP_PAGE,)), Profile.SEED)
        assert not isinstance(outcome, Failure)
        assert candidate.observe(0).entries == (H.DEFAULT_ENCODING.encode_page(0x100, write=True),)
    finally:
        candidate.close()


def test_a_bug_switch_reaches_the_wire_server() -> None:
    """A server built with a bug is caught over the wire, against the bug's rule."""
    ops = (
        RegisterMirror(mirror=0),
        InvalidateStart(
            start=VMAS[0].start, end=VMAS[0].end, blockable=False, replies=((0, EAGAIN),)
        ),
    )
    candidate, handshake = start(c_core_with(bugs=["eagain-ignored"], wire=True))
    try:
        assert handshake.name == "hmm-c+eagain-ignored"
        outcome = replay(candidate, handshake, Case(world=WORLD, ops=ops), Profile.SEED)
    finally:
        candidate.close()
    assert isinstance(outcome, Failure)
    assert _rules(outcome) == {"INV-4"}

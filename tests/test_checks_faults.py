"""The FLT checks: the model's walk (``_faulting``), each check's verdicts on the reference (run
through the executor and its ``fault``/``_Forward``) and on candidates that break one thing."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

import hmm_ref as H
from conformance import CaseFormatError, replay, start
from conformance._case import CpuState, FaultCall, VmaSpec, World
from conformance._driving import FailuresOnly
from conformance._rules import Profile
from conformance._verdicts import Status, Verdict
from conformance.core._adapter import Capability, CpuView, Handshake, RangeView
from conformance.core._catalogue import EagainWhenSemDropped, ErrorMarkKept
from conformance.core._checks_faults import (
    check_FLT_1,
    check_FLT_2,
    check_FLT_3,
    check_FLT_4,
    check_FLT_5,
    check_FLT_6,
)
from conformance.core._executor import Executor, StepOutcome
from conformance.core._faulting import FaultWalk, cpu_before, fault_walk, needs_fault
from conformance.core._model import Model, Observation
from conformance.core._ops import Case, FaultSnapshot, RangeDone, RegisterMirror
from conformance.core._reference import ReferenceCandidate, reference
from conformance.core._seed_fault import SeedFaultCore
from conformance.core._side import CORE
from examples.exact_core import ExactCore
from hmm_ref import (
    DEFAULT_ENCODING,
    PAGE_SIZE,
    PTE_MIGRATION,
    PTE_NONE,
    PTE_POISON,
    PTE_SWAP,
    Errno,
    FaultOutcome,
    HmmMirrorOps,
    PfnEncoding,
    Pte,
    VmFault,
    fault_pfn,
)

from . import candidates as C

P = PAGE_SIZE
ENC = DEFAULT_ENCODING
ERROR, NONE, SPECIAL = ENC.values
HANDLE = "handle_mm_fault"
WAIT = "migration_entry_wait"
CHECKS = (check_FLT_1, check_FLT_2, check_FLT_3, check_FLT_4, check_FLT_5, check_FLT_6)

#: vma 0: [P, 9P) read-write; vma 1: [16P, 20P) special; vma 2: [24P, 28P) unreadable;
#: vma 3: [32P, 36P) read-only.
VMAS = (
    VmaSpec(start=P, end=9 * P),
    VmaSpec(start=16 * P, end=20 * P, special=True),
    VmaSpec(start=24 * P, end=28 * P, read=False),
    VmaSpec(start=32 * P, end=36 * P, write=False),
)


def _world(*ptes: tuple[int, Pte]) -> World:
    return World(vmas=VMAS, ptes=tuple(sorted(ptes)))


def _present(addr: int, *, write: bool = False) -> int:
    return ENC.encode_page(fault_pfn(addr), write=write)


def fault_op(
    start: int,
    requests: Sequence[int],
    *,
    vma: int = 0,
    block: bool = False,
    handler: tuple[tuple[int, FaultOutcome], ...] = (),
) -> FaultSnapshot:
    return FaultSnapshot(
        range=1,
        vma=vma,
        start=start,
        end=start + len(requests) * P,
        encoding=ENC,
        block=block,
        requests=tuple(requests),
        handler=handler,
    )


# -- candidates ------------------------------------------------------------------------------


class Wrapped:
    """The reference, renamed, with the CPU side it sees behind hooks; subclasses break one
    thing each."""

    capabilities: frozenset[Capability] = frozenset(Capability)

    def __init__(self) -> None:
        self.inner = ReferenceCandidate()
        self.cpu: CpuView | None = None
        self.block = False

    # the CPU side as the reference sees it
    @property
    def vmas(self) -> Sequence[VmaSpec]:
        assert self.cpu is not None
        return self.cpu.vmas

    def pte(self, addr: int) -> Pte:
        assert self.cpu is not None
        return self.cpu.pte(addr)

    def handle_mm_fault(self, addr: int, write: bool, allow_retry: bool, nowait: bool) -> int:
        assert self.cpu is not None
        return self.cpu.handle_mm_fault(addr, write, allow_retry, nowait)

    def migration_entry_wait(self, addr: int) -> None:
        assert self.cpu is not None
        self.cpu.migration_entry_wait(addr)

    # the candidate
    def handshake(self) -> Handshake:
        inner = self.inner.handshake()
        return Handshake(
            protocol_version=inner.protocol_version,
            name=type(self).__name__,
            version="test",
            capabilities=self.capabilities,
        )

    def begin(self, cpu: CpuView) -> None:
        self.cpu = cpu
        self.inner.begin(self)

    def register(self, mirror: int, ops: HmmMirrorOps | None) -> int:
        return self.inner.register(mirror, ops)

    def unregister(self, mirror: int) -> None:
        self.inner.unregister(mirror)

    def snapshot(self, range_id: int, vma: int, start: int, end: int, encoding: PfnEncoding) -> int:
        return self.inner.snapshot(range_id, vma, start, end, encoding)

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
        self.block = block
        result = self.inner.fault(range_id, vma, start, end, encoding, pfns=pfns, block=block)
        return self.result(result)

    def result(self, result: int) -> int:
        return result

    def observe(self, range_id: int) -> RangeView:
        return self.view(self.inner.observe(range_id))

    def view(self, view: RangeView) -> RangeView:
        return view

    def range_done(self, range_id: int) -> bool:
        return self.inner.range_done(range_id)

    def invalidate_start(self, start: int, end: int, blockable: bool) -> int:
        return self.inner.invalidate_start(start, end, blockable)

    def invalidate_end(self, start: int, end: int) -> None:
        self.inner.invalidate_end(start, end)

    def release(self) -> None:
        self.inner.release()

    def close(self) -> None:
        self.inner.close()


class Returns(Wrapped):
    """Returns ``value`` from every fault."""

    def __init__(self, value: int) -> None:
        super().__init__()
        self.value = value

    def result(self, result: int) -> int:
        return self.value


class Shows(Wrapped):
    """Observes its ranges with ``registered`` and some entries changed."""

    def __init__(
        self, *, registered: bool | None = None, valid: bool | None = None, **entries: int
    ) -> None:
        super().__init__()
        self.registered = registered
        self.valid = valid
        self.entries = {int(key[1:]): value for key, value in entries.items()}

    def view(self, view: RangeView) -> RangeView:
        entries = list(view.entries)
        for index, value in self.entries.items():
            entries[index] = value
        return RangeView(
            registered=view.registered if self.registered is None else self.registered,
            valid=view.valid if self.valid is None else self.valid,
            entries=tuple(entries),
        )


class Truncates(Wrapped):
    """Observes its ranges with their last entry missing."""

    def view(self, view: RangeView) -> RangeView:
        return RangeView(registered=view.registered, valid=view.valid, entries=view.entries[:-1])


class FlipsWrite(Wrapped):
    """Faults every page for write."""

    def handle_mm_fault(self, addr: int, write: bool, allow_retry: bool, nowait: bool) -> int:
        return super().handle_mm_fault(addr, True, allow_retry, nowait)


class Skips(Wrapped):
    """Says the fault at ``addr`` succeeded without making it."""

    def __init__(self, addr: int) -> None:
        super().__init__()
        self.addr = addr

    def handle_mm_fault(self, addr: int, write: bool, allow_retry: bool, nowait: bool) -> int:
        if addr == self.addr:
            return 0
        return super().handle_mm_fault(addr, write, allow_retry, nowait)


class WaitsAfter(Wrapped):
    """Waits for a migration at the range's start after the fault, whatever it holds."""

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
        result = super().fault(range_id, vma, start, end, encoding, pfns=pfns, block=block)
        self.migration_entry_wait(start)
        return result


class FaultsFirst(Wrapped):
    """Faults the range's first page before anything else, refused or not."""

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
        self.handle_mm_fault(start, False, True, not block)
        return super().fault(range_id, vma, start, end, encoding, pfns=pfns, block=block)


class Flags(Wrapped):
    """Passes fixed ``allow_retry``/``nowait`` (None: as the reference does)."""

    def __init__(self, *, allow_retry: bool | None = None, nowait: bool | None = None) -> None:
        super().__init__()
        self.allow_retry = allow_retry
        self.nowait = nowait

    def handle_mm_fault(self, addr: int, write: bool, allow_retry: bool, nowait: bool) -> int:
        return super().handle_mm_fault(
            addr,
            write,
            allow_retry if self.allow_retry is None else self.allow_retry,
            nowait if self.nowait is None else self.nowait,
        )


class Fixed(Wrapped):
    """The 2019 fix: a blocking fault does not allow retry, so the handler waits."""

    def handle_mm_fault(self, addr: int, write: bool, allow_retry: bool, nowait: bool) -> int:
        return super().handle_mm_fault(addr, write, not self.block, nowait)


class NotStrict(Wrapped):
    """The reference without the strict capability."""

    capabilities = frozenset(Capability) - {Capability.STRICT}


# -- running ---------------------------------------------------------------------------------


def run(
    op: FaultSnapshot,
    world: World,
    candidate: Wrapped | ReferenceCandidate | None = None,
    profile: Profile = Profile.SEED,
) -> tuple[StepOutcome, dict[str, Verdict], Executor]:
    """One fault step after registering a mirror; the step and its FLT verdicts by rule."""
    cand = candidate if candidate is not None else reference()
    executor = Executor(cand, cand.handshake(), profile, world)
    assert executor.begin() is None
    registered = executor.step(RegisterMirror(mirror=1))
    assert not registered.failed
    outcome = executor.step(op)
    flt = {v.rule: v for v in outcome.verdicts if v.rule is not None and v.rule.startswith("FLT")}
    return outcome, flt, executor


def passes(
    op: FaultSnapshot,
    world: World,
    candidate: Wrapped | ReferenceCandidate | None = None,
    profile: Profile = Profile.SEED,
) -> tuple[StepOutcome, dict[str, Verdict]]:
    outcome, flt, _ = run(op, world, candidate, profile)
    assert all(v.status in (Status.PASS, Status.ALLOWED) for v in outcome.verdicts), (
        outcome.verdicts
    )
    return outcome, flt


def failure(
    rule: str,
    op: FaultSnapshot,
    world: World,
    candidate: Wrapped | ReferenceCandidate,
    profile: Profile = Profile.SEED,
) -> str:
    """The detail of ``rule``'s FAIL verdict on the step."""
    _, flt, _ = run(op, world, candidate, profile)
    assert rule in flt, flt
    assert flt[rule].status is Status.FAIL, flt[rule]
    return flt[rule].detail


# -- the model's walk ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_", "pte", "expected"),
    [
        (0, PTE_NONE, False),
        (2, PTE_NONE, False),
        (1, PTE_NONE, (True, False)),
        (3, PTE_SWAP, (True, True)),
        (1, PTE_MIGRATION, (True, False)),
        (1, Pte.present(4), (False, False)),
        (3, Pte.present(4), (True, True)),
        (3, Pte.present(4, write=True), (False, False)),
        (3, Pte.device_private(4), False),
        (5, Pte.device_private(4), (True, False)),
        (7, Pte.device_private(4, write=True), (True, True)),
    ],
)
def test_needs_fault(request_: int, pte: Pte, expected: tuple[bool, bool] | bool) -> None:
    op = fault_op(P, [request_])
    got = needs_fault(ENC, op.pfns()[0], pte)
    if expected is False:
        assert got[0] is False
    else:
        assert got == expected
    # the model and hmm_ref agree on whether to fault and, when they do, for what
    mm = H.MmStruct()
    vma = mm.mmap(P, 2 * P)
    ref = H.need_fault(H.HmmRange(vma=vma, start=P, end=2 * P), op.pfns()[0], pte)
    assert ref[0] == got[0]
    if ref[0]:
        assert ref == got


def test_fault_walk_success_with_a_migration() -> None:
    cpu = CpuState(_world((2 * P, PTE_MIGRATION), (3 * P, Pte.present(9)), (4 * P, PTE_SWAP)))
    op = fault_op(P, [1, 3, 3, 0, 0])
    walk = fault_walk(cpu, op, blocking_retry=True)
    assert walk == FaultWalk(
        result=0,
        calls=(
            (HANDLE, P, False),
            (WAIT, 2 * P, False),  # its request is read once: back read-only, it stays so
            (HANDLE, 3 * P, True),
        ),
        entries=(
            _present(P),
            _present(2 * P),
            ENC.encode_page(9, write=True),
            NONE,
            NONE,
        ),
    )
    assert walk.position is None
    assert walk.loose == frozenset()
    assert cpu.outcomes == {}
    assert cpu.pte(3 * P) == Pte.present(9, write=True)  # the walk changes the cpu it is given


def test_fault_walk_poison_with_a_hole_before_it() -> None:
    cpu = CpuState(_world((P, Pte.present(4)), (4 * P, PTE_POISON)))
    op = fault_op(P, [0, 1, 1, 1, 1])
    walk = fault_walk(cpu, op, blocking_retry=True)
    assert walk.result == -Errno.EFAULT
    assert walk.position == 3
    assert walk.calls == ((HANDLE, 2 * P, False), (HANDLE, 3 * P, False))
    assert walk.entries == (
        ENC.encode_page(4, write=False),
        _present(2 * P),
        _present(3 * P),
        NONE,
        NONE,
    )
    assert walk.loose == frozenset({1, 2})  # empty before the call; the present page 0 is not


@pytest.mark.parametrize("block", [True, False])
def test_fault_walk_wait_depends_on_blocking_retry(block: bool) -> None:
    op = fault_op(P, [1, 1], block=block, handler=((2 * P, FaultOutcome.WAIT),))
    seed = fault_walk(CpuState(_world()), op, blocking_retry=True)
    assert seed.result == -Errno.EBUSY
    assert seed.position == 1
    assert seed.entries == (_present(P), NONE)
    assert seed.loose == frozenset({0})
    fixed = fault_walk(CpuState(_world()), op, blocking_retry=False)
    if block:
        assert fixed.result == 0
        assert fixed.entries == (_present(P), _present(2 * P))
    else:
        assert fixed == seed


def test_fault_walk_error_at_the_first_page() -> None:
    op = fault_op(P, [1, 1], handler=((P, FaultOutcome.ERROR),))
    walk = fault_walk(CpuState(_world()), op, blocking_retry=True)
    assert walk.result == -Errno.EFAULT
    assert walk.calls == ((HANDLE, P, False),)
    assert walk.entries == (NONE, NONE)
    assert walk.position == 0
    assert walk.loose == frozenset()


def test_cpu_before_undoes_the_calls() -> None:
    cpu = CpuState(_world((P, PTE_MIGRATION), (3 * P, Pte.present(5))))
    calls: list[FaultCall] = []
    cpu.on_fault = calls.append
    cpu.migration_entry_wait(P)
    cpu.handle_mm_fault(P, True, False, False)
    cpu.handle_mm_fault(2 * P, False, False, False)
    cpu.handle_mm_fault(3 * P, True, False, False)
    assert cpu.pte(P) == Pte.present(fault_pfn(P), write=True)
    before = cpu_before(cpu, tuple(calls))
    assert before.entries() == ((P, PTE_MIGRATION), (3 * P, Pte.present(5)))
    assert tuple(before.vmas) == VMAS
    assert cpu.pte(2 * P) == Pte.present(fault_pfn(2 * P))  # the original is unchanged
    assert cpu_before(cpu, ()).entries() == cpu.entries()


# -- the reference through the executor -----------------------------------------------------

WORLD = _world(
    (P, Pte.present(5)),
    (2 * P, PTE_SWAP),
    (3 * P, PTE_MIGRATION),
    (6 * P, Pte.present(7, write=True)),
    (7 * P, Pte.device_private(8)),
)


@pytest.mark.parametrize("block", [True, False])
def test_reference_success_passes(block: bool) -> None:
    op = fault_op(P, [3, 1, 3, 1, 0, 3, 5], block=block)
    outcome, flt = passes(op, WORLD)
    assert outcome.observation.result == 0
    assert set(flt) == {"FLT-2", "FLT-3", "FLT-5"}
    calls = [(c.kind, c.addr, c.write, c.allow_retry, c.nowait) for c in outcome.observation.faults]
    assert calls == [
        (HANDLE, P, True, True, not block),
        (HANDLE, 2 * P, False, True, not block),
        (WAIT, 3 * P, False, False, False),  # then only snapshotted (its request was read)
        (HANDLE, 4 * P, False, True, not block),
        (HANDLE, 7 * P, False, True, not block),
    ]
    view = outcome.observation.range(1)
    assert view == RangeView(
        registered=True,
        valid=True,
        entries=(
            ENC.encode_page(5, write=True),
            _present(2 * P),
            _present(3 * P),
            _present(4 * P),
            NONE,
            ENC.encode_page(7, write=True),
            _present(7 * P),
        ),
    )


def test_reference_range_done_after_a_fault() -> None:
    op = fault_op(P, [1, 1])
    _, _, executor = run(op, WORLD)
    done = executor.step(RangeDone(range=1))
    assert not done.failed
    assert done.observation.result is True


def test_fault_copies_the_cpu_table_into_the_reference_mm() -> None:
    candidate = reference()
    op = fault_op(P, [0, 0, 3])
    run(op, WORLD, candidate)
    mm = candidate._mm
    assert mm.pte(P) == Pte.present(5)
    assert mm.pte(2 * P) == PTE_SWAP
    assert mm.pte(3 * P) == Pte.present(fault_pfn(3 * P))  # waited for, then snapshotted
    assert mm.fault_handler is None


@pytest.mark.parametrize(
    ("op", "result", "entries"),
    [
        (fault_op(0, [1, 1]), -Errno.EINVAL, (1, 1)),
        (fault_op(8 * P, [3, 1]), -Errno.EINVAL, (3, 1)),
        (fault_op(16 * P, [1, 0], vma=1), -Errno.EINVAL, (SPECIAL, SPECIAL)),
        (fault_op(24 * P, [1, 0], vma=2), -Errno.EPERM, (NONE, NONE)),
    ],
)
def test_reference_refusals_pass_FLT_1(
    op: FaultSnapshot, result: int, entries: tuple[int, ...]
) -> None:
    outcome, flt = passes(op, WORLD)
    assert set(flt) == {"FLT-1"}
    assert outcome.observation.result == result
    assert outcome.observation.faults == ()
    assert outcome.observation.range(1) == RangeView(registered=False, valid=False, entries=entries)


@pytest.mark.parametrize(
    ("op", "result", "entries"),
    [
        (
            fault_op(P, [1, 1, 0, 1], handler=((4 * P, FaultOutcome.WAIT),)),
            -Errno.EBUSY,
            (ENC.encode_page(5, write=False), _present(2 * P), NONE, NONE),
        ),
        (
            fault_op(4 * P, [1, 1, 1], block=True, handler=((5 * P, FaultOutcome.ERROR),)),
            -Errno.EFAULT,
            (_present(4 * P), NONE, NONE),
        ),
        (
            fault_op(32 * P, [1, 3, 1], vma=3),
            -Errno.EFAULT,
            (_present(32 * P), NONE, NONE),
        ),
    ],
)
def test_reference_errors_pass_FLT_4(
    op: FaultSnapshot, result: int, entries: tuple[int, ...]
) -> None:
    outcome, flt = passes(op, WORLD)
    assert set(flt) == {"FLT-2", "FLT-4", "FLT-5"}
    assert outcome.observation.result == result
    view = outcome.observation.range(1)
    assert view is not None
    assert not view.registered
    assert view.entries == entries


def test_reference_poison_passes_FLT_4_without_a_fault_call() -> None:
    world = _world((P, PTE_POISON))
    outcome, flt = passes(fault_op(P, [0, 1]), world)
    assert set(flt) == {"FLT-2", "FLT-4"}  # no handler call: FLT-5 says nothing
    assert outcome.observation.result == -Errno.EFAULT
    assert outcome.observation.faults == ()


def test_nothing_asked_gives_no_FLT_5() -> None:
    outcome, flt = passes(fault_op(P, [0, 0, 0]), WORLD)
    assert set(flt) == {"FLT-2", "FLT-3"}
    assert outcome.observation.faults == ()


# -- FLT-1 -----------------------------------------------------------------------------------

REFUSED = fault_op(0, [1, 1])
SPECIAL_OP = fault_op(16 * P, [1, 0], vma=1)
UNREADABLE = fault_op(24 * P, [1, 0], vma=2)


def test_FLT_1_wrong_result() -> None:
    assert failure("FLT-1", REFUSED, WORLD, Returns(0)) == "fault returned 0, not -EINVAL"
    assert failure("FLT-1", UNREADABLE, WORLD, Returns(-Errno.EINVAL)) == (
        "fault returned -EINVAL, not -EPERM"
    )


def test_FLT_1_a_refused_fault_calls_nothing() -> None:
    assert failure("FLT-1", SPECIAL_OP, WORLD, FaultsFirst()) == (
        "the refused fault called handle_mm_fault"
    )


def test_FLT_1_a_refused_fault_registers_nothing() -> None:
    assert failure("FLT-1", REFUSED, WORLD, Shows(registered=True)) == (
        "the refused fault r1 is registered"
    )


@pytest.mark.parametrize(
    ("op", "what"),
    [
        (REFUSED, "left as the caller filled them"),
        (SPECIAL_OP, "values[SPECIAL]"),
        (UNREADABLE, "values[NONE]"),
    ],
)
def test_FLT_1_entries(op: FaultSnapshot, what: str) -> None:
    assert failure("FLT-1", op, WORLD, Shows(e1=ERROR)) == f"the entries of r1 are not {what}"


# -- FLT-2 -----------------------------------------------------------------------------------


def test_FLT_2_wrong_call() -> None:
    op = fault_op(P, [0, 1, 3])
    detail = failure("FLT-2", op, WORLD, FlipsWrite())
    assert detail == "call 0 was handle_mm_fault(0x2000, write), not handle_mm_fault(0x2000)"


def test_FLT_2_missing_call() -> None:
    op = fault_op(P, [0, 1, 0, 0, 1])
    detail = failure("FLT-2", op, WORLD, Skips(5 * P))
    assert detail == "after 1 calls the fault never called handle_mm_fault(0x5000)"


def test_FLT_2_extra_call() -> None:
    op = fault_op(2 * P, [3, 0])
    detail = failure("FLT-2", op, WORLD, WaitsAfter())
    assert detail == "after 1 calls the fault then called migration_entry_wait(0x2000)"


def test_FLT_2_a_fault_where_a_wait_is_due() -> None:
    op = fault_op(2 * P, [0, 3])
    assert failure("FLT-2", op, WORLD, FaultsFirst()) == (
        "call 0 was handle_mm_fault(0x2000), not migration_entry_wait(0x3000)"
    )


# -- FLT-3 -----------------------------------------------------------------------------------


def test_FLT_3_wrong_result() -> None:
    op = fault_op(P, [1, 1])
    assert failure("FLT-3", op, WORLD, Returns(-Errno.EBUSY)) == "fault returned -EBUSY, not 0"


@pytest.mark.parametrize(
    ("candidate", "state"),
    [
        (Shows(registered=False), "registered=False valid=True"),
        (Shows(valid=False), "registered=True valid=False"),
    ],
)
def test_FLT_3_registered_and_valid(candidate: Wrapped, state: str) -> None:
    assert failure("FLT-3", fault_op(P, [1]), WORLD, candidate) == f"r1 is {state}"


def test_FLT_3_wrong_entry() -> None:
    op = fault_op(P, [1, 3, 0])
    detail = failure("FLT-3", op, WORLD, Shows(e1=_present(2 * P)))
    assert detail == (
        f"entry 1 of r1 is {_present(2 * P):#x}, not {_present(2 * P, write=True):#x} "
        "(the encoding of present after the faults)"
    )
    detail = failure("FLT-3", op, WORLD, Shows(e2=0))
    assert (
        detail
        == f"entry 2 of r1 is 0x0, not {NONE:#x} (the encoding of migration after the faults)"
    )


def test_FLT_3_an_entry_missing_is_a_failure_not_a_crash() -> None:
    """A candidate that shows too few entries fails FLT-3; it does not crash the harness."""
    _, flt, _ = run(fault_op(P, [1, 1]), WORLD, Truncates())
    assert flt["FLT-3"].status is Status.FAIL


# -- FLT-4 -----------------------------------------------------------------------------------

#: Pages P and 2P empty before, 3P waits: a non-blocking fault fails at 3P with -EBUSY.
HOLE = _world((5 * P, Pte.present(6)))
RETRIES = fault_op(P, [1, 1, 1, 1], handler=((3 * P, FaultOutcome.WAIT),))


def test_FLT_4_wrong_result() -> None:
    assert failure("FLT-4", RETRIES, HOLE, Returns(-Errno.EFAULT)) == (
        "fault returned -EFAULT, not -EBUSY"
    )
    op = fault_op(P, [1], handler=((P, FaultOutcome.ERROR),))
    assert failure("FLT-4", op, HOLE, Returns(0)) == "fault returned 0, not -EFAULT"


def test_FLT_4_registered_after_the_error() -> None:
    assert failure("FLT-4", RETRIES, HOLE, Shows(registered=True)) == (
        "r1 is still registered after the error"
    )


def test_FLT_4_entries_from_the_failing_page() -> None:
    detail = failure("FLT-4", RETRIES, HOLE, Shows(e3=ERROR))
    assert detail == f"entry 3 of r1 is {ERROR:#x}, not {NONE:#x} (the failing page is 2)"
    detail = failure("FLT-4", RETRIES, HOLE, Shows(e2=ERROR))
    assert detail == f"entry 2 of r1 is {ERROR:#x}, not {NONE:#x} (the failing page is 2)"


def test_FLT_4_loose_entries_of_the_hole_may_be_NONE() -> None:
    _, flt = passes(RETRIES, HOLE, Shows(e0=NONE, e1=NONE))
    assert flt["FLT-4"].status is Status.PASS
    # loose means NONE or the walk's entry, nothing else
    detail = failure("FLT-4", RETRIES, HOLE, Shows(e0=ERROR))
    assert detail == f"entry 0 of r1 is {ERROR:#x}, not {_present(P):#x} (the failing page is 2)"


def test_FLT_4_a_page_mapped_before_is_not_loose() -> None:
    world = _world((P, Pte.present(4)))
    detail = failure("FLT-4", RETRIES, world, Shows(e0=NONE))
    assert detail == (
        f"entry 0 of r1 is {NONE:#x}, not {ENC.encode_page(4, write=False):#x} "
        "(the failing page is 2)"
    )
    # the hole after it is still loose
    _, flt = passes(RETRIES, world, Shows(e1=NONE))
    assert flt["FLT-4"].status is Status.PASS


def test_FLT_4_an_entry_missing_is_a_failure_not_a_crash() -> None:
    """A candidate that shows too few entries after an error fails FLT-4, not the harness."""
    _, flt, _ = run(RETRIES, HOLE, Truncates())
    assert flt["FLT-4"].status is Status.FAIL


# -- FLT-5 -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("candidate", "flags"),
    [
        (Flags(nowait=False), "allow_retry=True nowait=False"),
        (Flags(allow_retry=False), "allow_retry=False nowait=True"),
    ],
)
def test_FLT_5_non_blocking_must_allow_retry_and_not_wait(candidate: Wrapped, flags: str) -> None:
    detail = failure("FLT-5", fault_op(4 * P, [0, 1]), WORLD, candidate)
    assert detail == (
        f"the non-blocking fault at 0x5000 passed {flags}; the handler may sleep or drop mmap_sem"
    )


def test_FLT_5_blocking_must_not_say_nowait() -> None:
    detail = failure("FLT-5", fault_op(P, [3], block=True), WORLD, Flags(nowait=True))
    assert detail == "the blocking fault at 0x1000 passed nowait"


def test_FLT_5_blocking_may_allow_retry_or_not() -> None:
    _, flt = passes(fault_op(P, [3], block=True), WORLD, Flags(allow_retry=False))
    assert flt["FLT-5"].status is Status.PASS


# -- FLT-6 (strict) --------------------------------------------------------------------------


def test_FLT_6_strict_fails_the_reference_on_a_blocking_fault() -> None:
    op = fault_op(P, [3], block=True)
    assert failure("FLT-6", op, WORLD, reference(), Profile.STRICT) == (
        "the blocking fault at 0x1000 allowed retry (the seed's behaviour, bug #15)"
    )


def test_FLT_6_names_the_dropped_mmap_sem() -> None:
    op = fault_op(2 * P, [1, 1], block=True, handler=((2 * P, FaultOutcome.WAIT),))
    _, flt, _ = run(op, WORLD, reference(), Profile.STRICT)
    assert flt["FLT-6"].detail == (
        "the blocking fault at 0x2000 allowed retry and the handler dropped mmap_sem (the "
        "seed's behaviour, bug #15)"
    )
    # the seed's path, judged as such by the other rules: FLT-6 alone reports the defect
    assert "FLT-3" not in flt
    assert flt["FLT-4"].status is Status.PASS


@pytest.mark.parametrize("block", [True, False])
def test_FLT_6_strict_passes_the_fix(block: bool) -> None:
    op = fault_op(P, [1, 3, 1], block=block, handler=((2 * P, FaultOutcome.WAIT),))
    outcome, flt = passes(op, WORLD, Fixed(), Profile.STRICT)
    if block:
        assert flt["FLT-6"].status is Status.PASS
        assert outcome.observation.result == 0
        assert all(not c.allow_retry for c in outcome.observation.faults)
        assert outcome.observation.range(1) == RangeView(
            registered=True,
            valid=True,
            entries=(ENC.encode_page(5, write=False), _present(2 * P, write=True), _present(3 * P)),
        )
    else:
        assert "FLT-6" not in flt
        assert outcome.observation.result == -Errno.EBUSY


def test_FLT_6_is_out_of_force_in_the_seed_profile_and_without_strict() -> None:
    op = fault_op(P, [3], block=True)
    _, flt = passes(op, WORLD, reference(), Profile.SEED)
    assert "FLT-6" not in flt
    _, flt = passes(op, WORLD, NotStrict(), Profile.STRICT)
    assert "FLT-6" not in flt


def test_FLT_6_says_nothing_without_a_fault_call() -> None:
    op = fault_op(3 * P, [0, 0], block=True)
    _, flt = passes(op, WORLD, reference(), Profile.STRICT)
    assert "FLT-6" not in flt
    assert "FLT-5" not in flt
    # a migration wait is no handle_mm_fault
    world = _world((P, PTE_MIGRATION), (2 * P, Pte.present(fault_pfn(P))))
    _, flt = passes(fault_op(2 * P, [1], block=True), world, reference(), Profile.STRICT)
    assert "FLT-6" not in flt


def test_FLT_6_a_refused_fault_is_not_judged() -> None:
    op = fault_op(0, [1], block=True)
    _, flt = passes(op, WORLD, reference(), Profile.STRICT)
    assert set(flt) == {"FLT-1"}


# -- the checks called directly --------------------------------------------------------------


def _model(profile: Profile = Profile.SEED) -> Model:
    return Model(profile=profile, cpu=CpuState(WORLD), capabilities=frozenset(Capability))


def test_checks_say_nothing_of_other_operations() -> None:
    model = _model(Profile.STRICT)
    for op in (RangeDone(range=1), RegisterMirror(mirror=1)):
        for check in CHECKS:
            assert check(model, op, Observation(result=0)) is None


def test_checks_without_a_view_of_the_range() -> None:
    model = _model()
    assert check_FLT_1(model, REFUSED, Observation(result=-Errno.EINVAL)) == Verdict(
        rule="FLT-1", status=Status.PASS, detail=""
    )
    ok = fault_op(P, [0, 0])
    assert check_FLT_3(model, ok, Observation(result=0)) == Verdict(
        rule="FLT-3", status=Status.PASS, detail=""
    )
    err = fault_op(2 * P, [1], handler=((2 * P, FaultOutcome.ERROR),))
    call = FaultCall(
        kind=HANDLE,
        addr=2 * P,
        allow_retry=True,
        nowait=True,
        answer=VmFault.SIGBUS,
        before=PTE_SWAP,
        after=PTE_SWAP,
    )
    obs = Observation(result=-Errno.EFAULT, faults=(call,))
    assert check_FLT_4(model, err, obs) == Verdict(rule="FLT-4", status=Status.PASS, detail="")
    assert check_FLT_3(model, err, obs) is None
    assert check_FLT_1(model, err, obs) is None
    assert check_FLT_2(model, REFUSED, obs) is None
    assert check_FLT_5(model, err, obs) == Verdict(rule="FLT-5", status=Status.PASS, detail="")


def test_check_FLT_2_restores_the_cpu_before_the_calls() -> None:
    """The model's CPU already holds what the faults did; the check undoes them to judge."""
    model = _model()
    op = fault_op(2 * P, [1, 3])
    calls: list[FaultCall] = []
    model.cpu.on_fault = calls.append
    model.cpu.handle_mm_fault(2 * P, False, True, True)
    model.cpu.migration_entry_wait(3 * P)
    model.cpu.on_fault = None
    obs = Observation(result=0, faults=tuple(calls))
    assert check_FLT_2(model, op, obs) == Verdict(rule="FLT-2", status=Status.PASS, detail="")
    assert model.cpu.pte(3 * P) == Pte.present(fault_pfn(3 * P))


# -- the harness around the checks -------------------------------------------------------------


def test_FLT_1_a_candidate_that_declares_fault_without_fault_is_a_protocol_verdict() -> None:
    """Declaring the capability without the method is the candidate's mistake, named."""

    class Claims(ExactCore):
        def handshake(self) -> Handshake:
            said = super().handshake()
            return Handshake(
                protocol_version=said.protocol_version,
                name=said.name,
                version=said.version,
                capabilities=said.capabilities | {Capability.FAULT},
            )

    candidate = Claims()
    executor = Executor(candidate, candidate.handshake(), Profile.SEED, _world(), None)
    assert executor.begin() is None
    (verdict,) = executor.step(fault_op(P, [1])).verdicts
    assert verdict.status is Status.PROTOCOL
    assert "declares the fault capability but has no fault() method" in verdict.detail


def test_FLT_1_a_fault_is_refused_as_a_step_for_a_candidate_without_the_capability() -> None:
    """A case that faults cannot be replayed on a candidate that does not fault."""
    case = Case(world=_world(), ops=(fault_op(P, [1]),))
    with pytest.raises(CaseFormatError, match="did not declare the fault capability"):
        replay(*start(C.NoFault), case, Profile.SEED)


def test_FLT_4_a_failure_shows_each_call_into_the_fault_handler() -> None:
    """The report's steps list the migration waited for and the fault that failed."""
    world = _world((P, PTE_MIGRATION))
    op = fault_op(P, [1, 1], handler=((2 * P, FaultOutcome.ERROR),))
    failure = replay(*start(ErrorMarkKept), Case(world=world, ops=(op,)), Profile.SEED)
    assert not isinstance(failure, tuple)
    text = CORE.describe_failure(failure)
    assert f"migration_entry_wait({P:#x})" in text
    assert f"handle_mm_fault({2 * P:#x}, allow_retry, nowait) -> SIGBUS" in text
    assert "FAIL FLT-4" in text


# -- the catalogue's seed core that faults -------------------------------------------------------


@pytest.mark.parametrize(
    "op",
    [
        fault_op(0, [1, 1]),  # bounds: -EINVAL
        fault_op(16 * P, [1, 0], vma=1),  # special: -EINVAL
        fault_op(24 * P, [1, 0], vma=2),  # unreadable: -EPERM
        fault_op(P, [1, 1, 1, 1]),  # a migration waited for, a poisoned page: -EFAULT
        fault_op(6 * P, [5, 1]),  # a device-private page asked back, another not
        fault_op(P, [1, 1], handler=((2 * P, FaultOutcome.ERROR),)),
        fault_op(P, [1, 1], handler=((P, FaultOutcome.WAIT),)),  # -EBUSY
    ],
)
def test_the_seed_fault_core_walks_as_the_rules_say(op: FaultSnapshot) -> None:
    """SeedFaultCore, the base of the catalogue's fault entries, passes every FLT rule on each
    path of the walk (an entry's one change is then its only fault)."""
    world = _world(
        (2 * P, PTE_MIGRATION),
        (4 * P, PTE_POISON),
        (6 * P, Pte.device_private(3)),
        (7 * P, PTE_SWAP),
    )
    outcome = replay(*start(SeedFaultCore), Case(world=world, ops=(op,)), Profile.SEED)
    assert isinstance(outcome, tuple)
    assert {v.rule for v in outcome[0].verdicts if v.rule and v.rule.startswith("FLT")}


def test_eagain_when_sem_dropped_fails_only_a_retry() -> None:
    """The catalogue entry that answers -EAGAIN for a dropped mmap_sem fails as the seed does
    on a fault that fails outright."""
    op = fault_op(P, [1, 1], handler=((2 * P, FaultOutcome.ERROR),))
    outcome = replay(*start(EagainWhenSemDropped), Case(world=_world(), ops=(op,)), Profile.SEED)
    assert isinstance(outcome, tuple)
    assert outcome[0].observation.result == -Errno.EFAULT


def test_the_database_keeps_nothing_of_a_run_that_has_not_failed(tmp_path: Path) -> None:
    """FailuresOnly saves an entry only once the run has failed."""
    database = FailuresOnly(tmp_path, lambda: False)
    database.save(b"key", b"value")
    assert not [path for path in tmp_path.rglob("*") if path.is_file()]
    FailuresOnly(tmp_path, lambda: True).save(b"key", b"value")
    assert [path for path in tmp_path.rglob("*") if path.is_file()]

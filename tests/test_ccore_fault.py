"""``hmm_vma_fault`` in the C core, in process and over the wire, against ``hmm_ref``.

Random small worlds (vmas with any permissions, CPU entries of every kind) and random fault
operations (requests, ``block``, a fault handler that waits or fails at some pages) are run on
the C core and on the reference adapter (``hmm_ref.hmm_vma_fault``),
each over a fresh :class:`CpuState` of the same world. Every operation must give the same
result, the same range (registration, valid flag, entries), the same calls into the CPU's fault
handling (:class:`FaultCall` records, in order) and the same CPU page table after it.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import hmm_ref as H
from conformance import CpuView, RangeView, VmaSpec, World
from conformance._case import CpuState, FaultCall
from conformance.ccore import c_core, c_core_wire
from conformance.core._adapter import Candidate, CandidateRejected, Capability
from conformance.core._ops import FaultSnapshot
from conformance.core._reference import ReferenceCandidate
from conformance.core._wire import WireCandidate

#: Encodings with the flags low, in the middle, and in the top bits (NONE there has every flag).
ENCODINGS = (
    H.DEFAULT_ENCODING,
    H.PfnEncoding(flags=(1, 2, 4), values=(504, 0, 1008), pfn_shift=8),
    H.PfnEncoding(
        flags=(1 << 63, 1 << 62, 1 << 61), values=(2**64 - 2, 2**64 - 1, 2**64 - 2), pfn_shift=3
    ),
)
BASE = 0x10000


def _pte(rng: random.Random) -> H.Pte:
    kind = rng.choice(["present", "present", "device", "swap", "migration", "poison"])
    pfn, write = rng.randrange(1 << 20), rng.random() < 0.5
    if kind == "present":
        return H.Pte.present(pfn, write=write)
    if kind == "device":
        return H.Pte.device_private(pfn, write=write)
    return {"swap": H.PTE_SWAP, "migration": H.PTE_MIGRATION, "poison": H.PTE_POISON}[kind]


def random_world(rng: random.Random) -> World:
    vmas, ptes, start = [], [], BASE
    for _ in range(rng.randint(1, 3)):
        npages = rng.randint(1, 5)
        vmas.append(
            VmaSpec(
                start=start,
                end=start + npages * H.PAGE_SIZE,
                read=rng.random() < 0.9,
                write=rng.random() < 0.75,
                special=rng.random() < 0.08,
            )
        )
        for page in range(npages):
            if rng.random() < 0.5:
                ptes.append((start + page * H.PAGE_SIZE, _pte(rng)))
        start += (npages + rng.randint(0, 2)) * H.PAGE_SIZE
    return World(vmas=tuple(vmas), ptes=tuple(ptes))


def random_fault(rng: random.Random, world: World, range_id: int) -> FaultSnapshot:
    index = rng.randrange(len(world.vmas))
    vma = world.vmas[index]
    first = rng.randrange(vma.npages)
    last = rng.randint(first + 1, vma.npages)
    start, end = vma.start + first * H.PAGE_SIZE, vma.start + last * H.PAGE_SIZE
    if rng.random() < 0.08:
        start -= H.PAGE_SIZE  # before the vma: -EINVAL
    elif rng.random() < 0.08:
        end += H.PAGE_SIZE  # past it: -EINVAL
    pages = range(start, end, H.PAGE_SIZE)
    outcomes = (H.FaultOutcome.WAIT, H.FaultOutcome.ERROR)
    return FaultSnapshot(
        range=range_id,
        vma=index,
        start=start,
        end=end,
        encoding=rng.choice(ENCODINGS),
        block=rng.random() < 0.5,
        requests=tuple(rng.choice((0, 1, 1, 3, 3, 5, 7)) for _ in pages),
        handler=tuple((addr, rng.choice(outcomes)) for addr in pages if rng.random() < 0.2),
    )


def random_cases(seed: int, count: int) -> Iterator[tuple[World, tuple[FaultSnapshot, ...]]]:
    rng = random.Random(seed)
    for _ in range(count):
        world = random_world(rng)
        yield world, tuple(random_fault(rng, world, r) for r in range(rng.randint(1, 3)))


#: What one fault did: its result, the range after it, the fault calls, and the CPU entries.
Outcome = tuple[object, RangeView, tuple[FaultCall, ...], tuple[tuple[int, H.Pte], ...]]


def run_faults(candidate: Any, world: World, ops: tuple[FaultSnapshot, ...]) -> list[Outcome]:
    """Each of ``ops`` on ``candidate`` over a fresh CPU side of ``world``; what each did."""
    cpu = CpuState(world)
    candidate.begin(cpu)
    outcomes: list[Outcome] = []
    for op in ops:
        calls: list[FaultCall] = []
        cpu.outcomes, cpu.on_fault = dict(op.handler), calls.append
        if isinstance(candidate, WireCandidate) and candidate.observes_ahead():
            candidate.expect_observes([op.range], [])
        result: object
        try:
            result = candidate.fault(
                op.range, op.vma, op.start, op.end, op.encoding, pfns=op.pfns(), block=op.block
            )
        except CandidateRejected as error:
            result = ("rejected", str(error))
        view = candidate.observe(op.range)
        cpu.outcomes, cpu.on_fault = {}, None
        outcomes.append((result, view, tuple(calls), cpu.entries()))
    return outcomes


@pytest.fixture(scope="module")
def reference_outcomes() -> list[list[Outcome]]:
    reference = ReferenceCandidate()
    return [run_faults(reference, world, ops) for world, ops in random_cases(13, 200)]


@pytest.mark.parametrize("make", [c_core, c_core_wire], ids=["in-process", "wire"])
def test_the_c_core_faults_as_hmm_ref_does(
    make: Callable[[], Candidate], reference_outcomes: list[list[Outcome]]
) -> None:
    """Two hundred worlds, some four hundred faults: the same in every respect, and every path
    of the walk taken (each result, a migration waited for, a fault retried)."""
    candidate = make()
    try:
        assert Capability.FAULT in candidate.handshake().capabilities
        results: Counter[object] = Counter()
        kinds: Counter[str] = Counter()
        for (world, ops), expected in zip(random_cases(13, 200), reference_outcomes, strict=True):
            got = run_faults(candidate, world, ops)
            assert got == expected, (world, ops)
            for result, _, calls, _ in got:
                results[result] += 1
                kinds.update(call.kind for call in calls)
    finally:
        candidate.close()
    assert sum(results.values()) > 350
    errnos = {0, -H.Errno.EINVAL, -H.Errno.EPERM, -H.Errno.EBUSY, -H.Errno.EFAULT}
    assert errnos <= set(results)
    assert kinds["migration_entry_wait"] > 0
    assert kinds["handle_mm_fault"] > 100


def test_a_fault_that_asks_nothing_is_a_snapshot_and_an_error_unregisters() -> None:
    """Two fixed cases, spelt out: no request reads like hmm_vma_get_pfns; a failing fault at
    the second page leaves the first entry, NONE from the failing page on, and no
    registration."""
    world = World(
        vmas=(VmaSpec(start=BASE, end=BASE + 0x3000),),
        ptes=((BASE, H.Pte.present(42, write=True)),),
    )
    encoding = H.DEFAULT_ENCODING
    quiet = FaultSnapshot(
        range=0, vma=0, start=BASE, end=BASE + 0x2000, encoding=encoding, block=True,
        requests=(0, 0),
    )  # fmt: skip
    failing = FaultSnapshot(
        range=1, vma=0, start=BASE, end=BASE + 0x3000, encoding=encoding, block=True,
        requests=(1, 1, 1), handler=((BASE + 0x1000, H.FaultOutcome.ERROR),),
    )  # fmt: skip
    candidate = c_core()
    try:
        (snap, bad) = run_faults(candidate, world, (quiet, failing))
    finally:
        candidate.close()
    entry = encoding.encode(H.Pte.present(42, write=True))
    assert snap[0] == 0
    assert snap[1] == RangeView(
        registered=True, valid=True, entries=(entry, encoding.values[H.HmmPfnValue.NONE])
    )
    none = encoding.values[H.HmmPfnValue.NONE]
    assert bad[0] == -H.Errno.EFAULT
    assert bad[1] == RangeView(registered=False, valid=True, entries=(entry, none, none))
    assert [(c.kind, c.addr, c.answer) for c in bad[2]] == [
        ("handle_mm_fault", BASE + 0x1000, H.VmFault.SIGBUS)
    ]


class _OddCpu:
    """A CPU view whose fault handler answers what no C int holds, or whose wait raises."""

    def __init__(self, cpu: CpuState, answer: object) -> None:
        self._cpu, self._answer = cpu, answer
        self.vmas = cpu.vmas

    def pte(self, addr: int) -> H.Pte:
        return self._cpu.pte(addr)

    def handle_mm_fault(self, addr: int, write: bool, allow_retry: bool, nowait: bool) -> Any:
        return self._answer

    def migration_entry_wait(self, addr: int) -> None:
        raise RuntimeError("the wait broke")


@pytest.mark.parametrize(
    ("pte", "answer", "error", "message"),
    [
        (H.PTE_NONE, "0", TypeError, "handle_mm_fault(0x10000) answered '0', not a C int"),
        (H.PTE_NONE, 2**40, TypeError, "not a C int"),
        (H.PTE_MIGRATION, 0, RuntimeError, "the wait broke"),
    ],
)
def test_a_fault_handler_that_breaks_is_raised_from_the_c_fault(
    pte: H.Pte, answer: object, error: type[Exception], message: str
) -> None:
    world = World(vmas=(VmaSpec(start=BASE, end=BASE + 0x1000),), ptes=((BASE, pte),))
    cpu: CpuView = _OddCpu(CpuState(world), answer)
    candidate = c_core()
    try:
        candidate.begin(cpu)
        with pytest.raises(error, match=re.escape(message)):
            candidate.fault(0, 0, BASE, BASE + 0x1000, H.DEFAULT_ENCODING, pfns=(1,), block=True)
        # The core went on without the harness and unregistered its range.
        assert not candidate.observe(0).registered
    finally:
        candidate.close()

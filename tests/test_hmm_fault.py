"""``hmm_vma_fault`` in hmm_ref, the CPU side's fault handling (hmm_ref's mm and the harness's
CpuState), and the fault operation with its JSON form."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest

import hmm_ref as H
from conformance._case import CaseFormatError, CpuState, FaultCall, VmaSpec, World
from conformance._case_json import op_to_json
from conformance.core._ops import (
    Case,
    FaultSnapshot,
    case_from_json,
    case_to_json,
    op_from_json,
)
from hmm_ref import (
    DEFAULT_ENCODING,
    PAGE_SIZE,
    PTE_MIGRATION,
    PTE_NONE,
    PTE_POISON,
    PTE_SWAP,
    Errno,
    FaultOutcome,
    HmmRange,
    MmStruct,
    Pte,
    UsageCode,
    UsageError,
    VmFault,
    fault_pfn,
    hmm_vma_fault,
    hmm_vma_range_done,
    need_fault,
)

P = PAGE_SIZE
ENC = DEFAULT_ENCODING
VALID, WRITE, DEVICE = ENC.flags
ERROR, NONE, SPECIAL = ENC.values


def _mm(*ptes: tuple[int, Pte], write: bool = True) -> tuple[MmStruct, H.Vma]:
    """An mm with one vma [P, 9P) and the given entries."""
    mm = MmStruct()
    vma = mm.mmap(P, 9 * P, write=write)
    for addr, pte in ptes:
        mm.set_pte(addr, pte)
    return mm, vma


def _present(addr: int, *, write: bool) -> int:
    return ENC.encode_page(fault_pfn(addr), write=write)


@dataclass
class Recorder:
    """A fault handler that records its calls and answers from a script (0 by default)."""

    mm: MmStruct
    answers: dict[int, int] = field(default_factory=dict)
    calls: list[tuple[str, int, bool, bool, bool]] = field(default_factory=list)

    def handle_mm_fault(self, addr: int, write: bool, allow_retry: bool, nowait: bool) -> int:
        self.calls.append(("fault", addr, write, allow_retry, nowait))
        answer = self.answers.get(addr, 0)
        if answer == 0:
            self.mm.fault_handler = None  # the mm's own handling maps the page
            try:
                self.mm.handle_mm_fault(addr, write=write, allow_retry=False, nowait=False)
            finally:
                self.mm.fault_handler = self
        return answer

    def migration_entry_wait(self, addr: int) -> None:
        self.calls.append(("wait", addr, False, False, False))
        self.mm.set_pte(addr, Pte.present(77))


# -- need_fault ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_", "pte", "expected"),
    [
        (0, PTE_NONE, (False, False)),
        (WRITE, PTE_NONE, (False, False)),  # WRITE without VALID asks nothing
        (VALID, PTE_NONE, (True, False)),
        (VALID | WRITE, PTE_NONE, (True, True)),
        (VALID, PTE_SWAP, (True, False)),
        (VALID | WRITE, PTE_SWAP, (True, True)),
        (VALID, PTE_MIGRATION, (True, False)),
        (VALID, Pte.present(3), (False, False)),
        (VALID | WRITE, Pte.present(3), (True, True)),
        (VALID | WRITE, Pte.present(3, write=True), (False, False)),
        (VALID, Pte.device_private(3), (False, False)),
        (VALID | WRITE, Pte.device_private(3), (False, False)),
        (VALID | DEVICE, Pte.device_private(3), (True, False)),
        (VALID | WRITE | DEVICE, Pte.device_private(3, write=True), (True, True)),
        (DEVICE, Pte.device_private(3), (False, False)),
    ],
)
def test_need_fault(request_: int, pte: Pte, expected: tuple[bool, bool]) -> None:
    _, vma = _mm()
    rng = HmmRange(vma=vma, start=P, end=2 * P)
    assert need_fault(rng, request_, pte) == expected


def test_need_fault_reads_the_range_encoding() -> None:
    enc = H.PfnEncoding(flags=(0x100, 0x200, 0x400), values=(1, 2, 3), pfn_shift=16)
    _, vma = _mm()
    rng = HmmRange(vma=vma, start=P, end=2 * P, encoding=enc)
    assert need_fault(rng, VALID, PTE_NONE) == (False, False)  # 0x1 is no flag there
    assert need_fault(rng, 0x100 | 0x200, Pte.present(1)) == (True, True)


# -- hmm_vma_fault: refusals -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end"),
    [(0, 2 * P), (9 * P, 10 * P), (2 * P, 10 * P), (10 * P, 11 * P)],
)
def test_fault_outside_the_vma_is_EINVAL_and_leaves_entries(start: int, end: int) -> None:
    mm, vma = _mm()
    pfns = [VALID] * ((end - start) // P)
    rng = HmmRange(vma=vma, start=start, end=end, pfns=pfns)
    assert hmm_vma_fault(rng, True) == -Errno.EINVAL
    assert rng.pfns == tuple(pfns)
    assert not rng.registered
    assert mm.hmm is None  # refused before any registration


def test_fault_whose_end_is_below_the_vma_is_EINVAL() -> None:
    mm = MmStruct()
    vma = mm.mmap(4 * P, 9 * P)
    rng = HmmRange(vma=vma, start=5 * P, end=2 * P)
    assert hmm_vma_fault(rng, True) == -Errno.EINVAL


@pytest.mark.parametrize(("start", "end"), [(2 * P, 2 * P), (4 * P, 2 * P)])
def test_empty_or_reversed_range_is_a_usage_error(start: int, end: int) -> None:
    mm, vma = _mm()
    rng = HmmRange(vma=vma, start=start, end=end)
    with pytest.raises(UsageError) as info:
        hmm_vma_fault(rng, False)
    assert info.value.code is UsageCode.RANGE_EMPTY
    assert info.value.function == "hmm_vma_fault"
    assert mm.hmm is None


def test_fault_of_a_registered_range_is_a_usage_error() -> None:
    mm, vma = _mm()
    rng = HmmRange(vma=vma, start=P, end=3 * P, pfns=[VALID, 0])
    assert hmm_vma_fault(rng, True) == 0
    entries = rng.pfns
    with pytest.raises(UsageError) as info:
        hmm_vma_fault(rng, True)
    assert info.value.code is UsageCode.RANGE_ALREADY_REGISTERED
    assert rng.registered
    assert rng.pfns == entries
    assert mm.hmm is not None
    assert mm.hmm._ranges == [rng]  # no second list_add


def test_fault_without_memory_for_the_hmm_is_ENOMEM_with_NONE_entries() -> None:
    mm, vma = _mm((P, Pte.present(5)))
    mm.inject_alloc_failures(1)
    rng = HmmRange(vma=vma, start=P, end=4 * P, pfns=[VALID, VALID | WRITE, 0])
    assert hmm_vma_fault(rng, True) == -Errno.ENOMEM
    assert rng.pfns == (NONE,) * 3
    assert not rng.registered
    assert mm.hmm is None
    assert mm.pte(2 * P) == PTE_NONE  # nothing faulted


def test_fault_in_a_special_vma_is_EINVAL_with_SPECIAL_entries() -> None:
    mm = MmStruct()
    vma = mm.mmap(P, 4 * P, special=True)
    rng = HmmRange(vma=vma, start=P, end=3 * P, pfns=[VALID, VALID])
    assert hmm_vma_fault(rng, True) == -Errno.EINVAL
    assert rng.pfns == (SPECIAL, SPECIAL)
    assert not rng.registered
    assert mm.pte(P) == PTE_NONE


def test_fault_in_an_unreadable_vma_is_EPERM_with_NONE_entries() -> None:
    mm = MmStruct()
    vma = mm.mmap(P, 4 * P, read=False)
    rng = HmmRange(vma=vma, start=P, end=3 * P, pfns=[VALID, VALID])
    assert hmm_vma_fault(rng, False) == -Errno.EPERM
    assert rng.pfns == (NONE, NONE)
    assert not rng.registered
    assert mm.pte(P) == PTE_NONE


# -- hmm_vma_fault: success ------------------------------------------------------------------


@pytest.mark.parametrize("block", [True, False])
def test_fault_maps_what_is_asked_and_encodes_the_new_table(block: bool) -> None:
    mm, vma = _mm(
        (2 * P, PTE_SWAP),
        (3 * P, Pte.present(5)),
        (4 * P, Pte.present(6)),
        (5 * P, Pte.present(7, write=True)),
        (6 * P, PTE_SWAP),
    )
    requests = [VALID, VALID | WRITE, VALID, VALID | WRITE, VALID | WRITE, 0, 0]
    rng = HmmRange(vma=vma, start=P, end=8 * P, pfns=requests)
    assert hmm_vma_fault(rng, block) == 0
    assert rng.registered
    assert rng.valid
    assert rng.pfns == (
        _present(P, write=False),  # none, read: a new read-only frame
        _present(2 * P, write=True),  # swap, write: a new writable frame
        ENC.encode_page(5, write=False),  # present, read: not faulted
        ENC.encode_page(6, write=True),  # read-only, write: gains the write bit
        ENC.encode_page(7, write=True),  # already writable
        NONE,  # swap, not asked: only snapshotted
        NONE,  # none, not asked
    )
    assert mm.pte(P) == Pte.present(fault_pfn(P))
    assert mm.pte(2 * P) == Pte.present(fault_pfn(2 * P), write=True)
    assert mm.pte(4 * P) == Pte.present(6, write=True)
    assert mm.pte(6 * P) == PTE_SWAP
    assert mm.pte(7 * P) == PTE_NONE
    assert hmm_vma_range_done(rng) is True


def test_entries_without_VALID_only_snapshot() -> None:
    mm, vma = _mm((P, Pte.present(5)), (2 * P, PTE_SWAP))
    recorder = Recorder(mm)
    mm.fault_handler = recorder
    rng = HmmRange(vma=vma, start=P, end=4 * P, pfns=[WRITE, WRITE | DEVICE, 0])
    assert hmm_vma_fault(rng, True) == 0
    assert recorder.calls == []
    assert rng.pfns == (ENC.encode_page(5, write=False), NONE, NONE)


def test_device_private_page_is_faulted_only_when_asked() -> None:
    mm, vma = _mm((P, Pte.device_private(9, write=True)), (2 * P, Pte.device_private(10)))
    rng = HmmRange(vma=vma, start=P, end=3 * P, pfns=[VALID | WRITE, VALID | DEVICE])
    assert hmm_vma_fault(rng, True) == 0
    assert rng.pfns == (
        ENC.encode_page(9, write=True, device_private=True),
        _present(2 * P, write=False),
    )
    assert mm.pte(P) == Pte.device_private(9, write=True)
    assert mm.pte(2 * P) == Pte.present(fault_pfn(2 * P))


def test_migration_entry_is_waited_for_then_only_snapshotted() -> None:
    """The wait replaces the request with values[NONE], as a fault does: the page that comes
    back read-only is not faulted for write (the seed reads each request once)."""
    mm, vma = _mm((P, PTE_MIGRATION), (2 * P, PTE_MIGRATION))
    rng = HmmRange(vma=vma, start=P, end=3 * P, pfns=[VALID | WRITE, VALID])
    assert hmm_vma_fault(rng, False) == 0
    assert mm.pte(P) == Pte.present(fault_pfn(P))
    assert mm.pte(2 * P) == Pte.present(fault_pfn(2 * P))
    assert rng.pfns == (_present(P, write=False), _present(2 * P, write=False))


def test_migration_entry_not_asked_for_reads_as_none() -> None:
    mm, vma = _mm((P, PTE_MIGRATION))
    rng = HmmRange(vma=vma, start=P, end=2 * P, pfns=[0])
    assert hmm_vma_fault(rng, True) == 0
    assert rng.pfns == (NONE,)
    assert mm.pte(P) == PTE_MIGRATION


def test_each_page_is_faulted_once_in_order_with_retry_allowed() -> None:
    mm, vma = _mm((2 * P, PTE_MIGRATION), (3 * P, Pte.present(4)))
    recorder = Recorder(mm)
    mm.fault_handler = recorder
    rng = HmmRange(vma=vma, start=P, end=5 * P, pfns=[VALID, VALID, VALID | WRITE, VALID])
    assert hmm_vma_fault(rng, False) == 0
    assert recorder.calls == [
        ("fault", P, False, True, True),
        ("wait", 2 * P, False, False, False),
        ("fault", 3 * P, True, True, True),
        ("fault", 4 * P, False, True, True),
    ]
    assert rng.pfns == (
        _present(P, write=False),
        ENC.encode_page(77, write=False),
        ENC.encode_page(4, write=True),
        _present(4 * P, write=False),
    )


# -- hmm_vma_fault: errors -------------------------------------------------------------------


def test_poisoned_page_is_EFAULT_with_NONE_from_there_and_nothing_registered() -> None:
    mm, vma = _mm((P, Pte.present(5)), (3 * P, PTE_POISON), (4 * P, Pte.present(6)))
    recorder = Recorder(mm)
    mm.fault_handler = recorder
    # The poisoned page is not even asked for: poison ends the walk whatever the request.
    rng = HmmRange(vma=vma, start=P, end=5 * P, pfns=[0, VALID, 0, VALID])
    assert hmm_vma_fault(rng, True) == -Errno.EFAULT
    assert rng.pfns == (ENC.encode_page(5, write=False), _present(2 * P, write=False), NONE, NONE)
    assert [call[1] for call in recorder.calls] == [2 * P]  # nothing after the poison
    assert not rng.registered
    assert mm.hmm is not None
    assert mm.hmm._ranges == []
    with pytest.raises(UsageError) as info:
        hmm_vma_range_done(rng)
    assert info.value.code is UsageCode.RANGE_NOT_REGISTERED


def test_poisoned_first_page_with_no_request() -> None:
    _, vma = _mm((P, PTE_POISON))
    rng = HmmRange(vma=vma, start=P, end=3 * P, pfns=[0, 0])
    assert hmm_vma_fault(rng, False) == -Errno.EFAULT
    assert rng.pfns == (NONE, NONE)


def test_nonblocking_wait_is_EBUSY_and_tells_the_handler_not_to_wait() -> None:
    mm, vma = _mm()
    recorder = Recorder(mm, answers={2 * P: VmFault.RETRY})
    mm.fault_handler = recorder
    rng = HmmRange(vma=vma, start=P, end=4 * P, pfns=[VALID, VALID | WRITE, VALID])
    assert hmm_vma_fault(rng, False) == -Errno.EBUSY
    assert recorder.calls == [("fault", P, False, True, True), ("fault", 2 * P, True, True, True)]
    assert rng.pfns == (_present(P, write=False), NONE, NONE)
    assert not rng.registered


@pytest.mark.parametrize("block", [True, False])
def test_wait_outcome_with_the_mm_own_handler_is_EBUSY(block: bool) -> None:
    """The seed passes ALLOW_RETRY even when blocking (bug #15): both modes give -EBUSY."""
    mm, vma = _mm()
    mm.fault_outcomes[2 * P] = FaultOutcome.WAIT
    rng = HmmRange(vma=vma, start=P, end=4 * P, pfns=[VALID, VALID, VALID])
    assert hmm_vma_fault(rng, block) == -Errno.EBUSY
    assert mm.pte(P) == Pte.present(fault_pfn(P))
    assert mm.pte(2 * P) == PTE_NONE
    assert mm.pte(3 * P) == PTE_NONE
    assert rng.pfns == (_present(P, write=False), NONE, NONE)
    assert not rng.registered


def test_blocking_fault_allows_retry_without_nowait() -> None:
    mm, vma = _mm()
    recorder = Recorder(mm, answers={P: VmFault.RETRY})
    mm.fault_handler = recorder
    rng = HmmRange(vma=vma, start=P, end=2 * P, pfns=[VALID])
    assert hmm_vma_fault(rng, True) == -Errno.EBUSY
    assert recorder.calls == [("fault", P, False, True, False)]


def test_error_outcome_is_EFAULT_and_NONE_overwrites_the_error_mark() -> None:
    mm, vma = _mm((3 * P, Pte.present(8)))
    mm.fault_outcomes[2 * P] = FaultOutcome.ERROR
    rng = HmmRange(vma=vma, start=P, end=4 * P, pfns=[VALID, VALID, 0])
    assert hmm_vma_fault(rng, True) == -Errno.EFAULT
    assert rng.pfns == (_present(P, write=False), NONE, NONE)
    assert ERROR not in rng.pfns
    assert not rng.registered


def test_write_fault_in_a_read_only_vma_is_EFAULT() -> None:
    mm, vma = _mm((P, Pte.present(5)), write=False)
    rng = HmmRange(vma=vma, start=P, end=3 * P, pfns=[VALID, VALID | WRITE])
    assert hmm_vma_fault(rng, True) == -Errno.EFAULT
    assert rng.pfns == (ENC.encode_page(5, write=False), NONE)
    assert mm.pte(2 * P) == PTE_NONE


def test_sigsegv_from_a_handler_is_EFAULT() -> None:
    mm, vma = _mm()
    mm.fault_handler = Recorder(mm, answers={P: VmFault.SIGSEGV})
    rng = HmmRange(vma=vma, start=P, end=2 * P, pfns=[VALID])
    assert hmm_vma_fault(rng, True) == -Errno.EFAULT


def test_failed_fault_can_be_retried_with_the_same_range() -> None:
    mm, vma = _mm()
    mm.fault_outcomes[P] = FaultOutcome.WAIT
    rng = HmmRange(vma=vma, start=P, end=2 * P, pfns=[VALID])
    assert hmm_vma_fault(rng, False) == -Errno.EBUSY
    del mm.fault_outcomes[P]
    rng2 = HmmRange(vma=vma, start=P, end=2 * P, pfns=[VALID])
    assert hmm_vma_fault(rng2, False) == 0
    assert hmm_vma_range_done(rng2) is True
    with pytest.raises(UsageError) as info:
        hmm_vma_range_done(rng2)
    assert info.value.code is UsageCode.RANGE_DONE_TWICE


# -- MmStruct's fault handling --------------------------------------------------------------


def test_mm_fault_outside_every_vma_is_sigsegv() -> None:
    mm, _ = _mm()
    assert mm.handle_mm_fault(20 * P, write=False, allow_retry=False, nowait=False) == (
        VmFault.SIGSEGV
    )


def test_mm_write_fault_in_read_only_vma_is_sigsegv_read_maps() -> None:
    mm, _ = _mm(write=False)
    assert mm.handle_mm_fault(P, write=True, allow_retry=True, nowait=True) == VmFault.SIGSEGV
    assert mm.pte(P) == PTE_NONE
    assert mm.handle_mm_fault(P, write=False, allow_retry=True, nowait=True) == 0
    assert mm.pte(P) == Pte.present(fault_pfn(P))


def test_mm_fault_on_poison_is_sigsegv() -> None:
    mm, _ = _mm((P, PTE_POISON))
    assert mm.handle_mm_fault(P, write=False, allow_retry=False, nowait=False) == VmFault.SIGSEGV
    assert mm.pte(P) == PTE_POISON


def test_mm_fault_error_outcome_is_sigbus() -> None:
    mm, _ = _mm()
    mm.fault_outcomes[P] = FaultOutcome.ERROR
    assert mm.handle_mm_fault(P + 5, write=False, allow_retry=False, nowait=False) == (
        VmFault.SIGBUS
    )
    assert mm.pte(P) == PTE_NONE


def test_mm_fault_wait_outcome_retries_only_when_allowed() -> None:
    mm, _ = _mm()
    mm.fault_outcomes[P] = FaultOutcome.WAIT
    assert mm.handle_mm_fault(P, write=True, allow_retry=True, nowait=False) == VmFault.RETRY
    assert mm.pte(P) == PTE_NONE
    assert mm.handle_mm_fault(P, write=True, allow_retry=False, nowait=False) == 0
    assert mm.pte(P) == Pte.present(fault_pfn(P), write=True)


def test_mm_fault_on_a_present_page_keeps_its_frame() -> None:
    mm, _ = _mm((P, Pte.present(5)), (2 * P, Pte.present(6, write=True)))
    assert mm.handle_mm_fault(P + 8, write=False, allow_retry=True, nowait=False) == 0
    assert mm.pte(P) == Pte.present(5)
    assert mm.handle_mm_fault(P, write=True, allow_retry=True, nowait=False) == 0
    assert mm.pte(P) == Pte.present(5, write=True)
    assert mm.handle_mm_fault(2 * P, write=False, allow_retry=True, nowait=False) == 0
    assert mm.pte(2 * P) == Pte.present(6, write=True)  # the write bit stays


def test_mm_fault_on_swap_maps_a_new_frame() -> None:
    mm, _ = _mm((P, PTE_SWAP))
    assert mm.handle_mm_fault(P, write=False, allow_retry=False, nowait=False) == 0
    assert mm.pte(P) == Pte.present(fault_pfn(P))
    assert fault_pfn(P) == H.FAULT_PFN_BASE + 1


def test_mm_migration_entry_wait() -> None:
    mm, _ = _mm((P, PTE_MIGRATION), (2 * P, PTE_SWAP))
    mm.migration_entry_wait(P + 100)
    assert mm.pte(P) == Pte.present(fault_pfn(P))
    mm.migration_entry_wait(2 * P)
    assert mm.pte(2 * P) == PTE_SWAP
    mm.migration_entry_wait(3 * P)
    assert mm.pte(3 * P) == PTE_NONE


def test_mm_fault_handler_replaces_the_mm_own_handling() -> None:
    mm, _ = _mm((P, PTE_MIGRATION))
    mm.fault_outcomes[2 * P] = FaultOutcome.ERROR
    recorder = Recorder(mm, answers={2 * P: VmFault.RETRY})
    mm.fault_handler = recorder
    assert mm.handle_mm_fault(2 * P, write=True, allow_retry=False, nowait=True) == VmFault.RETRY
    mm.migration_entry_wait(P)
    assert recorder.calls == [("fault", 2 * P, True, False, True), ("wait", P, False, False, False)]
    assert mm.pte(P) == Pte.present(77)  # the handler's wait, not the mm's (fault_pfn)
    assert mm.pte(2 * P) == PTE_NONE


# -- the harness's CPU side ------------------------------------------------------------------


def _cpu(*ptes: tuple[int, Pte]) -> tuple[CpuState, list[FaultCall]]:
    world = World(
        vmas=(VmaSpec(start=P, end=4 * P), VmaSpec(start=8 * P, end=9 * P, write=False)),
        ptes=ptes,
    )
    cpu = CpuState(world)
    calls: list[FaultCall] = []
    cpu.on_fault = calls.append
    return cpu, calls


def test_cpu_fault_outside_a_vma_is_sigsegv() -> None:
    cpu, calls = _cpu()
    assert cpu.handle_mm_fault(5 * P, False, True, True) == VmFault.SIGSEGV
    assert calls == [
        FaultCall(
            kind="handle_mm_fault",
            addr=5 * P,
            allow_retry=True,
            nowait=True,
            answer=int(VmFault.SIGSEGV),
        )
    ]
    assert cpu.entries() == ()


def test_cpu_write_fault_on_read_only_vma_is_sigsegv() -> None:
    cpu, calls = _cpu((8 * P, Pte.present(3)))
    assert cpu.handle_mm_fault(8 * P, True, False, False) == VmFault.SIGSEGV
    assert cpu.pte(8 * P) == Pte.present(3)
    assert calls[0].before == calls[0].after == Pte.present(3)
    assert cpu.handle_mm_fault(8 * P, False, False, False) == 0


def test_cpu_fault_on_poison_is_sigsegv_whatever_the_outcome() -> None:
    cpu, calls = _cpu((P, PTE_POISON))
    cpu.outcomes = {P: FaultOutcome.ERROR}
    assert cpu.handle_mm_fault(P, False, True, False) == VmFault.SIGSEGV
    assert calls[0].after == PTE_POISON


def test_cpu_error_outcome_is_sigbus() -> None:
    cpu, calls = _cpu()
    cpu.outcomes = {2 * P: FaultOutcome.ERROR}
    assert cpu.handle_mm_fault(2 * P + 1, True, True, True) == VmFault.SIGBUS
    assert cpu.pte(2 * P) == PTE_NONE
    assert calls[0].answer == VmFault.SIGBUS
    assert calls[0].addr == 2 * P + 1


def test_cpu_wait_outcome_with_and_without_retry() -> None:
    cpu, calls = _cpu()
    cpu.outcomes = {P: FaultOutcome.WAIT}
    assert cpu.handle_mm_fault(P, True, True, False) == VmFault.RETRY
    assert cpu.pte(P) == PTE_NONE
    assert calls[-1].dropped_sem
    assert cpu.handle_mm_fault(P, True, True, True) == VmFault.RETRY
    assert not calls[-1].dropped_sem  # told not to wait: mmap_sem kept
    assert cpu.handle_mm_fault(P, True, False, False) == 0
    assert cpu.pte(P) == Pte.present(fault_pfn(P), write=True)
    assert not calls[-1].dropped_sem
    assert calls[-1].before == PTE_NONE
    assert calls[-1].after == Pte.present(fault_pfn(P), write=True)


def test_cpu_present_page_gains_write() -> None:
    cpu, calls = _cpu((P, Pte.present(3)), (2 * P, Pte.present(4, write=True)))
    assert cpu.handle_mm_fault(P, False, True, True) == 0
    assert cpu.pte(P) == Pte.present(3)
    assert cpu.handle_mm_fault(P, True, True, True) == 0
    assert cpu.pte(P) == Pte.present(3, write=True)
    assert cpu.handle_mm_fault(2 * P, False, True, True) == 0
    assert cpu.pte(2 * P) == Pte.present(4, write=True)
    assert [c.write for c in calls] == [False, True, False]


@pytest.mark.parametrize("before", [PTE_NONE, PTE_SWAP, Pte.device_private(6, write=True)])
def test_cpu_fault_gives_a_new_page(before: Pte) -> None:
    cpu, calls = _cpu((P, before))
    assert cpu.handle_mm_fault(P, False, True, True) == 0
    assert cpu.pte(P) == Pte.present(fault_pfn(P))
    assert calls[0].before == before
    assert cpu.entries() == ((P, Pte.present(fault_pfn(P))),)


def test_cpu_migration_entry_wait() -> None:
    cpu, calls = _cpu((P, PTE_MIGRATION), (2 * P, PTE_SWAP))
    cpu.migration_entry_wait(P + 3)
    cpu.migration_entry_wait(2 * P)
    assert cpu.pte(P) == Pte.present(fault_pfn(P))
    assert cpu.pte(2 * P) == PTE_SWAP
    assert calls == [
        FaultCall(
            kind="migration_entry_wait",
            addr=P + 3,
            before=PTE_MIGRATION,
            after=Pte.present(fault_pfn(P)),
        ),
        FaultCall(kind="migration_entry_wait", addr=2 * P, before=PTE_SWAP, after=PTE_SWAP),
    ]


def test_cpu_without_on_fault_records_nothing() -> None:
    cpu = CpuState(World(vmas=(VmaSpec(start=P, end=2 * P),)))
    assert cpu.on_fault is None
    assert cpu.outcomes == {}
    assert cpu.handle_mm_fault(P, False, True, True) == 0
    cpu.migration_entry_wait(P)
    assert cpu.pte(P) == Pte.present(fault_pfn(P))


@pytest.mark.parametrize(
    ("answer", "nowait", "dropped"),
    [
        (VmFault.RETRY, False, True),
        (VmFault.RETRY, True, False),
        (0, False, False),
        (VmFault.SIGBUS, False, False),
        (VmFault.RETRY | VmFault.SIGBUS, False, True),
    ],
)
def test_fault_call_dropped_sem(answer: int, nowait: bool, dropped: bool) -> None:
    call = FaultCall(kind="handle_mm_fault", addr=P, answer=int(answer), nowait=nowait)
    assert call.dropped_sem is dropped


# -- the fault operation ---------------------------------------------------------------------


def _op(**changes: object) -> FaultSnapshot:
    fields: dict[str, object] = {
        "range": 3,
        "vma": 0,
        "start": P,
        "end": 4 * P,
        "encoding": ENC,
        "block": False,
        "requests": (1, 3, 0),
        "handler": (),
    }
    fields.update(changes)
    return FaultSnapshot(**fields)  # type: ignore[arg-type]


def test_fault_op_requests_become_entries_in_the_encoding() -> None:
    enc = H.PfnEncoding(flags=(0x100, 0x200, 0x400), values=(1, 2, 3), pfn_shift=16)
    op = _op(encoding=enc, requests=(0, 1, 2, 3, 4, 5, 6, 7), end=9 * P)
    assert op.pfns() == (0, 0x100, 0x200, 0x300, 0x400, 0x500, 0x600, 0x700)


def test_fault_op_requests_flags_that_share_a_bit_set_it_once() -> None:
    """An encoding may give two flags one bit; the entry is their union, never their sum (which
    names another bit, or overflows 64 bits)."""
    top = H.PfnEncoding(flags=(1 << 63, 1 << 63, 0), values=(1, 2, 3), pfn_shift=4)
    assert _op(encoding=top, requests=(3, 7, 6)).pfns() == (1 << 63, 1 << 63, 1 << 63)


def test_fault_op_outcome() -> None:
    op = _op(handler=((2 * P, FaultOutcome.WAIT), (3 * P, FaultOutcome.ERROR)))
    assert op.outcome(2 * P + 17) is FaultOutcome.WAIT
    assert op.outcome(3 * P) is FaultOutcome.ERROR
    assert op.outcome(P) is FaultOutcome.OK


def test_fault_op_describe() -> None:
    assert _op().describe() == (
        "non-blocking fault r3 = [0x1000, 0x4000) of vma 0, asking p0 read, p1 read+write"
    )
    op = _op(
        block=True,
        requests=(0, 0, 7),
        handler=((2 * P, FaultOutcome.WAIT), (3 * P, FaultOutcome.ERROR)),
    )
    assert op.describe() == (
        "blocking fault r3 = [0x1000, 0x4000) of vma 0, asking p2 read+write+device; "
        "the fault handler at 0x2000 wait, 0x3000 error"
    )
    assert "asking nothing" in _op(requests=(0, 0, 0)).describe()


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"requests": (1, 1)}, "2 requests for [0x1000, 0x4000), which has 3 pages"),
        ({"requests": (1, 1, 1, 1)}, "4 requests"),
        ({"requests": (1, 8, 0)}, "a request is a sum of 1 (read), 2 (write), 4 (device)"),
        ({"requests": (-1, 0, 0)}, "a request is a sum"),
        ({"handler": ((P + 1, FaultOutcome.WAIT),)}, "fault handler: [0x1001, 0x2001)"),
        ({"start": P + 1}, "fault: [0x1001"),
        ({"end": P}, "fault: [0x1000, 0x1000) is empty"),
    ],
)
def test_fault_op_refuses_bad_fields(changes: dict[str, object], fragment: str) -> None:
    with pytest.raises(CaseFormatError) as info:
        _op(**changes)
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    "op",
    [
        _op(),
        _op(block=True, handler=((2 * P, FaultOutcome.WAIT), (P, FaultOutcome.ERROR))),
        _op(
            encoding=H.PfnEncoding(flags=(0x100, 0x200, 0x400), values=(1, 2, 3), pfn_shift=16),
            requests=(7, 6, 5),
            handler=((3 * P, FaultOutcome.OK),),
        ),
    ],
)
def test_fault_op_json_round_trip(op: FaultSnapshot) -> None:
    data = op_to_json(op)
    assert data["op"] == "fault"
    assert data["requests"] == list(op.requests)
    assert data["handler"] == [[addr, outcome.value] for addr, outcome in op.handler]
    text = json.dumps(data)
    assert op_from_json(json.loads(text)) == op
    case = Case(world=World(vmas=(VmaSpec(start=P, end=9 * P),)), ops=(op,))
    assert case_from_json(json.loads(json.dumps(case_to_json(case)))) == case


def _json(**changes: object) -> dict[str, object]:
    data = op_to_json(_op())
    data.update(changes)
    return data


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"requests": [1, "3", 0]}, "op.requests: '3' is not a request; give 0 to 7"),
        ({"requests": [1, 8, 0]}, "op.requests: 8 is not a request"),
        ({"requests": [1, -1, 0]}, "op.requests: -1 is not a request"),
        ({"requests": [1, True, 0]}, "op.requests: True is not a request"),
        ({"requests": [1, 1.0, 0]}, "op.requests: 1.0 is not a request"),
        ({"handler": [4096]}, "op.handler[0]: 4096 is not [page address, outcome]"),
        ({"handler": [[P, "wait"], [P]]}, "op.handler[1]:"),
        ({"handler": [[P, "wait", 1]]}, "op.handler[0]:"),
        ({"handler": [["4096", "wait"]]}, "op.handler[0]:"),
        ({"handler": [[True, "wait"]]}, "op.handler[0]:"),
        ({"handler": [[-P, "wait"]]}, "op.handler[0]:"),
        ({"handler": [[2**64, "wait"]]}, "op.handler[0]:"),
        ({"handler": [[P, "sleep"]]}, "give an address and one of error, ok, wait"),
        ({"handler": [[P, None]]}, "op.handler[0]:"),
        ({"handler": [[P + 1, "ok"]]}, "fault handler: [0x1001, 0x2001) is not page aligned"),
        ({"requests": [1, 1]}, "2 requests"),
    ],
)
def test_fault_op_json_errors_name_the_field(changes: dict[str, object], fragment: str) -> None:
    with pytest.raises(CaseFormatError) as info:
        op_from_json(_json(**changes))
    assert fragment in str(info.value)


def test_fault_op_json_handler_missing_or_not_a_list() -> None:
    data = _json()
    del data["handler"]
    with pytest.raises(CaseFormatError, match="handler"):
        op_from_json(data)
    with pytest.raises(CaseFormatError, match="requests"):
        op_from_json(_json(requests={"0": 1}))


def test_case_with_a_fault_on_a_missing_vma_is_refused() -> None:
    case = Case(world=World(vmas=(VmaSpec(start=P, end=9 * P),)), ops=(_op(vma=1),))
    with pytest.raises(CaseFormatError) as info:
        case_from_json(case_to_json(case))
    assert "case.ops[0].vma: 1 is not a vma of the world; give 0 to 0" in str(info.value)


def test_fault_outcome_values_are_the_json_words() -> None:
    assert {o.value for o in FaultOutcome} == {"ok", "wait", "error"}

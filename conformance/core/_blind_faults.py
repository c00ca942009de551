"""Faulty ``hmm_vma_fault`` cores, each :class:`BlindFaultCore` with one realistic bug.

Written blind (from kernel-semantics §3.8, kernel-bug-history #15 and #22, and docs/spec.md
§5b), without the suite's generators or oracle. Their catalogue rows, with the rules each must
be caught against and its origin, are in ``_blind_catalogue.py``.
"""

from __future__ import annotations

from hmm_ref import VM_FAULT_ERROR, HmmPfnFlag, PfnEncoding, Pte, PteKind

from ._blind_base import Range
from ._blind_fault_base import EBUSY, RESTART, BlindFaultCore, PteClass

__all__: list[str] = []


class ClearSkipsFailing(BlindFaultCore):
    """The error path clears from the page after the failing one, keeping its mark."""

    name = "blind-fault-clear-skips-failing"

    def clear_from(self, rng: Range, last: int) -> int:
        del rng
        return last + 1


class ClearFromStart(BlindFaultCore):
    """The error path clears the whole array, not from the recorded position."""

    name = "blind-fault-clear-from-start"

    def clear_from(self, rng: Range, last: int) -> int:
        del rng, last
        return 0


class ClearToError(BlindFaultCore):
    """The error path writes values[ERROR] where it should write values[NONE]."""

    name = "blind-fault-clear-to-error"

    def cleared_value(self, rng: Range) -> int:
        return self.error_value(rng)


class RequestsLeft(BlindFaultCore):
    """The error path unregisters the range but never clears the entries after the failure."""

    name = "blind-fault-requests-left"

    def fault_error(self, rng: Range, last: int, ret: int) -> None:
        del last, ret
        self.error_unregister(rng)


class StaysRegistered(BlindFaultCore):
    """The error path clears the entries but forgets hmm_vma_range_done."""

    name = "blind-fault-stays-registered"

    def error_unregister(self, rng: Range) -> None:
        del rng


class EagainForDroppedLock(BlindFaultCore):
    """A dropped mmap_sem is reported as -EAGAIN, as the seed's comment documents."""

    name = "blind-fault-eagain-for-dropped-lock"

    def fault_result(self, rng: Range, ret: int) -> int:
        del rng
        return RESTART if ret == EBUSY else ret


class RetryIsError(BlindFaultCore):
    """Every non-zero answer of the fault handler is taken as VM_FAULT_ERROR."""

    name = "blind-fault-retry-is-error"

    def fault_answer(self, rng: Range, index: int, answer: int) -> int:
        if answer:
            answer |= VM_FAULT_ERROR
        return super().fault_answer(rng, index, answer & ~0x400)


class WriteRequestIgnored(BlindFaultCore):
    """need_fault only looks at presence: a read-only page asked for write is not faulted."""

    name = "blind-fault-write-request-ignored"

    def need_fault(self, encoding: PfnEncoding, request: int, pte: Pte) -> tuple[bool, bool]:
        write_bit = encoding.flag(HmmPfnFlag.WRITE)
        fault, _ = super().need_fault(encoding, request & ~write_bit, pte)
        return fault, False


class WriteWithoutValid(BlindFaultCore):
    """A WRITE bit alone is taken as a request to fault for write (VALID not required)."""

    name = "blind-fault-write-without-valid"

    def need_fault(self, encoding: PfnEncoding, request: int, pte: Pte) -> tuple[bool, bool]:
        if request & encoding.flag(HmmPfnFlag.WRITE):
            request |= encoding.flag(HmmPfnFlag.VALID)
        return super().need_fault(encoding, request, pte)


class WriteOnEveryFault(BlindFaultCore):
    """FAULT_FLAG_WRITE is passed on every fault (``write_fault || fault`` typo)."""

    name = "blind-fault-write-on-every-fault"

    def need_fault(self, encoding: PfnEncoding, request: int, pte: Pte) -> tuple[bool, bool]:
        fault, write = super().need_fault(encoding, request, pte)
        return fault, fault or write


class DeviceUnrequested(BlindFaultCore):
    """A device-private page counts as not present, so VALID alone faults it back."""

    name = "blind-fault-device-unrequested"

    def need_fault(self, encoding: PfnEncoding, request: int, pte: Pte) -> tuple[bool, bool]:
        if pte.kind is PteKind.DEVICE_PRIVATE:
            if not request & encoding.flag(HmmPfnFlag.VALID):
                return False, False
            return True, bool(request & encoding.flag(HmmPfnFlag.WRITE))
        return super().need_fault(encoding, request, pte)


class MigrationAsError(BlindFaultCore):
    """A migration entry is taken as a bad entry: values[ERROR] and -EFAULT (bug #22)."""

    name = "blind-fault-migration-as-error"

    def classify(self, pte: Pte) -> PteClass:
        if pte.kind is PteKind.MIGRATION:
            return PteClass.BAD
        return super().classify(pte)


class MigrationNotWaited(BlindFaultCore):
    """A migration entry asked for is left as values[NONE], never waited for."""

    name = "blind-fault-migration-not-waited"

    def wait_migration(self, rng: Range, index: int) -> int:
        return self.migration_snapshot(rng, index)


class MigrationViaHandler(BlindFaultCore):
    """A migration entry is handled as a swap entry and sent to handle_mm_fault."""

    name = "blind-fault-migration-via-handler"

    def classify(self, pte: Pte) -> PteClass:
        if pte.kind is PteKind.MIGRATION:
            return PteClass.SWAP
        return super().classify(pte)


class PoisonSkipped(BlindFaultCore):
    """A poisoned entry is marked values[ERROR] but the walk goes on and the call succeeds."""

    name = "blind-fault-poison-skipped"

    def bad_entry(self, rng: Range, index: int) -> int:
        super().bad_entry(rng, index)
        return 0


class PoisonAsSwap(BlindFaultCore):
    """The non_swap_entry() test is missing: a poisoned entry is handled as a swap entry."""

    name = "blind-fault-poison-as-swap"

    def classify(self, pte: Pte) -> PteClass:
        if pte.kind is PteKind.POISON:
            return PteClass.SWAP
        return super().classify(pte)


class NowaitInverted(BlindFaultCore):
    """FAULT_FLAG_RETRY_NOWAIT is set when the caller blocks, not when it does not."""

    name = "blind-fault-nowait-inverted"

    def fault_flags(self, block: bool) -> tuple[bool, bool]:
        return True, block


class RetryFixInverted(BlindFaultCore):
    """The 5.3 fix of bug #15 written backwards: ALLOW_RETRY only when the caller blocks."""

    name = "blind-fault-retry-fix-inverted"

    def fault_flags(self, block: bool) -> tuple[bool, bool]:
        return block, not block


class BlockIgnored(BlindFaultCore):
    """``block`` is ignored: every fault is made non-blocking."""

    name = "blind-fault-block-ignored"

    def fault_flags(self, block: bool) -> tuple[bool, bool]:
        del block
        return True, True


class NowaitLost(BlindFaultCore):
    """FAULT_FLAG_RETRY_NOWAIT is lost: non-blocking calls let the handler wait."""

    name = "blind-fault-nowait-lost"

    def fault_flags(self, block: bool) -> tuple[bool, bool]:
        del block
        return True, False


class RestartFromStart(BlindFaultCore):
    """After -EAGAIN the walk restarts at the range's start, re-reading encoded entries."""

    name = "blind-fault-restart-from-start"

    def restart_index(self, rng: Range, last: int) -> int:
        del rng, last
        return 0


class RewalkKeepsRequest(BlindFaultCore):
    """A page walked again reads the caller's saved request, not the values[NONE] left there."""

    name = "blind-fault-rewalk-keeps-request"

    def read_request(self, rng: Range, index: int) -> int:
        key = f"request{index}"
        request = rng.notes.setdefault(key, rng.entries[index])
        rng.entries[index] = self.none(rng)
        return request


class NoRewalk(BlindFaultCore):
    """A successful fault continues to the next page, leaving the faulted entry values[NONE]."""

    name = "blind-fault-no-rewalk"

    def fault_answer(self, rng: Range, index: int, answer: int) -> int:
        ret = super().fault_answer(rng, index, answer)
        return 0 if ret == RESTART else ret


class StalePte(BlindFaultCore):
    """A faulted page is encoded from the entry read before the fault, and the walk goes on."""

    name = "blind-fault-stale-pte"

    def do_fault(self, rng: Range, index: int, write: bool, block: bool) -> int:
        assert self.cpu is not None
        before = self.cpu.pte(self.page_addr(rng, index))
        ret = super().do_fault(rng, index, write, block)
        if ret != RESTART:
            return ret
        rng.entries[index] = self.encode(rng.encoding, before)
        return 0


class ValidFalse(BlindFaultCore):
    """The faulting path registers the range without setting valid (only get_pfns sets it)."""

    name = "blind-fault-valid-false"

    def fault_register(self, rng: Range) -> None:
        super().fault_register(rng)
        rng.valid = False


class EinvalZeroesRequests(BlindFaultCore):
    """Bad bounds return -EINVAL with a freshly zeroed array instead of the caller's requests."""

    name = "blind-fault-einval-zeroes-requests"

    def fault_bounds_error(self, rng: Range) -> int:
        rng.entries = [0] * len(rng.entries)
        return super().fault_bounds_error(rng)


class LastPageUnwalked(BlindFaultCore):
    """Off-by-one in the walk's end: the last page is never walked and keeps its request."""

    name = "blind-fault-last-page-unwalked"

    def walk_npages(self, rng: Range) -> int:
        return max(0, len(rng.entries) - 1)

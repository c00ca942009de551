"""hmm_ref: a typed, sequential reference of the Linux HMM mirror protocol.

It states, in Python, what ``mm/hmm.c`` does after "mm/hmm: proper support for blockable
mmu_notifier" (mainline 4.20), together with the mmu-notifier chain and the OOM reaper around
it. Functions keep their kernel names and return the kernel's values (0 or a negative
:class:`Errno`); where the kernel would BUG, deadlock or corrupt memory because the caller broke
the contract, they raise :class:`UsageError` and change nothing.

A minimal session::

    import hmm_ref as H

    mm = H.MmStruct()
    vma = mm.mmap(0x10000, 0x20000)
    mm.set_pte(0x10000, H.Pte.present(42, write=True))
    ret = H.hmm_mirror_register(H.HmmMirror(my_driver), mm)   # my_driver: HmmMirrorOps
    rng = H.HmmRange(vma=vma, start=0x10000, end=0x12000)
    assert H.hmm_vma_get_pfns(rng) == 0
    ret = H.mmu_notifier_invalidate_range_start_nonblock(mm, 0x10000, 0x11000)
"""

from ._driver import DeviceEntry as DeviceEntry
from ._driver import DeviceFault as DeviceFault
from ._driver import DeviceFlush as DeviceFlush
from ._driver import DriverLockKind as DriverLockKind
from ._driver import FaultCheck as FaultCheck
from ._driver import FaultStep as FaultStep
from ._driver import NonBlockGuard as NonBlockGuard
from ._driver import ReferenceDriver as ReferenceDriver
from ._driver import SyncRecord as SyncRecord
from ._errno import Errno as Errno
from ._errno import describe_result as describe_result
from ._errors import HmmError as HmmError
from ._errors import UsageCode as UsageCode
from ._errors import UsageError as UsageError
from ._errors import WouldLivelockError as WouldLivelockError
from ._fault import hmm_vma_fault as hmm_vma_fault
from ._fault import need_fault as need_fault
from ._hmm import Hmm as Hmm
from ._hmm import HmmMirror as HmmMirror
from ._hmm import HmmMirrorOps as HmmMirrorOps
from ._hmm import HmmUpdate as HmmUpdate
from ._hmm import HmmUpdateEvent as HmmUpdateEvent
from ._hmm import hmm_mirror_register as hmm_mirror_register
from ._hmm import hmm_mirror_unregister as hmm_mirror_unregister
from ._hmm import hmm_vma_get_pfns as hmm_vma_get_pfns
from ._hmm import hmm_vma_range_done as hmm_vma_range_done
from ._locks import DriverUsageCode as DriverUsageCode
from ._locks import DriverUsageError as DriverUsageError
from ._locks import LockEvent as LockEvent
from ._locks import LockOutcome as LockOutcome
from ._locks import Mutex as Mutex
from ._locks import RwSemaphore as RwSemaphore
from ._locks import SleepMonitor as SleepMonitor
from ._locks import SleepViolation as SleepViolation
from ._locks import Spinlock as Spinlock
from ._locks import WouldBlockError as WouldBlockError
from ._mmu_notifier import MmuNotifier as MmuNotifier
from ._mmu_notifier import mmu_notifier_invalidate_range_end as mmu_notifier_invalidate_range_end
from ._mmu_notifier import (
    mmu_notifier_invalidate_range_start as mmu_notifier_invalidate_range_start,
)
from ._mmu_notifier import (
    mmu_notifier_invalidate_range_start_nonblock as mmu_notifier_invalidate_range_start_nonblock,
)
from ._mmu_notifier import mmu_notifier_register as mmu_notifier_register
from ._mmu_notifier import mmu_notifier_release as mmu_notifier_release
from ._mmu_notifier import (
    mmu_notifier_unregister_no_release as mmu_notifier_unregister_no_release,
)
from ._oom import MAX_OOM_REAP_RETRIES as MAX_OOM_REAP_RETRIES
from ._oom import OomReapReport as OomReapReport
from ._oom import ReapAttempt as ReapAttempt
from ._oom import VmaReap as VmaReap
from ._oom import exit_mmap as exit_mmap
from ._oom import oom_reap_task as oom_reap_task
from ._range import DEFAULT_ENCODING as DEFAULT_ENCODING
from ._range import HmmPfnFlag as HmmPfnFlag
from ._range import HmmPfnValue as HmmPfnValue
from ._range import HmmRange as HmmRange
from ._range import PfnEncoding as PfnEncoding
from ._scripted import MirrorEvent as MirrorEvent
from ._scripted import ScriptedMirrorOps as ScriptedMirrorOps
from ._world import FAULT_PFN_BASE as FAULT_PFN_BASE
from ._world import PAGE_SHIFT as PAGE_SHIFT
from ._world import PAGE_SIZE as PAGE_SIZE
from ._world import PTE_MIGRATION as PTE_MIGRATION
from ._world import PTE_NONE as PTE_NONE
from ._world import PTE_POISON as PTE_POISON
from ._world import PTE_SWAP as PTE_SWAP
from ._world import VM_FAULT_ERROR as VM_FAULT_ERROR
from ._world import FaultHandler as FaultHandler
from ._world import FaultOutcome as FaultOutcome
from ._world import MmStruct as MmStruct
from ._world import Pte as Pte
from ._world import PteKind as PteKind
from ._world import Vma as Vma
from ._world import VmFault as VmFault
from ._world import fault_pfn as fault_pfn
from ._world import page_aligned as page_aligned

__all__ = [
    "DEFAULT_ENCODING",
    "FAULT_PFN_BASE",
    "MAX_OOM_REAP_RETRIES",
    "PAGE_SHIFT",
    "PAGE_SIZE",
    "PTE_MIGRATION",
    "PTE_NONE",
    "PTE_POISON",
    "PTE_SWAP",
    "VM_FAULT_ERROR",
    "DeviceEntry",
    "DeviceFault",
    "DeviceFlush",
    "DriverLockKind",
    "DriverUsageCode",
    "DriverUsageError",
    "Errno",
    "FaultCheck",
    "FaultHandler",
    "FaultOutcome",
    "FaultStep",
    "Hmm",
    "HmmError",
    "HmmMirror",
    "HmmMirrorOps",
    "HmmPfnFlag",
    "HmmPfnValue",
    "HmmRange",
    "HmmUpdate",
    "HmmUpdateEvent",
    "LockEvent",
    "LockOutcome",
    "MirrorEvent",
    "MmStruct",
    "MmuNotifier",
    "Mutex",
    "NonBlockGuard",
    "OomReapReport",
    "PfnEncoding",
    "Pte",
    "PteKind",
    "ReapAttempt",
    "ReferenceDriver",
    "RwSemaphore",
    "ScriptedMirrorOps",
    "SleepMonitor",
    "SleepViolation",
    "Spinlock",
    "SyncRecord",
    "UsageCode",
    "UsageError",
    "VmFault",
    "Vma",
    "VmaReap",
    "WouldBlockError",
    "WouldLivelockError",
    "describe_result",
    "exit_mmap",
    "fault_pfn",
    "hmm_mirror_register",
    "hmm_mirror_unregister",
    "hmm_vma_fault",
    "hmm_vma_get_pfns",
    "hmm_vma_range_done",
    "mmu_notifier_invalidate_range_end",
    "mmu_notifier_invalidate_range_start",
    "mmu_notifier_invalidate_range_start_nonblock",
    "mmu_notifier_register",
    "mmu_notifier_release",
    "mmu_notifier_unregister_no_release",
    "need_fault",
    "oom_reap_task",
    "page_aligned",
]

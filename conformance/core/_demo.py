"""A walk-through of the seed's behaviour, computed by ``hmm_ref`` and narrated step by step.

Every value printed is what the reference returned; the sentences around them say which rule
(docs/spec.md) the step shows and, where it matters, what the tree before the seed patch did
instead (kernel-semantics §4).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TextIO

import hmm_ref as H

__all__ = ["SCENARIOS", "run_demo"]

_VMA = (0x10000, 0x20000)


def _mm_with_pages(pages: int = 4) -> tuple[H.MmStruct, H.Vma]:
    mm = H.MmStruct(pid=4242)
    vma = mm.mmap(*_VMA)
    for index in range(pages):
        mm.set_pte(_VMA[0] + index * H.PAGE_SIZE, H.Pte.present(0x100 + index, write=True))
    return mm, vma


def _span(start: int, end: int) -> str:
    return f"[{start:#x}, {end:#x})"


def _calls(journal: list[H.MirrorEvent]) -> str:
    return ", ".join(
        f"{event.mirror}(blockable={event.update.blockable}) -> {H.describe_result(event.reply)}"
        for event in journal
        if event.update is not None
    )


def _attempt(call: Callable[[], int]) -> str:
    """What ``call`` returned, or the error it raised, spelled for the reader."""
    try:
        return H.describe_result(call())
    except H.HmmError as error:
        return f"{type(error).__name__}: {error}"


def _two_mirrors(
    mm: H.MmStruct, reply_b: int
) -> tuple[list[H.MirrorEvent], H.ScriptedMirrorOps, H.ScriptedMirrorOps, list[str]]:
    journal: list[H.MirrorEvent] = []
    a = H.ScriptedMirrorOps("A", journal=journal)
    b = H.ScriptedMirrorOps("B", reply=reply_b, journal=journal)
    lines = [
        f"register mirror A -> {_attempt(lambda: H.hmm_mirror_register(H.HmmMirror(a), mm))}",
        f"register mirror B -> {_attempt(lambda: H.hmm_mirror_register(H.HmmMirror(b), mm))}",
    ]
    return journal, a, b, lines


def willing_mirrors() -> list[str]:
    """INV-3, INV-5, REG-4: a non-blockable start that every mirror accepts returns 0."""
    mm, _ = _mm_with_pages()
    journal, _, _, lines = _two_mirrors(mm, 0)
    ret = H.mmu_notifier_invalidate_range_start_nonblock(mm, 0x10000, 0x11000)
    return [
        *lines,
        f"non-blockable start {_span(0x10000, 0x11000)} -> {H.describe_result(ret)}",
        f"calls, newest mirror first: {_calls(journal)}",
        "Before the seed patch HMM answered -EAGAIN here without calling any mirror.",
    ]


def mirror_would_sleep() -> list[str]:
    """INV-4, INV-7: one mirror's -EAGAIN is the result, and older mirrors are not called."""
    mm, _ = _mm_with_pages()
    journal, _, _, lines = _two_mirrors(mm, -H.Errno.EAGAIN)
    ret = H.mmu_notifier_invalidate_range_start_nonblock(mm, 0x10000, 0x11000)
    return [
        *lines,
        f"non-blockable start {_span(0x10000, 0x11000)} -> {H.describe_result(ret)}",
        f"calls: {_calls(journal)}",
        "A, registered first and so called last, was skipped; the caller must not call end.",
    ]


def blockable_ignores_replies() -> list[str]:
    """INV-2: in blockable mode every mirror is called and every answer is ignored."""
    mm, _ = _mm_with_pages()
    journal, _, _, lines = _two_mirrors(mm, -H.Errno.EAGAIN)
    ret = H.mmu_notifier_invalidate_range_start(mm, 0x10000, 0x11000, blockable=True)
    H.mmu_notifier_invalidate_range_end(mm, 0x10000, 0x11000)
    return [
        *lines,
        f"blockable start {_span(0x10000, 0x11000)} -> {H.describe_result(ret)}",
        f"calls: {_calls(journal)}",
        f"blockable end {_span(0x10000, 0x11000)} calls no mirror (END-1)",
    ]


def snapshot_and_invalidate() -> list[str]:
    """RNG-1, RNG-3, RNG-6, RNG-7: an invalidation makes a snapshot stale; range_done says so."""
    mm, vma = _mm_with_pages()
    rng = H.HmmRange(vma=vma, start=0x10000, end=0x14000)
    ret = H.hmm_vma_get_pfns(rng)
    before = [f"{entry:#x}" for entry in rng.pfns]
    H.mmu_notifier_invalidate_range_start(mm, 0x11000, 0x12000)
    mm.set_pte(0x11000, H.PTE_NONE)
    H.mmu_notifier_invalidate_range_end(mm, 0x11000, 0x12000)
    after = [f"{entry:#x}" for entry in rng.pfns]
    valid = rng.valid
    done = H.hmm_vma_range_done(rng)
    return [
        f"hmm_vma_get_pfns {_span(rng.start, rng.end)} -> {H.describe_result(ret)}, "
        f"entries {before}",
        f"unmap {_span(0x11000, 0x12000)} (start, clear the pte, end)",
        f"entries now {after}: the overlap is raw 0, the rest untouched; valid = {valid}",
        f"hmm_vma_range_done -> {done}: the driver must retry its snapshot",
    ]


def reaper_idle() -> list[str]:
    """MN-2: with idle mirrors the OOM reaper reaps every vma in its first attempt."""
    mm = H.MmStruct(pid=4242)
    for index in range(3):
        mm.mmap(0x10000 * (index + 1), 0x10000 * (index + 1) + 0x4000)
    H.hmm_mirror_register(H.HmmMirror(H.ScriptedMirrorOps("gpu")), mm)
    report = H.oom_reap_task(mm)
    first = report.attempts[0]
    return [
        "three vmas, one idle mirror",
        f"attempt 1: {', '.join(f'{_span(v.start, v.end)} reaped={v.reaped}' for v in first.vmas)}",
        f"reaped in attempt {report.reaped_in_attempt}; gave up: {report.gave_up}; "
        f"MMF_OOM_SKIP: {mm.mmf_oom_skip}",
        "The parent tree refused every vma of a process with an hmm and gave up after 10.",
    ]


def reaper_busy() -> list[str]:
    """MN-2: a mirror that always needs to sleep for one vma makes the reaper give up."""
    mm = H.MmStruct(pid=4242)
    for index in range(3):
        mm.mmap(0x10000 * (index + 1), 0x10000 * (index + 1) + 0x4000)

    def busy_on_second(update: H.HmmUpdate) -> int:
        return -H.Errno.EAGAIN if update.start == 0x20000 and not update.blockable else 0

    H.hmm_mirror_register(H.HmmMirror(H.ScriptedMirrorOps("gpu", reply=busy_on_second)), mm)
    report = H.oom_reap_task(mm)
    last = ", ".join(
        f"{_span(v.start, v.end)} -> {H.describe_result(v.result)}"
        for v in report.attempts[-1].vmas
    )
    return [
        "three vmas; the mirror is busy (would sleep) on the second one",
        f"attempts: {len(report.attempts)}; in each, {last}",
        f"gave up: {report.gave_up}; MMF_OOM_SKIP: {mm.mmf_oom_skip}",
        f"dmesg (last line): {mm.dmesg[-1]}",
    ]


def seed_defects() -> list[str]:
    """REG-5 and REL-3: two behaviours later kernels fixed, kept by the reference."""
    mm, vma = _mm_with_pages()
    first, second = H.HmmMirror(H.ScriptedMirrorOps("A")), H.HmmMirror(H.ScriptedMirrorOps("B"))
    H.hmm_mirror_register(first, mm)
    H.hmm_mirror_register(second, mm)
    H.hmm_mirror_unregister(first)
    late = H.HmmMirror(H.ScriptedMirrorOps("C"))
    livelock = f"register C -> {_attempt(lambda: H.hmm_mirror_register(late, mm))}"
    rng = H.HmmRange(vma=vma, start=0x10000, end=0x12000)
    H.hmm_vma_get_pfns(rng)
    H.exit_mmap(mm)
    stale = H.hmm_vma_range_done(rng)
    return [
        "REG-5: register A, register B, unregister A",
        livelock,
        "REL-3: snapshot, then the process exits (release, then every page unmapped)",
        f"hmm_vma_range_done -> {stale}, though the CPU maps none of those pages any more",
        "Both were fixed later (5.1 and 5.2); the strict profile demands the fixes.",
    ]


SCENARIOS: tuple[Callable[[], list[str]], ...] = (
    willing_mirrors,
    mirror_would_sleep,
    blockable_ignores_replies,
    snapshot_and_invalidate,
    reaper_idle,
    reaper_busy,
    seed_defects,
)


def run_demo(out: TextIO) -> int:
    """Run every scenario against ``hmm_ref`` and narrate it on ``out``; return 0."""
    out.write("hmm-conformance demo: the seed (mm/hmm.c after the blockable patch), by hmm_ref\n")
    for number, scenario in enumerate(SCENARIOS, start=1):
        title = (scenario.__doc__ or scenario.__name__).strip()
        out.write(f"\n{number}. {title}\n")
        for line in scenario():
            out.write(f"   {line}\n")
    return 0

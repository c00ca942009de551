"""Builders shared by the tests: an mm with a mapped vma, and recorded mirrors."""

from __future__ import annotations

from collections.abc import Callable

import hmm_ref as H

VMA_START = 0x10000
NPAGES = 8
VMA_END = VMA_START + NPAGES * H.PAGE_SIZE
EAGAIN = -H.Errno.EAGAIN


def page(index: int) -> int:
    """The address of page ``index`` of the test vma."""
    return VMA_START + index * H.PAGE_SIZE


def make_mm(*, read: bool = True, special: bool = False) -> tuple[H.MmStruct, H.Vma]:
    """An mm with one vma of NPAGES pages, page i mapping pfn 0x100 + i (even pages writable)."""
    mm = H.MmStruct()
    vma = mm.mmap(VMA_START, VMA_END, read=read, special=special)
    for index in range(NPAGES):
        mm.set_pte(page(index), H.Pte.present(0x100 + index, write=index % 2 == 0))
    return mm, vma


class Mirrors:
    """Named scripted mirrors that share one journal, so call order across them is visible."""

    def __init__(self, mm: H.MmStruct) -> None:
        self.mm = mm
        self.journal: list[H.MirrorEvent] = []
        self.by_name: dict[str, tuple[H.HmmMirror, H.ScriptedMirrorOps]] = {}

    def add(self, name: str, reply: int | Callable[[H.HmmUpdate], int] = 0) -> H.HmmMirror:
        ops = H.ScriptedMirrorOps(name, reply=reply, journal=self.journal)
        mirror = H.HmmMirror(ops)
        assert H.hmm_mirror_register(mirror, self.mm) == 0
        self.by_name[name] = (mirror, ops)
        return mirror

    def mirror(self, name: str) -> H.HmmMirror:
        return self.by_name[name][0]

    def ops(self, name: str) -> H.ScriptedMirrorOps:
        return self.by_name[name][1]

    def called(self) -> list[str]:
        """Names of the mirrors whose sync callback ran, in call order."""
        return [event.mirror for event in self.journal if event.kind == "sync"]

    def released(self) -> list[str]:
        return [event.mirror for event in self.journal if event.kind == "release"]

    def clear(self) -> None:
        self.journal.clear()


def snapshot(
    vma: H.Vma, first: int = 0, last: int = NPAGES, encoding: H.PfnEncoding = H.DEFAULT_ENCODING
) -> H.HmmRange:
    """A registered range over pages [first, last) of the test vma."""
    rng = H.HmmRange(vma=vma, start=page(first), end=page(last), encoding=encoding)
    assert H.hmm_vma_get_pfns(rng) == 0
    return rng


def invalidate(mm: H.MmStruct, start: int, end: int, *, blockable: bool = True) -> int:
    """One invalidation through the notifier chain: start, and end if the start succeeded."""
    ret = H.mmu_notifier_invalidate_range_start(mm, start, end, blockable=blockable)
    if blockable or ret == 0:
        H.mmu_notifier_invalidate_range_end(mm, start, end)
    return ret

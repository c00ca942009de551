"""The CPU side and the value types: vmas, ptes, encodings, errno spelling, errors."""

from __future__ import annotations

import pytest

import hmm_ref as H

from ._support import VMA_END, VMA_START, make_mm, page


def test_mmap_keeps_vmas_sorted_and_finds_them() -> None:
    """Vmas are kept in address order and found by any address inside them."""
    mm = H.MmStruct()
    high = mm.mmap(0x40000, 0x42000)
    low = mm.mmap(0x10000, 0x11000, write=False)
    assert mm.vmas == (low, high)
    assert mm.find_vma(0x41FFF) is high
    assert mm.find_vma(0x42000) is None
    assert high.npages == 2
    assert not low.write


@pytest.mark.parametrize(
    ("start", "end", "code"),
    [
        (0x10001, 0x12000, H.UsageCode.UNALIGNED),
        (0x12000, 0x12000, H.UsageCode.BAD_ADDRESS),
        (0x11000, 0x13000, H.UsageCode.BAD_ADDRESS),
    ],
)
def test_mmap_refuses_bad_vmas(start: int, end: int, code: H.UsageCode) -> None:
    """Unaligned, empty and overlapping vmas are refused with the reason."""
    mm = H.MmStruct()
    mm.mmap(0x10000, 0x12000)
    with pytest.raises(H.UsageError) as caught:
        mm.mmap(start, end)
    assert caught.value.code is code
    assert len(mm.vmas) == 1


def test_set_pte_stores_and_clears() -> None:
    """set_pte stores an entry; storing PTE_NONE or clearing a span empties it."""
    mm, _ = make_mm()
    assert mm.pte(page(0)) == H.Pte.present(0x100, write=True)
    mm.set_pte(page(0), H.PTE_NONE)
    assert mm.pte(page(0)) == H.PTE_NONE
    mm.clear_ptes(page(1), page(3))
    assert [mm.pte(page(i)).kind for i in range(4)] == [H.PteKind.NONE] * 3 + [H.PteKind.PRESENT]


@pytest.mark.parametrize(
    ("addr", "code"),
    [(VMA_START + 1, H.UsageCode.UNALIGNED), (VMA_END, H.UsageCode.BAD_ADDRESS)],
)
def test_set_pte_refuses_bad_addresses(addr: int, code: H.UsageCode) -> None:
    """Entries can only be set on page-aligned addresses inside a vma."""
    mm, _ = make_mm()
    with pytest.raises(H.UsageError) as caught:
        mm.set_pte(addr, H.Pte.present(1))
    assert caught.value.code is code


def test_pte_validation() -> None:
    """Mapped kinds need a pfn in range; the other kinds take no pfn and no write bit."""
    assert H.Pte.present(5, write=True).mapped
    assert not H.PTE_SWAP.mapped
    with pytest.raises(ValueError, match="out of range"):
        H.Pte.present(-1)
    with pytest.raises(ValueError, match="no pfn"):
        H.Pte(kind=H.PteKind.SWAP, pfn=3)
    with pytest.raises(ValueError, match="no pfn"):
        H.Pte(kind=H.PteKind.NONE, write=True)


@pytest.mark.parametrize(
    ("flags", "values", "shift", "message"),
    [
        ((1, 2, 4), (8, 8, 16), 12, "values\\[NONE\\]"),
        ((1, 2, 4), (8, 16, 16), 12, "values\\[NONE\\]"),
        ((0, 2, 4), (8, 16, 32), 12, "flags\\[VALID\\]"),
        ((1, 2, 4), (8, 16, 32), 64, "pfn_shift"),
        ((1, 2, 1 << 64), (8, 16, 32), 12, "flags must be"),
        ((1, 2), (8, 16, 32), 12, "flags must be"),
    ],
)
def test_encoding_requirements(
    flags: tuple[int, int, int], values: tuple[int, int, int], shift: int, message: str
) -> None:
    """Encodings that break hmm.h's documented requirements are refused."""
    with pytest.raises(H.UsageError, match=message) as caught:
        H.PfnEncoding(flags=flags, values=values, pfn_shift=shift)
    assert caught.value.code is H.UsageCode.BAD_ENCODING


def test_error_and_special_may_share_a_value() -> None:
    """hmm.h allows ERROR == SPECIAL; only NONE must differ."""
    enc = H.PfnEncoding(flags=(1, 2, 4), values=(8, 16, 8), pfn_shift=3)
    assert enc.encode(H.PTE_POISON) == enc.value(H.HmmPfnValue.SPECIAL) == 8


def test_encoding_truncates_to_64_bits() -> None:
    """Like the kernel's uint64_t, a pfn shifted past bit 63 loses its high bits."""
    enc = H.PfnEncoding(flags=(1, 2, 4), values=(8, 16, 32), pfn_shift=60)
    assert enc.encode_page(0x1F, write=False) == ((0x1F << 60) | 1) & ((1 << 64) - 1)


def test_range_construction_checks() -> None:
    """Ranges must be page aligned and their pfns array must fit them."""
    _, vma = make_mm()
    with pytest.raises(H.UsageError) as unaligned:
        H.HmmRange(vma=vma, start=page(0) + 8, end=page(1))
    assert unaligned.value.code is H.UsageCode.UNALIGNED
    with pytest.raises(H.UsageError, match="pfns has 1 entries"):
        H.HmmRange(vma=vma, start=page(0), end=page(2), pfns=[0])
    rng = H.HmmRange(vma=vma, start=page(0), end=page(2))
    assert rng.npages == 2
    assert rng.page_address(1) == page(1)
    assert "idle" in repr(rng)


def test_reprs_say_what_matters() -> None:
    """The state objects print their key facts."""
    mm, vma = make_mm()
    mirror = H.HmmMirror(H.ScriptedMirrorOps("gpu"))
    H.hmm_mirror_register(mirror, mm)
    rng = H.HmmRange(vma=vma, start=page(0), end=page(1))
    H.hmm_vma_get_pfns(rng)
    assert "registered=True" in repr(mirror)
    assert "'gpu'" in repr(mirror)
    assert "registered valid=True" in repr(rng)
    assert "mirrors=1 ranges=1" in repr(mm.hmm)
    assert "pid=1" in repr(mm)


@pytest.mark.parametrize(
    ("value", "spelled"),
    [(0, "0"), (-11, "-EAGAIN"), (-12, "-ENOMEM"), (-999, "-999"), (3, "3")],
)
def test_describe_result(value: int, spelled: str) -> None:
    """Kernel return values are spelled the way kernel developers read them."""
    assert H.describe_result(value) == spelled


def test_errno_values_are_the_kernels() -> None:
    """The errno numbers are Linux's."""
    assert (H.Errno.EPERM, H.Errno.EAGAIN, H.Errno.ENOMEM, H.Errno.EINVAL) == (1, 11, 12, 22)
    assert (H.Errno.EIO, H.Errno.EFAULT, H.Errno.EBUSY) == (5, 14, 16)


def test_usage_errors_name_function_and_code() -> None:
    """A usage error's text names the function, the problem and its stable code."""
    error = H.UsageError(H.UsageCode.DEADLOCK, "f", "what happened")
    assert str(error) == "f: what happened [deadlock]"
    assert isinstance(error, H.HmmError)
    livelock = H.WouldLivelockError("g", "loops")
    assert str(livelock) == "g: loops"
    assert isinstance(livelock, H.HmmError)


def test_alloc_failure_injection_counts_down() -> None:
    """Injected allocation failures are used up one by one; a negative count is refused."""
    mm, _ = make_mm()
    with pytest.raises(ValueError, match=">= 0"):
        mm.inject_alloc_failures(-1)
    mm.inject_alloc_failures(2)
    mirror = H.HmmMirror(H.ScriptedMirrorOps())
    results = [H.hmm_mirror_register(mirror, mm) for _ in range(3)]
    assert results == [-H.Errno.ENOMEM, -H.Errno.ENOMEM, 0]


def test_scripted_mirror_records_updates_and_releases() -> None:
    """ScriptedMirrorOps answers from its script and keeps what it was asked, per name."""
    journal: list[H.MirrorEvent] = []
    first = H.ScriptedMirrorOps(
        "a", reply=lambda update: -11 if update.blockable else 0, journal=journal
    )
    second = H.ScriptedMirrorOps("b", journal=journal)
    update = H.HmmUpdate(start=0, end=4096, blockable=True)
    assert first.sync_cpu_device_pagetables(update) == -11
    assert second.sync_cpu_device_pagetables(update) == 0
    first.release()
    assert first.updates == [update]
    assert first.releases == 1
    assert second.releases == 0
    assert [event.mirror for event in journal] == ["a", "b", "a"]
    assert repr(second) == "<ScriptedMirrorOps 'b'>"

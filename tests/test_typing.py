"""Static typing: user code that implements mirror ops and drives hmm_ref is checked by mypy."""

from __future__ import annotations

import textwrap
from pathlib import Path

from mypy import api

GOOD = """
import hmm_ref as H


class Driver:
    def __init__(self) -> None:
        self.device: dict[int, int] = {}

    def sync_cpu_device_pagetables(self, update: H.HmmUpdate) -> int:
        if not update.blockable and self.device:
            return -H.Errno.EAGAIN
        for addr in range(update.start, update.end, H.PAGE_SIZE):
            self.device.pop(addr, None)
        return 0

    def release(self) -> None:
        self.device.clear()


def fault(mm: H.MmStruct, vma: H.Vma, driver: Driver) -> bool:
    rng = H.HmmRange(vma=vma, start=vma.start, end=vma.start + H.PAGE_SIZE)
    if H.hmm_vma_get_pfns(rng) != 0:
        return False
    if not H.hmm_vma_range_done(rng):
        return False
    pfn = rng.encoding.decode(rng.pfns[0])
    if pfn is not None:
        driver.device[vma.start] = pfn
    return True


def main() -> int:
    mm = H.MmStruct()
    vma = mm.mmap(0x10000, 0x20000)
    driver = Driver()
    ret: int = H.hmm_mirror_register(H.HmmMirror(driver), mm)
    fault(mm, vma, driver)
    report: H.OomReapReport = H.oom_reap_task(mm)
    return ret + len(report.attempts)
"""

# The callback signature before the seed patch returned void; mypy must refuse it.
PRE_PATCH = """
import hmm_ref as H


class OldDriver:
    def sync_cpu_device_pagetables(self, update: H.HmmUpdate) -> None:
        pass

    def release(self) -> None:
        pass


mirror = H.HmmMirror(OldDriver())
"""


def _mypy(tmp_path: Path, **sources: str) -> dict[str, list[str]]:
    for name, text in sources.items():
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(text))
    stdout, _, _ = api.run(
        [
            "--strict",
            "--no-error-summary",
            "--show-error-codes",
            "--no-incremental",
            *(str(tmp_path / f"{name}.py") for name in sources),
        ]
    )
    lines = [line for line in stdout.splitlines() if line.strip()]
    return {name: [line for line in lines if f"{name}.py:" in line] for name in sources}


def test_typed_user_module_passes_and_pre_patch_callback_is_rejected(tmp_path: Path) -> None:
    """A driver with the seed's int callback passes --strict; one returning None is an error."""
    found = _mypy(tmp_path, good_driver=GOOD, old_driver=PRE_PATCH)
    assert found["good_driver"] == []
    errors = [line for line in found["old_driver"] if ": error:" in line]
    assert len(errors) == 1
    assert '"HmmMirror" has incompatible type "OldDriver"' in errors[0]
    assert "[arg-type]" in errors[0]
    assert any("sync_cpu_device_pagetables" in line for line in found["old_driver"])

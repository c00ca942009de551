"""Static typing: user code that implements mirror ops or adapters is checked by mypy --strict."""

from __future__ import annotations

import os
import subprocess
import sys
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


# A user's adapters for both sides, written against the installed package's public names only.
USER_ADAPTERS = """
from collections.abc import Mapping

import hmm_ref as H
from conformance import (
    PROTOCOL_VERSION,
    Candidate,
    CandidateRejected,
    Capability,
    CpuView,
    Handshake,
    RangeView,
)
from conformance.driver import (
    DRIVER_PROTOCOL_VERSION,
    DriverCandidate,
    DriverCapability,
    DriverEnv,
    DriverHandshake,
    FaultView,
    run_driver,
    start_driver,
)


class Core:
    def __init__(self) -> None:
        self.mirrors: dict[int, H.HmmMirrorOps] = {}
        self.ranges: dict[int, RangeView] = {}

    def handshake(self) -> Handshake:
        return Handshake(
            protocol_version=PROTOCOL_VERSION,
            name="mine",
            version="1",
            capabilities=frozenset({Capability.RELEASE}),
        )

    def begin(self, cpu: CpuView) -> None:
        self.mirrors, self.ranges = {}, {}

    def register(self, mirror: int, ops: H.HmmMirrorOps | None) -> int:
        if ops is None:
            return -H.Errno.EINVAL
        self.mirrors[mirror] = ops
        return 0

    def unregister(self, mirror: int) -> None:
        self.mirrors.pop(mirror, None)

    def snapshot(
        self, range_id: int, vma: int, start: int, end: int, encoding: H.PfnEncoding
    ) -> int:
        self.ranges[range_id] = RangeView(registered=True, valid=True, entries=())
        return 0

    def observe(self, range_id: int) -> RangeView:
        return self.ranges[range_id]

    def range_done(self, range_id: int) -> bool:
        view = self.ranges.get(range_id)
        if view is None or not view.registered:
            raise CandidateRejected(f"range r{range_id} is not registered")
        self.ranges[range_id] = RangeView(registered=False, valid=view.valid, entries=view.entries)
        return view.valid

    def invalidate_start(self, start: int, end: int, blockable: bool) -> int:
        update = H.HmmUpdate(start=start, end=end, blockable=blockable)
        replies = [ops.sync_cpu_device_pagetables(update) for ops in self.mirrors.values()]
        return -H.Errno.EAGAIN if not blockable and -H.Errno.EAGAIN in replies else 0

    def invalidate_end(self, start: int, end: int) -> None:
        pass

    def release(self) -> None:
        for ops in self.mirrors.values():
            ops.release()
        self.mirrors.clear()

    def close(self) -> None:
        self.ranges.clear()


class Driver:
    def __init__(self) -> None:
        self.table: dict[int, H.DeviceEntry] = {}
        self.faults: dict[int, FaultView] = {}

    def handshake(self) -> DriverHandshake:
        return DriverHandshake(
            protocol_version=DRIVER_PROTOCOL_VERSION,
            name="mine",
            version="1",
            lock="mine.lock",
            capabilities=frozenset({DriverCapability.RELEASE}),
        )

    def begin(self, env: DriverEnv) -> None:
        self.table, self.faults = {}, {}

    def sync_cpu_device_pagetables(self, update: H.HmmUpdate) -> int:
        for addr in range(update.start, update.end, H.PAGE_SIZE):
            self.table.pop(addr, None)
        return 0

    def release(self) -> None:
        self.table.clear()

    def start_fault(self, fault: int, start: int, end: int) -> None:
        self.faults[fault] = FaultView(next_step=H.FaultStep.SNAPSHOT, result=None)

    def step_fault(self, fault: int) -> H.FaultStep:
        self.faults[fault] = FaultView(next_step=None, result=0)
        return H.FaultStep.SNAPSHOT

    def fault_view(self, fault: int) -> FaultView:
        return self.faults[fault]

    def fault_would_block(self, fault: int) -> bool:
        return False

    def invalidation_would_block(self, blockable: bool) -> bool:
        return False

    def release_would_block(self) -> bool:
        return False

    def device_page_table(self) -> Mapping[int, H.DeviceEntry]:
        return dict(self.table)

    def close(self) -> None:
        self.faults.clear()


def make() -> Candidate:
    return Core()


def make_driver() -> DriverCandidate:
    return Driver()


def check_driver() -> bool:
    candidate, handshake = start_driver(make_driver)
    return run_driver(candidate, handshake).failure is None
"""

# A core whose invalidate_start forgot `blockable`: not a Candidate.
WRONG_SIGNATURE = """
from conformance import Candidate
from user_adapters import Core


class Forgetful(Core):
    def invalidate_start(self, start: int, end: int) -> int:  # type: ignore[override]
        return 0


candidate: Candidate = Forgetful()
"""


def test_installed_package_types_a_user_adapter_outside_the_project(tmp_path: Path) -> None:
    """Adapters outside the tree pass --strict against the installed package; a bad one fails.

    mypy runs in a child process from ``tmp_path`` with a config of its own, so it finds
    ``conformance`` as an installed package (which needs ``py.typed``), not as project source.
    """
    (tmp_path / "user_adapters.py").write_text(USER_ADAPTERS)
    (tmp_path / "wrong_signature.py").write_text(WRONG_SIGNATURE)
    (tmp_path / "mypy.ini").write_text("[mypy]\n")
    environment = {key: value for key, value in os.environ.items() if key != "MYPYPATH"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file=mypy.ini",
            "--strict",
            "--no-error-summary",
            "--show-error-codes",
            "--no-incremental",
            "user_adapters.py",
            "wrong_signature.py",
        ],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert not [line for line in lines if line.startswith("user_adapters.py")], done.stdout
    errors = [line for line in lines if ": error:" in line]
    assert len(errors) == 1, done.stdout
    assert errors[0].startswith("wrong_signature.py:")
    assert '"Forgetful", variable has type "Candidate"' in errors[0]
    assert "[assignment]" in errors[0]
    assert any("invalidate_start" in line for line in lines)
    assert done.returncode == 1

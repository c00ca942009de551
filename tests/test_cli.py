"""The hmm-conformance command, driven through main(argv) with injected streams."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

from conformance import main


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(list(argv), stdout=out, stderr=err)
    return status, out.getvalue(), err.getvalue()


def test_demo_narrates_every_scenario_with_computed_results() -> None:
    """The demo prints each scenario and the values the reference returned, and exits 0."""
    status, out, err = _run("demo")
    assert status == 0
    assert err == ""
    for fragment in (
        "non-blockable start [0x10000, 0x11000) -> 0",
        "calls: B(blockable=False) -> -EAGAIN\n",
        "calls: B(blockable=True) -> -EAGAIN, A(blockable=True) -> 0",
        "hmm_vma_range_done -> False",
        "reaped in attempt 1; gave up: False",
        "attempts: 10;",
        "oom_reaper: unable to reap pid:4242",
        "register C -> WouldLivelockError",
        "hmm_vma_range_done -> True, though the CPU maps none",
    ):
        assert fragment in out
    assert out.count("\n1. ") == 1
    assert "\n7. " in out


def test_help_goes_to_stdout_and_exits_0() -> None:
    """--help prints the usage on the given stdout and returns 0."""
    status, out, err = _run("--help")
    assert status == 0
    assert "demo" in out
    assert err == ""


def test_version_names_the_package_version() -> None:
    """--version prints the installed version on stdout."""
    status, out, _ = _run("--version")
    assert status == 0
    assert out.startswith("hmm-conformance 0.")


@pytest.mark.parametrize("argv", [[], ["frobnicate"], ["demo", "--bogus"]])
def test_bad_command_lines_exit_2_with_one_clear_message(argv: list[str]) -> None:
    """A missing or unknown command, or an unknown option, is a usage error (exit 2)."""
    status, out, err = _run(*argv)
    assert status == 2
    assert out == ""
    assert err.startswith("hmm-conformance")
    assert "error:" in err


def test_main_reads_sys_argv_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without argv, main parses sys.argv[1:]."""
    monkeypatch.setattr(sys, "argv", ["hmm-conformance", "--help"])
    out = io.StringIO()
    assert main(stdout=out) == 0
    assert "usage:" in out.getvalue()


def test_module_entry_point_runs() -> None:
    """python -m conformance behaves like the installed command."""
    done = subprocess.run(
        [sys.executable, "-m", "conformance", "demo"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0
    assert "hmm-conformance demo" in done.stdout

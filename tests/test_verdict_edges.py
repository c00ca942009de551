"""The edges of the verdict path: the paths a failure takes when something else goes wrong too."""

from __future__ import annotations

import io
import os
import signal
from dataclasses import replace
from pathlib import Path

import pytest

import conformance._engine as engine
import conformance.cli._base as cli_base
from conformance import cli, reference, run, start
from conformance._alarm import StuckCall, Watchdog
from conformance._counting import BUDGETS, LIVE
from conformance._driving import interrupted
from conformance._engine import RunInterrupted
from conformance._generation import ENCODINGS, VMAS
from conformance._isolation import Interrupted, interrupts
from conformance._outputs import database_root
from conformance._report import headline
from conformance.core._ops import World
from conformance.driver._catalogue import BaseDriver
from conformance.driver._executor import DriverExecutor
from conformance.driver._ops import Exit

from . import candidates as C


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = cli.main(list(argv), stdout=out, stderr=err)
    return status, out.getvalue(), err.getvalue()


class _StopsAtOnce(C.Wrapped):
    """Ctrl-C at its first registration, before any failure."""

    name = "stops"

    def begin(self, cpu: object) -> None:
        raise KeyboardInterrupt


def test_an_interruption_before_any_failure_saves_nothing(tmp_path: Path) -> None:
    """Interrupted with nothing found: exit 130, no replay file, no failure shown."""
    status, out, _ = _run(
        "run", "--adapter", "tests.test_verdict_edges:_StopsAtOnce", "--replay-dir", str(tmp_path)
    )
    assert status == 130
    assert "interrupted after a failure" not in out
    assert list(tmp_path.iterdir()) == []


class _Exits(C.Wrapped):
    """Asks the whole process to exit from inside a step: not ours to swallow."""

    name = "exits"

    def begin(self, cpu: object) -> None:
        raise SystemExit(7)


def test_an_exit_that_is_no_signal_goes_through() -> None:
    """A BaseException that no signal caused is not turned into an exit status."""
    with pytest.raises(SystemExit):
        _run("run", "--adapter", "tests.test_verdict_edges:_Exits")


class _StopsDriver(BaseDriver):
    """A driver that is interrupted as its first case begins."""

    def begin(self, env: object) -> None:
        raise KeyboardInterrupt


def test_an_interrupted_driver_run_exits_130() -> None:
    """The driver side stops the same way."""
    status, _, err = _run(
        "run", "--side", "driver", "--adapter", "tests.test_verdict_edges:_StopsDriver"
    )
    assert status == 130
    assert err == ""


def test_a_replay_file_that_had_to_go_elsewhere_says_where(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The note of a fallback directory is printed next to the replay file's path."""
    monkeypatch.setattr(
        cli_base, "save_replay", lambda *_: (tmp_path / "x.json", "could not write in 'r'")
    )
    _, out, _ = _run("run", "--adapter", "tests.candidates:NoClear", "--budget", "fast")
    assert "could not write in 'r'" in out
    assert f"replay file: {tmp_path / 'x.json'}" in out


def test_a_placeholder_that_cannot_be_written_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A report path that passes the probe but refuses the placeholder: exit 2, one line."""
    report = tmp_path / "r.ktap"

    def refuses(path: Path, text: str) -> int:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "write_text", refuses)
    status, _, err = _run("run", "--report", "ktap", str(report), "--replay-dir", str(tmp_path))
    assert status == 2
    assert "--report ktap: cannot write" in err
    assert "Permission denied" in err


def test_the_command_line_watchdog_hook_says_where_and_saves_the_case(tmp_path: Path) -> None:
    """The stuck call is described, and the case under way saved, on the given stream."""
    call = StuckCall(what="snapshot", seconds=1.0, grace=5.0, thread="MainThread", stack="x\n")
    LIVE.start("c-seed-seed1", profile="seed", seed=1, candidate={"name": "c", "version": "1"})
    err = io.StringIO()
    cli_base.said_stuck(call, None, err)
    assert "snapshot has not returned" in err.getvalue()
    assert "replay file" not in err.getvalue()
    LIVE.document = lambda: {"format": "hmm-conformance/case", "ops": []}
    cli_base.said_stuck(call, tmp_path, err)
    assert f"the case under way; replay file: {tmp_path / 'c-seed-seed1-stuck.json'}" in (
        err.getvalue()
    )
    assert isinstance(cli_base.watchdog(tmp_path), Watchdog)


def test_a_signal_swallowed_at_the_very_end_is_raised_again() -> None:
    """After the state machine, a signal that came and was swallowed is raised again."""
    interrupted()  # nothing came: nothing happens
    with interrupts():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            signal.sigtimedwait([], 0.01)
        except Interrupted:
            pass
        with pytest.raises(Interrupted, match="SIGTERM"):
            interrupted()


def test_a_database_directory_given_is_the_one_used(tmp_path: Path) -> None:
    """--database DIR wins over the environment and the default."""
    assert database_root(tmp_path / "db", off=False) == tmp_path / "db"
    assert database_root(tmp_path / "db", off=True) is None


def test_a_headline_without_a_case_number_says_none() -> None:
    """A failing result built without the first failure's number has no 'first failed' part."""
    candidate, handshake = start(C.NoClear)
    result = run(candidate, handshake, budget=BUDGETS["fast"], seed_value=10)
    assert "first failed at case" in headline(result)
    assert "first failed" not in headline(replace(result, first_failure=None))
    candidate, handshake = start(reference)
    assert run(candidate, handshake, budget=BUDGETS["fast"], seed_value=1).conforms


class _HeldAtExit(BaseDriver):
    """A driver whose release would wait for its lock."""

    def release_would_block(self) -> bool:
        return True


def test_an_exit_the_driver_would_block_on_is_not_taken() -> None:
    """The driver's release waiting for its lock makes the exit wait: the step is not taken."""
    candidate = _HeldAtExit()
    executor = DriverExecutor(candidate, candidate.handshake(), World(vmas=VMAS), ENCODINGS[2])
    assert executor.begin() is None
    assert executor.waits(Exit()) == "the driver's release would wait for its lock"


class _TurnsTheSignalIntoAnExit(C.Wrapped):
    """Turns the harness's interruption into an exception of its own, as a library may."""

    name = "turns"

    def close(self) -> None:
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            signal.sigtimedwait([], 0.01)
        except BaseException:
            raise SystemExit(3) from None


def test_a_signal_that_comes_out_as_another_exception_still_exits_143() -> None:
    """Whatever the signal was turned into on its way up, the command says it was
    interrupted and exits with the signal's status."""
    status, _, err = _run(
        "run", "--adapter", "tests.test_verdict_edges:_TurnsTheSignalIntoAnExit", "--examples", "3"
    )
    assert status == 143
    assert "hmm-conformance: interrupted by SIGTERM" in err


def test_a_catalogue_interrupted_after_a_failure_shows_it_and_saves_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The catalogue has no replay directory: a run of it stopped by a signal after a failure
    shows the case so far and exits with the signal's status, saving no file."""
    candidate, handshake = start(C.NoClear)
    found = run(candidate, handshake, budget=BUDGETS["fast"], seed_value=1)

    def stopped(*args: object, **kwargs: object) -> None:
        raise RunInterrupted(Interrupted(signal.SIGTERM), found)

    monkeypatch.setattr(engine, "run", stopped)
    monkeypatch.chdir(tmp_path)
    status, out, _ = _run("catalogue", "--side", "core", "--budget", "fast")
    assert status == 143
    assert "interrupted after a failure; the case as far as it was shrunk:" in out
    assert "replay file:" not in out
    assert list(tmp_path.iterdir()) == []

"""A failure found is never lost on its way to the user: output paths are checked before the
run, the replay file is written first and never over another, candidate names cannot drive the
terminal or the file system, and one seed is one run whatever the entry point."""

from __future__ import annotations

import io
import json
import os
import signal
from pathlib import Path
from xml.etree import ElementTree

import pytest

import conformance._engine as engine
import hmm_ref as H
from conformance import Budget, Handshake, reference, run, start
from conformance._counting import LIVE
from conformance._driving import FailuresOnly
from conformance._engine import RunInterrupted
from conformance._isolation import interrupts, received
from conformance._outputs import (
    check_directory,
    check_file,
    database_root,
    file_stem,
    printable,
    save_replay,
    save_stuck,
)
from conformance._report import replay_document
from conformance.cli import main
from conformance.core._adapter import AdapterError
from conformance.driver import DriverHandshake
from conformance.driver._catalogue import BaseDriver
from hmm_ref import PfnEncoding

from . import candidates as C


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(list(argv), stdout=out, stderr=err)
    return status, out.getvalue(), err.getvalue()


FAILING = ("run", "--adapter", "tests.candidates:NoClear", "--budget", "fast", "--seed", "10")


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("no/such/dir/r.xml", "No such file or directory"),
        ("a-file/r.xml", "Not a directory"),
        ("a-dir", "is a directory"),
    ],
)
def test_a_report_path_that_cannot_be_written_stops_the_run_before_it_starts(
    tmp_path: Path, where: str, message: str
) -> None:
    """Exit 2 with one line before any case runs, and nothing is left behind."""
    (tmp_path / "a-file").write_text("")
    (tmp_path / "a-dir").mkdir()
    status, out, err = _run(
        *FAILING, "--report", "junit", str(tmp_path / where), "--replay-dir", str(tmp_path / "r")
    )
    assert status == 2
    assert out == ""
    assert err.startswith("hmm-conformance: error: --report junit: ")
    assert message in err
    assert err.count("\n") == 1
    assert not (tmp_path / "r").exists()


def test_an_unwritable_file_is_refused(tmp_path: Path) -> None:
    """A file the system will not let us write is refused (a read-only file system here,
    since the tests may run as root, for whom permission bits do not stop a write)."""
    with pytest.raises(AdapterError, match=r"--report json: cannot write '/proc/version'"):
        check_file(Path("/proc/version"), "--report json")


@pytest.mark.parametrize("where", ["a-file", "a-file/below"])
def test_a_replay_directory_that_cannot_be_made_stops_the_run(tmp_path: Path, where: str) -> None:
    """A file in the way of --replay-dir, or a path under a file: exit 2 before the run."""
    (tmp_path / "a-file").write_text("")
    status, out, err = _run(*FAILING, "--replay-dir", str(tmp_path / where))
    assert (status, out) == (2, "")
    assert "--replay-dir: cannot write in" in err


def test_checking_a_directory_leaves_nothing_behind(tmp_path: Path) -> None:
    """The probe of a directory that does not exist yet makes and removes it again."""
    check_directory(tmp_path / "a" / "b", "--replay-dir")
    assert list(tmp_path.iterdir()) == []


def test_the_replay_file_is_saved_before_a_report_that_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A report path that breaks after the check loses nothing: the case is already saved and
    shown, and the report's failure is one line and exit 2."""
    report = tmp_path / "reports" / "r.json"
    report.parent.mkdir()
    real_write = Path.write_text
    writes: list[Path] = []

    def vanishing(path: Path, text: str, *args: object, **kwargs: object) -> int:
        writes.append(path)
        if writes.count(report) > 1:  # the placeholder before the run goes in; the report not
            raise FileNotFoundError(2, "No such file or directory")
        return real_write(path, text)

    monkeypatch.setattr(Path, "write_text", vanishing)
    status, out, _ = _run(*FAILING, "--report", "json", str(report), "--replay-dir", str(tmp_path))
    assert status == 2
    assert "NOT CONFORMING: RNG-3" in out
    assert "error: the json report could not be written" in out
    assert json.loads(report.read_text())["result"] == "unfinished"
    (saved,) = tmp_path.glob("*.json")
    assert out.index(f"replay file: {saved}") < out.index("NOT CONFORMING")


def test_replay_files_never_overwrite_each_other(tmp_path: Path) -> None:
    """Two runs of the same candidate and seed keep both cases, and say which file is new."""
    _, first, _ = _run(*FAILING, "--replay-dir", str(tmp_path))
    _, second, _ = _run(*FAILING, "--replay-dir", str(tmp_path))
    assert f"replay file: {tmp_path / 'no-clear-seed-seed10.json'}" in first
    assert f"replay file: {tmp_path / 'no-clear-seed-seed10-2.json'}" in second
    assert len(list(tmp_path.glob("*.json"))) == 2


def test_a_replay_file_that_cannot_be_written_where_asked_goes_elsewhere(tmp_path: Path) -> None:
    """If the directory breaks between the check and the save, the case goes to a new
    temporary directory, and the note says where."""
    blocker = tmp_path / "gone"
    blocker.write_text("")
    path, note = save_replay(blocker, "case", {"ops": []})
    assert note is not None
    assert "could not write in" in note
    assert json.loads(path.read_text()) == {"ops": []}
    assert path.parent != blocker


class _Named(C.Wrapped):
    """A candidate whose name is hostile to terminals and file systems."""

    def handshake(self) -> Handshake:
        inner = super().handshake()
        return Handshake(
            protocol_version=inner.protocol_version,
            name="-\x1b[2J\x1b]0;owned\x07" + "x" * 300,
            version="\x1b[31mred",
            capabilities=inner.capabilities,
        )

    def invalidate_start(self, start: int, end: int, blockable: bool) -> int:
        return C.ParentTree.invalidate_start(self, start, end, blockable)  # type: ignore[arg-type]


def test_candidate_names_are_shown_and_saved_safely(tmp_path: Path) -> None:
    """Escape sequences are shown as text, and the replay file's name is short, plain and does
    not start with '-'."""
    status, out, _ = _run(
        "run",
        "--adapter",
        "tests.test_verdict_path:_Named",
        "--budget",
        "fast",
        "--seed",
        "1",
        "--replay-dir",
        str(tmp_path),
    )
    assert status == 1
    assert "\x1b" not in out
    assert "\\x1b[2J" in out
    (saved,) = tmp_path.glob("*.json")
    assert saved.name.startswith("2J-0-owned-xxx")
    assert len(saved.name) < 100


def test_printable_and_file_stem_cover_every_kind_of_character() -> None:
    """Controls become \\xNN, other unprintables '?', long text is cut; stems are plain."""
    assert printable("a\x00b\u2028c") == "a\\x00b?c"
    assert printable("y" * 200, limit=10) == "yyyyyyyyy…"
    assert file_stem("..--a b/é") == "a-b"
    assert file_stem("\x1b") == "candidate"


def _case_of(document: dict[str, object]) -> tuple[object, object]:
    return document["world"], document["ops"]


def test_one_seed_is_one_run_through_the_cli_the_api_and_the_plugin(
    tmp_path: Path, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same seed and budget (here from $HMM_CONFORMANCE_BUDGET) give the same failing
    case at the same case number, shrunk the same way, through all three entry points."""
    monkeypatch.setenv("HMM_CONFORMANCE_BUDGET", "fast")
    candidate, handshake = start(C.NoClear)
    api = run(candidate, handshake, seed_value=2)
    assert api.failure is not None
    from_api = _case_of(replay_document(api))

    status, out, _ = _run(
        "run",
        "--adapter",
        "tests.candidates:NoClear",
        "--seed",
        "2",
        "--replay-dir",
        str(tmp_path),
    )
    assert status == 1
    assert f"first failed at case {api.first_failure} of 100" in out
    (cli_file,) = tmp_path.glob("*.json")
    assert _case_of(json.loads(cli_file.read_text())) == from_api

    result = pytester.runpytest("--hmm-adapter=tests.candidates:NoClear", "--hmm-seed=2")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*first failed at case {api.first_failure} of 100*"])
    (plugin_file,) = (pytester.path / "hmm-conformance-failures").glob("*.json")
    assert _case_of(json.loads(plugin_file.read_text())) == from_api


def test_a_saved_failure_is_tried_first_by_the_next_run(tmp_path: Path) -> None:
    """With an example database, a later run of the same candidate (another seed) fails its
    first case: the saved failure comes back first."""
    budget = Budget(name="test", examples=100, steps=30)
    candidate, handshake = start(C.NoClear)
    first = run(candidate, handshake, budget=budget, seed_value=10, database=tmp_path)
    assert first.first_failure is not None
    assert first.first_failure > 1
    again = run(candidate, handshake, budget=budget, seed_value=6, database=tmp_path)
    assert again.from_database
    assert again.first_failure == 1
    assert again.failure is not None
    assert len(again.failure.case.ops) == len(first.failure.case.ops) if first.failure else False


def test_a_run_that_passes_keeps_nothing_in_the_database(tmp_path: Path) -> None:
    """Only failing cases are kept: the case the budget stopped before its first step is not,
    so the next run of the same seed gives the same result, not a crash of the harness."""
    budget = Budget(name="test", examples=100, steps=30)
    first = run(*start(reference), budget=budget, seed_value=23, database=tmp_path)
    assert first.conforms
    assert [path for path in tmp_path.rglob("*") if path.is_file()] == []
    again = run(*start(reference), budget=budget, seed_value=23, database=tmp_path)
    assert again.conforms
    assert not again.from_database
    assert again.tally == first.tally


def test_saved_entries_that_no_longer_replay_are_passed_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Entries an older harness saved, which no longer replay as a case (here: the unfinished
    case after the budget, which versions before the gate kept), are not a crash: the run
    generates its cases, and passes."""
    budget = Budget(name="test", examples=100, steps=30)
    seed = 6  # one whose budget stops inside a case: about half stop between cases, keeping nothing
    with monkeypatch.context() as older:
        older.setattr(FailuresOnly, "save", lambda self, key, value: self._saved.save(key, value))
        assert run(*start(reference), budget=budget, seed_value=seed, database=tmp_path).conforms
    assert [path for path in tmp_path.rglob("*") if path.is_file()], "the older harness kept it"
    again = run(*start(reference), budget=budget, seed_value=seed, database=tmp_path)
    assert again.conforms
    assert not again.from_database


def test_the_command_line_keeps_failures_in_the_database_unless_told_not_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """run keeps failing cases under .hypothesis/hmm-conformance by default, per candidate;
    --no-database and $HMM_CONFORMANCE_DATABASE=off keep none."""
    monkeypatch.delenv("HMM_CONFORMANCE_DATABASE")
    monkeypatch.chdir(tmp_path)
    _run(*FAILING, "--replay-dir", str(tmp_path / "r"), "--no-database")
    assert not (tmp_path / ".hypothesis").exists()
    _run(*FAILING, "--replay-dir", str(tmp_path / "r"))
    kept = tmp_path / ".hypothesis" / "hmm-conformance" / "core-no-clear-seed"
    assert any(kept.rglob("*")), "the failing case was kept"
    _, out, _ = _run(
        "run", "--adapter", "tests.candidates:NoClear", "--budget", "fast", "--seed", "6"
    )
    assert "the failure came from the example database" in out
    assert "a failure an earlier run saved in the example database, tried first" in out
    monkeypatch.setenv("HMM_CONFORMANCE_DATABASE", "off")
    assert database_root(None, off=False) is None
    monkeypatch.setenv("HMM_CONFORMANCE_DATABASE", str(tmp_path / "elsewhere"))
    assert database_root(None, off=False) == tmp_path / "elsewhere"
    assert os.path.isdir(tmp_path / "elsewhere") is False


class _Loops(C.Wrapped):
    """A core whose every snapshot loops forever in Python."""

    name = "loops"

    def snapshot(self, range_id: int, vma: int, start: int, end: int, encoding: PfnEncoding) -> int:
        while True:
            pass


def test_an_in_process_candidate_that_loops_forever_gets_a_hang_verdict(tmp_path: Path) -> None:
    """--step-timeout applies in process: the loop is a HANG, shrunk and saved, not a hang of
    the harness."""
    status, out, _ = _run(
        "run",
        "--adapter",
        "tests.test_verdict_path:_Loops",
        "--step-timeout",
        "0.2",
        "--budget",
        "fast",
        "--seed",
        "1",
        "--replay-dir",
        str(tmp_path),
    )
    assert status == 1
    assert "NOT CONFORMING: HANG, shrunk to 1 operation" in out
    assert "snapshot: no answer within 0.2 s" in out
    assert len(list(tmp_path.glob("loops-*.json"))) == 1


def test_isolate_runs_a_python_core_in_a_child_process(tmp_path: Path) -> None:
    """--isolate serves the adapter from a child process; the verdicts are the same."""
    status, out, _ = _run(
        "run",
        "--adapter",
        "tests.candidates:NoClear",
        "--isolate",
        "--examples",
        "40",
        "--seed",
        "2",
        "--replay-dir",
        str(tmp_path),
    )
    assert status == 1
    assert "NOT CONFORMING: RNG-3" in out
    status, _, err = _run("run", "--adapter", "exec:/bin/true", "--isolate")
    assert status == 2
    assert "an exec: program has one already, so leave out --isolate" in err


class _InterruptedWhileShrinking(C.Wrapped):
    """Breaks INV-5 like the parent tree; Ctrl-C comes while the failure is being shrunk."""

    name = "interrupted"

    def __init__(self) -> None:
        super().__init__()
        self.failed = 0

    def invalidate_start(self, start: int, end: int, blockable: bool) -> int:
        if not blockable:
            self.failed += 1
            if self.failed == 3:
                raise KeyboardInterrupt
            return -H.Errno.EAGAIN
        return super().invalidate_start(start, end, blockable)


def test_an_interrupted_run_saves_the_failure_it_had_found(tmp_path: Path) -> None:
    """Ctrl-C during shrinking: the failure so far is printed and saved, and the exit is 130."""
    status, out, _ = _run(
        "run",
        "--adapter",
        "tests.test_verdict_path:_InterruptedWhileShrinking",
        "--budget",
        "fast",
        "--seed",
        "3",
        "--replay-dir",
        str(tmp_path),
    )
    assert status == 130
    assert "interrupted after a failure" in out
    assert "FAIL INV-5" in out
    (saved,) = tmp_path.glob("interrupted-*.json")
    assert json.loads(saved.read_text())["failure"][0]["rule"] == "INV-5"


class _SilentDriver(BaseDriver):
    """A driver whose handshake never returns."""

    def handshake(self) -> DriverHandshake:
        while True:
            pass


def test_a_driver_that_hangs_in_its_handshake_is_not_conforming() -> None:
    """A hung driver handshake is the driver's HANG (exit 1), not a setup error."""
    status, _, err = _run(
        "run",
        "--side",
        "driver",
        "--adapter",
        "tests.test_verdict_path:_SilentDriver",
        "--step-timeout",
        "0.2",
    )
    assert status == 1
    assert "NOT CONFORMING: the candidate failed before the first case: HANG" in err


class _SwallowsTheSignal(C.Wrapped):
    """Catches everything, the harness's interruption too, the first time it is signalled."""

    name = "swallows"
    signalled = False

    def invalidate_start(self, start: int, end: int, blockable: bool) -> int:
        if not _SwallowsTheSignal.signalled:
            _SwallowsTheSignal.signalled = True
            try:
                os.kill(os.getpid(), signal.SIGTERM)
                signal.sigtimedwait([], 0.01)  # let the handler run here
            except BaseException:
                pass
        return super().invalidate_start(start, end, blockable)


def test_a_signal_lost_inside_the_run_still_stops_it() -> None:
    """A SIGTERM swallowed on its way up (as a library may do) still ends the run as
    interrupted, with exit status 143, rather than as whatever came out."""
    _SwallowsTheSignal.signalled = False
    candidate, handshake = start(_SwallowsTheSignal)
    with interrupts(), pytest.raises(RunInterrupted) as stopped:
        run(candidate, handshake, budget=Budget(name="t", examples=20, steps=20), seed_value=1)
    assert stopped.value.exit_status == 143
    assert stopped.value.result.cases < 20, "it stopped at the next case, not at the budget"
    assert received() is None, "the block is over"


def test_a_signal_while_the_failure_is_minimised_still_saves_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C after Hypothesis is done, while the case is replayed and minimised: the failure
    is saved all the same, and the exit is 130."""

    def interrupted(*args: object) -> object:
        raise KeyboardInterrupt

    monkeypatch.setattr(engine, "minimise", interrupted)
    status, out, _ = _run(*FAILING, "--replay-dir", str(tmp_path))
    assert status == 130
    assert "interrupted after a failure" in out
    assert len(list(tmp_path.glob("no-clear-*.json"))) == 1


def test_a_report_left_from_an_earlier_run_does_not_outlive_an_interrupted_one(
    tmp_path: Path,
) -> None:
    """Before the run, each report path gets a placeholder that is not green, so a run that
    never writes its report leaves no earlier 'ok' behind."""
    report = tmp_path / "r.ktap"
    report.write_text("KTAP version 1\n1..1\nok 1 all\n")
    status, _, _ = _run(
        "run",
        "--adapter",
        "tests.test_verdict_path:_InterruptedWhileShrinking",
        "--budget",
        "fast",
        "--seed",
        "3",
        "--report",
        "ktap",
        str(report),
        "--replay-dir",
        str(tmp_path),
    )
    assert status == 130
    assert report.read_text().splitlines()[-1] == "not ok 1 hmm-conformance"


def test_a_candidate_that_breaks_down_for_good_is_not_called_flaky(tmp_path: Path) -> None:
    """A candidate that cannot begin any case after its 30th fails every replay too: that is
    a failure (CRASH in begin()), not a case that passed when it was run again."""
    status, out, _ = _run(
        "run",
        "--adapter",
        "tests.candidates:BreaksDown",
        "--budget",
        "fast",
        "--seed",
        "5",
        "--replay-dir",
        str(tmp_path),
    )
    assert status == 1
    assert "FLAKY" not in out
    assert "NOT CONFORMING: CRASH" in out


class _Forger(C.ParentTree):
    """A broken core whose name tries to forge report lines and break XML."""

    def handshake(self) -> Handshake:
        inner = super().handshake()
        return Handshake(
            protocol_version=inner.protocol_version,
            name="evil\nok 1 everything\n\x1b[2J\x00",
            version="1\n# forged",
            capabilities=inner.capabilities,
        )


def test_a_candidate_cannot_forge_report_lines_or_break_junit(tmp_path: Path) -> None:
    """Names a candidate chooses are one line of plain text in KTAP and Markdown, and JUnit
    still parses."""
    status, _, _ = _run(
        "run",
        "--adapter",
        "tests.test_verdict_path:_Forger",
        "--examples",
        "5",
        "--seed",
        "1",
        "--replay-dir",
        str(tmp_path),
        "--report",
        "ktap",
        str(tmp_path / "r.ktap"),
        "--report",
        "junit",
        str(tmp_path / "r.xml"),
        "--report",
        "md",
        str(tmp_path / "r.md"),
    )
    assert status == 1
    ktap = (tmp_path / "r.ktap").read_text()
    assert "\nok 1 everything" not in ktap
    assert all(
        line.startswith(("KTAP", "1..", "#", "ok ", "not ok ")) for line in ktap.splitlines()
    )
    suite = ElementTree.parse(tmp_path / "r.xml").getroot().find("testsuite")
    assert suite is not None
    assert suite.get("name") == "hmm-conformance[evil\\x0aok 1 everything\\x0a\\x1b[2J\\x00]"
    title = (tmp_path / "r.md").read_text().splitlines()[0]
    assert title == "# hmm-conformance: evil\\x0aok 1 everything\\x0a\\x1b[2J\\x00 1\\x0a# forged"


def test_the_watchdog_saves_the_case_under_way_as_a_replay_file(tmp_path: Path) -> None:
    """The last resort's file is a replay file like any other: the case, the profile, the
    seed, the candidate, and a HANG verdict."""
    LIVE.start("c-seed-seed4", profile="seed", seed=4, candidate={"name": "c", "version": "1"})
    assert save_stuck("stuck", tmp_path) is None, "no case under way yet"
    LIVE.document = lambda: {"format": "hmm-conformance/case", "ops": []}
    saved = save_stuck("snapshot has not returned", tmp_path)
    assert saved is not None
    path, note = saved
    assert (path.name, note) == ("c-seed-seed4-stuck.json", None)
    document = json.loads(path.read_text())
    assert document["profile"] == "seed"
    assert document["seed"] == 4
    assert document["candidate"] == {"name": "c", "version": "1"}
    assert document["failure"] == [
        {"rule": None, "status": "hang", "detail": "snapshot has not returned"}
    ]

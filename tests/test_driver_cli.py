"""The command line and the pytest plugin on the driver side: run, reports, replay, scenario."""

from __future__ import annotations

import importlib.resources
import io
import json
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import jsonschema
import pytest

from conformance import main
from conformance.core._scenario import oom_reaper_scenario

from . import driver_candidates as B

#: A fast budget, trimmed further: every DRV rule still comes up at this seed.
FAST = ("--budget", "fast", "--examples", "60", "--steps", "20", "--seed", "7")


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(list(argv), stdout=out, stderr=err)
    return status, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    text = (
        importlib.resources.files("conformance").joinpath("schemas/report.schema.json").read_text()
    )
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def test_run_side_driver_checks_the_reference_driver_by_default(tmp_path: Path) -> None:
    """No adapter: the reference driver, its lock, the DRV matrix, conforms, exit 0."""
    status, out, err = _run("run", "--side", "driver", *FAST)
    assert status == 0, err
    assert "driver hmm_ref.ReferenceDriver (mutex) " in out
    assert "(lock dmirror-mutex.lock; capabilities: release)" in out
    assert "side driver, budget fast+custom: 60 cases of up to 20 steps" in out
    assert "cases checked" in out
    for rule in ("DRV-1  MUST", "DRV-4  MUST", "DRV-6  SHOULD"):
        assert rule in out
    assert "REG-1" not in out
    assert "[hmm-conformance] conforms: no rule failed in " in out


def test_a_broken_driver_fails_with_steps_reports_and_a_replay_file(
    tmp_path: Path, schema: dict[str, Any]
) -> None:
    """gntdev's bug: exit 1, the shrunk steps, every report, and a file that replays."""
    reports = {kind: tmp_path / f"r.{kind}" for kind in ("json", "junit", "ktap", "md")}
    argv = [
        "run",
        "--side",
        "driver",
        "--adapter",
        "conformance.driver._catalogue:EagainWhenBlockable",
    ]
    for kind, path in reports.items():
        argv += ["--report", kind, str(path)]
    status, out, _ = _run(*argv, *FAST, "--replay-dir", str(tmp_path / "failures"))
    assert status == 1
    assert "NOT CONFORMING: DRV-2, DRV-3, shrunk to 3 operations; first failed at case " in out
    assert "driver.sync(blockable=True) -> -EAGAIN; device entries in the span before: 0x" in out
    assert "FAIL DRV-3: the blockable [" in out
    [replay_file] = list((tmp_path / "failures").iterdir())
    assert replay_file.name == "eagain-when-blockable-driver-seed7.json"

    report = json.loads(reports["json"].read_text())
    jsonschema.validate(report, schema, cls=jsonschema.Draft202012Validator)
    assert report["side"] == "driver"
    assert report["result"] == "violation"
    assert [rule["id"] for rule in report["rules"]] == [f"DRV-{n}" for n in range(1, 8)]
    assert report["failure"]["case"]["side"] == "driver"
    assert report["failure"]["steps"][1]["result"] == "snapshot, lock, check, unlock; done: 0"
    suite = ElementTree.fromstring(reports["junit"].read_text()).find("testsuite")
    assert suite is not None
    assert suite.get("tests") == "7"
    assert suite.get("failures") == "2"
    assert reports["ktap"].read_text().startswith("KTAP version 1\n1..7\n")
    assert "not ok 3 DRV-3" in reports["ktap"].read_text()
    assert "| DRV-3 | MUST |" in reports["md"].read_text()

    status, out, _ = _run("replay", str(replay_file))
    assert status == 0
    assert "replaying 3 operations against the driver hmm_ref.ReferenceDriver (mutex)" in out
    assert "every step held" in out
    status, out, _ = _run(
        "replay", str(replay_file), "--adapter", "conformance.driver._catalogue:EagainWhenBlockable"
    )
    assert status == 1
    assert "[hmm-conformance] NOT CONFORMING: DRV-2, DRV-3" in out


def test_an_over_conservative_driver_conforms_with_a_graded_DRV_6(
    tmp_path: Path, schema: dict[str, Any]
) -> None:
    """nouveau's -EAGAIN is graded in the matrix and the reports, never failed."""
    report = tmp_path / "r.json"
    status, out, _ = _run(
        "run",
        "--side",
        "driver",
        "--adapter",
        "conformance.driver._catalogue:OverConservative",
        "--report",
        "json",
        str(report),
        *FAST,
    )
    assert status == 0
    [row] = [line for line in out.splitlines() if line.startswith("DRV-6")]
    assert "graded: over-conservative: " in row
    graded = int(row.rsplit(": ", 1)[1])
    assert graded > 0
    assert row.split()[2] == row.split()[3]  # every DRV-6 verdict of this driver is a grade
    assert f"DRV-6 graded {graded} answers over-conservative" in out
    data = json.loads(report.read_text())
    jsonschema.validate(data, schema, cls=jsonschema.Draft202012Validator)
    [drv6] = [rule for rule in data["rules"] if rule["id"] == "DRV-6"]
    assert drv6["status"] == "graded"
    assert drv6["latitudes"] == {"over-conservative": graded}
    assert data["result"] == "conforms"


def test_a_driver_run_too_small_is_inconclusive() -> None:
    """One case of one step leaves DRV rules unreached: exit 1. (The seed is fixed: the
    faults the world starts with take steps of their own, and some seeds reach every rule.)"""
    status, out, _ = _run(
        "run", "--side", "driver", "--examples", "1", "--steps", "1", "--seed", "1", "--no-aim"
    )
    assert status == 1
    assert "INCONCLUSIVE: no rule failed, but DRV-" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["run", "--side", "driver", "--adapter", "exec:./gpu"],
            "adapter 'exec:./gpu': './gpu' does not exist; is it built?",
        ),
        (
            ["run", "--side", "driver", "--profile", "strict"],
            "--profile strict applies to the core",
        ),
        (["run", "--side", "driver", "--adapter", "nope_xyz:make"], "adapter module 'nope_xyz'"),
        (["run", "--side", "driver", "--adapter", "tests"], "is not of the form MODULE:FACTORY"),
        (
            ["run", "--side", "driver", "--adapter", "tests.driver_candidates:missing"],
            "has no attribute 'missing'",
        ),
        (
            ["run", "--side", "driver", "--adapter", "tests.driver_candidates:NOT_CALLABLE"],
            "is not callable",
        ),
        (
            ["run", "--side", "driver", "--adapter", "tests.driver_candidates:not_a_driver"],
            "which is not a driver candidate: it lacks handshake, begin",
        ),
        (
            ["run", "--side", "driver", "--adapter", "tests.driver_candidates:raising_factory"],
            "the adapter factory raised ValueError: no device",
        ),
        (
            ["run", "--side", "driver", "--adapter", "tests.driver_candidates:HandshakeRaises"],
            "handshake() raised RuntimeError: firmware",
        ),
        (
            [
                "run",
                "--side",
                "driver",
                "--adapter",
                "tests.driver_candidates:HandshakeNotADriverHandshake",
            ],
            "handshake() returned dict; a driver returns DriverHandshake",
        ),
        (
            ["run", "--side", "driver", "--adapter", "tests.driver_candidates:OldProtocol"],
            "speaks driver protocol version 99; this harness speaks 1",
        ),
        (["run", "--side", "driver", "--report", "pdf", "x.pdf"], "--report 'pdf'"),
    ],
)
def test_driver_setup_errors_exit_2_with_one_line(argv: list[str], message: str) -> None:
    """Bad adapters, handshakes and options on the driver side: exit 2, one line on stderr."""
    status, _, err = _run(*argv)
    assert status == 2
    assert message in err
    assert err.count("\n") == 1


def _driver_file(tmp_path: Path, **changes: object) -> Path:
    document: dict[str, object] = {
        "format": "hmm-conformance/case",
        "version": 1,
        "side": "driver",
        "world": {"vmas": [{"start": 65536, "end": 98304}], "ptes": []},
        "encoding": {"flags": [1, 2, 4], "values": [16, 8, 32], "pfn_shift": 12},
        "ops": [{"op": "start_fault", "fault": 0, "start": 65536, "end": 69632}],
    }
    document.update(changes)
    path = tmp_path / "case.json"
    path.write_text(json.dumps(document))
    return path


@pytest.mark.parametrize(
    ("changes", "extra", "message"),
    [
        ({"side": "gpu"}, [], "case.side: 'gpu' is not 'core' or 'driver'"),
        ({"ops": [{"op": "run_fault", "fault": 0}]}, [], "fault f0 was never started"),
        ({"version": 3}, [], "case.version: 3 is not 1"),
        ({}, ["--profile", "strict"], "--profile strict applies to the core side"),
    ],
)
def test_bad_driver_replay_files_exit_2(
    tmp_path: Path, changes: dict[str, object], extra: list[str], message: str
) -> None:
    """A driver case with a bad side, version, caller protocol or profile: exit 2."""
    status, _, err = _run("replay", str(_driver_file(tmp_path, **changes)), *extra)
    assert status == 2
    assert message in err


def test_a_bad_close_is_said_on_both_run_and_replay(tmp_path: Path) -> None:
    """A close() that raises is a line of output, not a failure."""
    adapter = "tests.driver_candidates:BadClose"
    status, out, _ = _run("run", "--side", "driver", "--adapter", adapter, *FAST)
    assert status == 0
    assert "the driver's close() raised OSError: device busy" in out
    status, out, _ = _run("replay", str(_driver_file(tmp_path)), "--adapter", adapter)
    assert status == 0
    assert "the driver's close() raised OSError: device busy" in out
    assert "  1. device fault f0 over [0x10000, 0x11000) starts: ok" in out


def test_scenario_oom_reaper_prints_the_scenario_table() -> None:
    """`scenario oom-reaper` is conformance.core._scenario's table, as it is, exit 0."""
    status, out, err = _run("scenario", "oom-reaper")
    expected = io.StringIO()
    assert oom_reaper_scenario(expected) == 0
    assert (status, err) == (0, "")
    assert out == expected.getvalue()
    assert "gave up after 10 attempts" in out
    status, _, err = _run("scenario", "oom-killer")
    assert status == 2
    assert "invalid choice: 'oom-killer'" in err


PLUGIN = ("--hmm-side=driver", "--hmm-budget=fast", "--hmm-seed=7", "-p", "no:cacheprovider")


def test_the_plugin_runs_the_driver_side(pytester: pytest.Pytester) -> None:
    """--hmm-side=driver: the reference driver passes, a broken one fails with its steps."""
    pytester.makepyfile("def test_users_own(): pass")
    result = pytester.runpytest("--hmm-adapter=conformance:reference_driver", *PLUGIN)
    result.assert_outcomes(passed=2)
    broken = pytester.runpytest(
        "--hmm-adapter=conformance.driver._catalogue:ChecksBeforeLocking", *PLUGIN
    )
    broken.assert_outcomes(passed=1, failed=1)
    broken.stdout.fnmatch_lines(
        [
            "*replay file: *pytest-checks-before-locking-driver-seed7.json*",
            "*NOT CONFORMING: DRV-4, shrunk to 2 operations; first failed at case * of 100, "
            "shrunk in * more (seed 7)*",
            "*FAIL DRV-4: f0's check step committed*",
        ]
    )


def test_the_plugin_reports_driver_setup_errors(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A driver adapter that does not load, or a bad budget in the environment, is an ERROR in
    the test's setup."""
    result = pytester.runpytest("--hmm-adapter=tests.driver_candidates:not_a_driver", *PLUGIN)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*setup: *which is not a driver candidate*"])
    monkeypatch.setenv("HMM_CONFORMANCE_BUDGET", "huge")
    result = pytester.runpytest(
        "--hmm-adapter=conformance:reference_driver", "--hmm-side=driver", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*setup: $HMM_CONFORMANCE_BUDGET='huge' is not a budget*"])


def test_the_flaky_driver_is_not_conforming_on_the_command_line() -> None:
    """A driver that fails once and then passes makes the run exit 1, flaky."""
    B.FLAKY.failed = False
    status, out, _ = _run(
        "run", "--side", "driver", "--adapter", "tests.driver_candidates:Flaky", *FAST
    )
    assert status == 1
    assert "NOT CONFORMING: FLAKY: the driver failed case" in out
    assert "replay file: " in out

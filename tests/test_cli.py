"""The hmm-conformance command, driven through main(argv) with injected streams."""

from __future__ import annotations

import functools
import io
import itertools
import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import conformance.core._explore as core_explore
from conformance import main

from . import candidates


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


def test_run_checks_the_reference_by_default_and_prints_the_matrix() -> None:
    """`run` with no adapter checks the reference, prints progress and the matrix, exits 0."""
    status, out, err = _run("run", "--seed", "5", "--budget", "fast")
    assert status == 0, err
    assert "candidate hmm_ref" in out
    assert "cases checked" in out
    assert "INV-5  MUST" in out
    assert "[hmm-conformance] conforms: no rule failed" in out
    assert "--seed 5" in out


def test_run_of_a_broken_candidate_exits_1_with_steps_and_a_replay_file(tmp_path: Path) -> None:
    """A violation prints the rule and the shrunk steps, writes a replay file and reports; its
    shrinking stops at --shrinks."""
    replays = tmp_path / "failures"
    json_report, ktap = tmp_path / "r.json", tmp_path / "r.ktap"
    status, out, _ = _run(
        "run",
        "--adapter",
        "tests.candidates:ParentTree",
        "--budget",
        "fast",
        "--seed",
        "5",
        "--shrinks",
        "7",
        "--replay-dir",
        str(replays),
        "--report",
        "json",
        str(json_report),
        "--report",
        "ktap",
        str(ktap),
    )
    assert status == 1
    assert "NOT CONFORMING: INV-5, shrunk to 1 operation; first failed at case " in out
    assert "FAIL INV-5:" in out
    [replay_file] = list(replays.iterdir())
    assert f"replay file: {replay_file}" in out
    report = json.loads(json_report.read_text())
    assert report["result"] == "violation"
    # --shrinks bounds Hypothesis's shrinking; the minimiser still takes the case to 1 operation
    assert report["budget"] == {"name": "fast+custom", "examples": 100, "steps": 30, "shrinks": 7}
    assert 0 < report["totals"]["shrink_cases"] <= 7
    assert ktap.read_text().startswith("KTAP version 1\n")

    status, out, _ = _run("replay", str(replay_file), "--adapter", "tests.candidates:ParentTree")
    assert status == 1
    assert "FAIL INV-5:" in out
    status, out, _ = _run("replay", str(replay_file))
    assert status == 0
    assert "every step held" in out


def test_run_options_override_the_budget_and_reach_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """--examples/--steps adjust the budget; too small a run is inconclusive (exit 1) with
    --no-aim, and reaches the rest with cases aimed at them without it;
    $HMM_CONFORMANCE_BUDGET picks the default budget."""
    monkeypatch.setenv("HMM_CONFORMANCE_BUDGET", "fast")
    status, out, _ = _run("run", "--examples", "5", "--steps", "3", "--seed", "1", "--no-aim")
    assert status == 1
    assert "budget fast+custom: 5 cases of up to 3 steps" in out
    assert "INCONCLUSIVE: no rule failed, but " in out
    status, out, _ = _run("run", "--examples", "5", "--steps", "3", "--seed", "1")
    assert status == 0
    assert "more aimed at " in out
    assert "which no generated case reached" in out
    monkeypatch.setenv("HMM_CONFORMANCE_BUDGET", "huge")
    status, _, err = _run("run")
    assert status == 2
    assert "$HMM_CONFORMANCE_BUDGET='huge' is not a budget" in err


def test_run_strict_fails_the_reference_as_documented(tmp_path: Path) -> None:
    """`--profile strict` fails the reference on one of its seed defects (REG-5, REL-3), exit 1."""
    status, out, _ = _run(
        "run",
        "--profile",
        "strict",
        "--budget",
        "fast",
        "--seed",
        "2",
        "--replay-dir",
        str(tmp_path),
    )
    assert status == 1
    assert re.search(r"NOT CONFORMING: (REG-5|REL-3), shrunk", out)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["run", "--adapter", "no_such_module_xyz:make"],
            "adapter module 'no_such_module_xyz' does not import (ModuleNotFoundError",
        ),
        (["run", "--adapter", "tests.candidates"], "is not of the form MODULE:FACTORY"),
        (["run", "--adapter", "tests.candidates:missing"], "has no attribute 'missing'"),
        (["run", "--adapter", "tests.candidates:NOT_CALLABLE"], "is not callable"),
        (
            ["run", "--adapter", "tests.candidates:not_a_candidate"],
            "returned object, which is not a candidate: it lacks handshake",
        ),
        (
            ["run", "--adapter", "tests.candidates:raising_factory"],
            "the adapter factory raised ValueError: no device",
        ),
        (
            ["run", "--adapter", "tests.candidates:OldProtocol"],
            "speaks adapter protocol version 99; this harness speaks 1",
        ),
        (
            ["run", "--adapter", "tests.candidates:BadHandshake"],
            "handshake() returned dict; return conformance.Handshake",
        ),
        (["run", "--report", "html", "out.html"], "--report 'html': the formats are json"),
        (["replay", "/nonexistent/case.json"], "cannot read replay file '/nonexistent/case.json'"),
    ],
)
def test_setup_errors_exit_2_with_one_line_naming_the_fix(argv: list[str], message: str) -> None:
    """Bad adapters, versions, formats and files: exit 2 and one line on stderr."""
    status, _, err = _run(*argv)
    assert status == 2
    assert message in err
    assert err.count("\n") == 1
    assert err.startswith("hmm-conformance: error: ")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--profile", "lenient"], "invalid choice: 'lenient'"),
        (["run", "--examples", "0"], "0 must be at least 1"),
        (["run", "--examples", "many"], "'many' is not a whole number"),
        (["run", "--seed", "-3"], "a seed is not negative"),
        (["run", "--seed", "x"], "'x' is not a whole number"),
        (["explore", "--depth", "0"], "0 must be at least 1"),
        (["explore", "--time-limit", "0"], "0 must be more than 0 seconds"),
        (["explore", "--time-limit", "soon"], "'soon' is not a number of seconds"),
    ],
)
def test_bad_options_exit_2(argv: list[str], message: str) -> None:
    """Unknown profiles and bad numbers are usage errors."""
    status, _, err = _run(*argv)
    assert status == 2
    assert message in err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not JSON"),
        ('{"format": "other"}', "case.format: expected 'hmm-conformance/case'"),
        (
            '{"format": "hmm-conformance/case", "version": 1, "world": {"vmas": [], "ptes": []},'
            ' "ops": [], "profile": "lenient"}',
            "unknown profile 'lenient'",
        ),
        (
            '{"format": "hmm-conformance/case", "version": 1, "world": {"vmas": [{"start": 0,'
            ' "end": 8192}], "ptes": []}, "ops": [{"op": "invalidate_end", "start": 0,'
            ' "end": 4096}]}',
            "step 1 (invalidate_end [0x0, 0x1000)): no successful start of this span is open",
        ),
    ],
)
def test_bad_replay_files_exit_2(tmp_path: Path, content: str, message: str) -> None:
    """A replay file that is not JSON, not a case, or names an unknown profile: exit 2."""
    path = tmp_path / "case.json"
    path.write_text(content)
    status, _, err = _run("replay", str(path))
    assert status == 2
    assert message in err


def test_run_reports_a_flaky_candidate_and_a_bad_close(tmp_path: Path) -> None:
    """A flaky candidate exits 1 with the reason; a close() that raises is reported, not fatal."""
    candidates.Flaky.failed_once = False
    status, out, _ = _run(
        "run",
        "--adapter",
        "tests.candidates:Flaky",
        "--budget",
        "fast",
        "--seed",
        "1",
        "--replay-dir",
        str(tmp_path),
    )
    assert status == 1
    assert re.search(r"NOT CONFORMING: FLAKY: the candidate failed case \d+ once", out)
    assert "the replay of this case did NOT fail again" in out
    (saved,) = tmp_path.glob("flaky-seed-seed1.json")
    assert json.loads(saved.read_text())["ops"], "the failing case is kept as it was first seen"
    status, out, _ = _run(
        "run", "--adapter", "tests.candidates:BadClose", "--budget", "fast", "--seed", "1"
    )
    assert status == 0
    assert "the candidate's close() raised OSError: device busy" in out


def test_replay_can_override_the_profile_and_reports_close_problems(tmp_path: Path) -> None:
    """--profile overrides the file's profile; a bad close() is a line, not a crash."""
    path = tmp_path / "case.json"
    path.write_text(
        json.dumps(
            {
                "format": "hmm-conformance/case",
                "version": 1,
                "profile": "seed",
                "world": {"vmas": [{"start": 65536, "end": 98304}], "ptes": []},
                "ops": [
                    {
                        "op": "snapshot",
                        "range": 0,
                        "vma": 0,
                        "start": 65536,
                        "end": 69632,
                        "encoding": {"flags": [1, 2, 4], "values": [16, 8, 32], "pfn_shift": 12},
                    },
                    {"op": "release"},
                ],
            }
        )
    )
    status, out, _ = _run("replay", str(path))
    assert status == 0
    status, out, _ = _run("replay", str(path), "--profile", "strict")
    assert status == 1
    assert "FAIL REL-3" in out
    status, out, _ = _run("replay", str(path), "--adapter", "tests.candidates:BadClose")
    assert "close() raised OSError" in out


def test_the_example_adapter_conforms_through_the_command_line() -> None:
    """docs/writing-an-adapter.md's example runs from the command line and conforms."""
    status, out, _ = _run("run", "--adapter", "examples.exact_core:make", "--seed", "5")
    assert status == 0
    assert "allowed: called m0, m1 (newest first would be m1, m0)" in out


def test_explore_checks_the_reference_to_depth_3_and_prints_levels_and_matrix() -> None:
    """Every sequence of three holds, every rule in force came up: exit 0. (One snapshot is
    enough to reach every rule in three, at half the cost of the default scope's two; the
    default scope at depth 3 is tests/test_explore.py's.)"""
    status, out, err = _run("explore", "--depth", "3", "--snapshots", "1")
    assert status == 0, err
    assert "every sequence of up to 3 operations over 2 worlds, 2 mirrors, 1 snapshot," in out
    assert "replies in {0, -EAGAIN, -ENOMEM}" in out
    assert "depth  new states  transitions  seconds" in out
    levels = [line.split() for line in out.splitlines() if line[:5].strip() in ("1", "2", "3")]
    assert [int(level[0]) for level in levels] == [1, 2, 3]
    assert "RNG-3  MUST" in out
    assert (
        "[hmm-conformance] conforms: no sequence of up to 3 operations in the scope breaks" in out
    )


def test_explore_scope_options_set_the_scope() -> None:
    """--mirrors and --snapshots are in the scope line, and a narrower scope has fewer
    transitions at the same depth."""
    _, wide, _ = _run("explore", "--depth", "1", "--mirrors", "3", "--snapshots", "3")
    assert "over 2 worlds, 3 mirrors, 3 snapshots, 4 pages" in wide
    _, default, _ = _run("explore", "--depth", "2")
    status, narrow, _ = _run("explore", "--depth", "2", "--mirrors", "1", "--snapshots", "1")
    assert status == 1  # depth 2 reaches too few rules either way
    assert "over 2 worlds, 1 mirror, 1 snapshot, 4 pages" in narrow

    def transitions(out: str) -> int:
        return sum(
            int(line.split()[2].replace(",", ""))
            for line in out.splitlines()
            if line[:5].strip() in ("1", "2")
        )

    assert transitions(default) > transitions(narrow) > 0


def test_explore_too_shallow_to_reach_every_rule_is_inconclusive() -> None:
    status, out, _ = _run("explore", "--depth", "1")
    assert status == 1
    assert "INCONCLUSIVE: no sequence of up to 1 operation in the scope breaks a rule, but" in out
    assert "raise --depth" in out


def test_explore_finds_a_shortest_case_saves_it_and_the_file_replays(tmp_path: Path) -> None:
    """The broken candidate fails in one step; the replay file reproduces it."""
    replays = tmp_path / "failures"
    status, out, _ = _run(
        "explore",
        "--adapter",
        "tests.candidates:ParentTree",
        "--depth",
        "4",
        "--replay-dir",
        str(replays),
    )
    assert status == 1
    assert "NOT CONFORMING: INV-5; a shortest counterexample in the scope has 1 operation (" in out
    [replay_file] = list(replays.iterdir())
    assert re.fullmatch(r"parent-tree-seed-explore-1ops-[0-9a-f]{8}\.json", replay_file.name)
    assert json.loads(replay_file.read_text())["depth"] == 4
    status, out, _ = _run("replay", str(replay_file), "--adapter", "tests.candidates:ParentTree")
    assert status == 1
    assert "FAIL INV-5:" in out


def _ticking_clock() -> Callable[[], float]:
    """A clock that moves on a second each time it is read."""
    ticks = itertools.count()
    return lambda: float(next(ticks))


def test_explore_stopped_by_its_time_limit_is_incomplete(monkeypatch: pytest.MonkeyPatch) -> None:
    """A limit of 80 readings runs out in depth 2; one of 1 before depth 1 took a step."""
    outputs = {}
    real_search = core_explore.search
    for limit in ("80", "1"):
        clock = _ticking_clock()
        explored = functools.partial(real_search, clock=clock)
        monkeypatch.setattr(core_explore, "search", explored)
        status, outputs[limit], _ = _run("explore", "--depth", "6", "--time-limit", limit)
        assert status == 1
    assert (
        "INCOMPLETE: the time limit of 80 s ran out at depth 2; every sequence of up to 1 "
        "operation in the scope holds" in outputs["80"]
    )
    assert "ran out at depth 1; no depth was completed" in outputs["1"]


def test_explore_of_a_candidate_that_is_not_deterministic_says_so() -> None:
    status, out, _ = _run("explore", "--adapter", "tests.candidates:Alternates")
    assert status == 1
    assert "NOT CONFORMING: the same 2 operations led to another state on replay" in out
    assert "the candidate is not deterministic" in out


def test_explore_finds_what_a_candidate_keeps_merged_as_every_sequence_does() -> None:
    """The candidate keeps a flag the model never sees: merged on its own state too, depth 3
    finds the three operations every sequence finds."""
    adapter = "tests.candidates:stale_busy_flag"
    for extra in ((), ("--every-sequence",)):
        status, out, _ = _run("explore", "--adapter", adapter, "--depth", "3", *extra)
        assert status == 1
        assert "a shortest counterexample in the scope has 3 operations" in out
        assert "note:" not in out


def test_explore_says_when_it_merged_on_the_model_alone() -> None:
    """A candidate that counts its cases is never in the same state twice: the search merges
    on the model's state and says why."""
    adapter = "tests.test_explore:CountsCases"
    status, out, _ = _run("explore", "--adapter", adapter, "--depth", "2")
    assert status == 1  # two operations reach too few rules
    assert "note: the candidate's own state after the same" in out
    assert "INCONCLUSIVE" in out


def test_explore_reports_a_candidate_that_fails_to_close() -> None:
    """The problem is reported at the end of the search, whatever it concluded (here: depth 1
    reaches too few rules)."""
    status, out, _ = _run("explore", "--adapter", "tests.candidates:BadClose", "--depth", "1")
    assert status == 1
    assert "INCONCLUSIVE" in out
    assert "close() raised" in out


def test_explore_of_a_candidate_that_cannot_begin_a_case_says_so(tmp_path: Path) -> None:
    status, out, _ = _run(
        "explore", "--adapter", "tests.candidates:CrashesAtBegin", "--replay-dir", str(tmp_path)
    )
    assert status == 1
    assert "NOT CONFORMING: CRASH in begin(), before any operation (2 states" in out
    assert "begin() crashed:" in out

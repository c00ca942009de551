"""The pytest plugin: --hmm-adapter adds one test that runs the whole suite."""

from __future__ import annotations

from dataclasses import replace
from xml.etree import ElementTree

import hypothesis.core
import pytest

import conformance._plugin as plugin
from conformance import _engine as engine
from conformance import reference, run, start
from conformance._alarm import StuckCall
from conformance._counting import BUDGETS, LIVE

ARGS = ("--hmm-budget=fast", "--hmm-seed=3", "-p", "no:cacheprovider")


def test_plugin_passes_a_conforming_candidate(pytester: pytest.Pytester) -> None:
    """With the reference as adapter, the added test passes next to the user's own tests."""
    pytester.makepyfile("def test_users_own(): pass")
    result = pytester.runpytest("--hmm-adapter=conformance:reference", *ARGS)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*2 passed*"])


def test_plugin_fails_a_broken_candidate_with_the_counterexample(pytester: pytest.Pytester) -> None:
    """A broken candidate fails the test with the rule, the matrix and the shrunk steps."""
    result = pytester.runpytest("--hmm-adapter=tests.candidates:ParentTree", *ARGS)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*replay file: *pytest-parent-tree-seed-seed3.json*",
            "*NOT CONFORMING: INV-5, shrunk to 1 operation; first failed at case * (seed 3)*",
            "*FAIL INV-5: start returned -EAGAIN*",
        ]
    )
    saved = pytester.path / "hmm-conformance-failures" / "pytest-parent-tree-seed-seed3.json"
    assert saved.exists()
    pytester.runpytest("--hmm-adapter=tests.candidates:ParentTree", *ARGS)
    again = saved.with_name("pytest-parent-tree-seed-seed3-2.json")
    assert again.read_text() == saved.read_text(), "a second run keeps the first file"


def test_plugin_reports_setup_errors_as_an_error(pytester: pytest.Pytester) -> None:
    """An adapter that does not load is an ERROR (the test's setup), with the one-line reason."""
    result = pytester.runpytest("--hmm-adapter=no_such_module_xyz:make", *ARGS)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*setup: adapter module 'no_such_module_xyz' does not import*"])
    result.stdout.no_fnmatch_line("*Traceback*")


def test_plugin_does_nothing_without_the_option(pytester: pytest.Pytester) -> None:
    """No --hmm-adapter, no extra test."""
    pytester.makepyfile("def test_users_own(): pass")
    pytester.runpytest(*ARGS).assert_outcomes(passed=1)


def test_plugin_reports_a_crash_in_the_engine_normally(pytester: pytest.Pytester) -> None:
    """A crash of the candidate is a failed test whose text is the report, not a traceback."""
    result = pytester.runpytest("--hmm-adapter=tests.candidates:Crashes", *ARGS)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*NOT CONFORMING: CRASH*"])


def test_plugin_reports_a_bad_close_even_when_the_candidate_conforms(
    pytester: pytest.Pytester,
) -> None:
    """A close() that raises is an error in the test's teardown, with the problem in the text."""
    result = pytester.runpytest("--hmm-adapter=tests.candidates:BadClose", *ARGS)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*close() raised OSError: device busy*"])


def test_plugin_shows_internal_errors_as_tracebacks(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error of the harness itself is shown as pytest shows any error."""

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("engine bug")

    monkeypatch.setattr(engine, "run", broken)
    result = pytester.runpytest("--hmm-adapter=conformance:reference", *ARGS)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*RuntimeError: engine bug*"])


def test_plugin_counts_its_test_when_collecting(pytester: pytest.Pytester) -> None:
    """--collect-only and the collected line count the conformance test with the user's."""
    pytester.makepyfile("def test_users_own(): pass")
    result = pytester.runpytest("--collect-only", "--hmm-adapter=conformance:reference", *ARGS)
    result.stdout.fnmatch_lines(
        ["collected 2 items", "*HmmConformanceItem run[[]conformance:reference[]]*"]
    )
    result = pytester.runpytest("--collect-only", "-q", "--hmm-adapter=conformance:reference")
    result.stdout.fnmatch_lines(["*2 tests collected*"])


def test_plugin_gives_junit_a_classname(pytester: pytest.Pytester) -> None:
    """JUnit XML names the conformance test's class, as it does every test's."""
    result = pytester.runpytest(
        "--hmm-adapter=conformance:reference", "--hmm-budget=fast", "--junitxml=out.xml"
    )
    result.assert_outcomes(passed=1)
    (case,) = ElementTree.parse(pytester.path / "out.xml").iter("testcase")
    assert case.get("classname") == "hmm-conformance"
    assert case.get("name") == "run[conformance:reference]"


def test_plugin_takes_hypothesis_seed_when_no_hmm_seed_is_given(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--hypothesis-seed is the run's seed; one that is not a number names --hmm-seed."""
    # Hypothesis's plugin forces that seed on the whole process (and so turns off every example
    # database); undo it when this test ends, as a process of its own would.
    monkeypatch.setattr(hypothesis.core, "global_force_seed", None)
    result = pytester.runpytest(
        "--hmm-adapter=tests.candidates:ParentTree", "--hmm-budget=ci", "--hypothesis-seed=3"
    )
    result.stdout.fnmatch_lines(["*NOT CONFORMING: INV-5, shrunk to 1 operation;*(seed 3)*"])
    result = pytester.runpytest("--hmm-adapter=conformance:reference", "--hypothesis-seed=abc")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*--hypothesis-seed='abc' is not a whole number*--hmm-seed*"])


def test_plugin_shows_statistics_when_asked(pytester: pytest.Pytester) -> None:
    """--hypothesis-show-statistics prints the run's generated and shrinking counts."""
    result = pytester.runpytest(
        "--hmm-adapter=conformance:reference",
        "--hmm-budget=fast",
        "--hmm-seed=1",
        "--hypothesis-show-statistics",
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*hmm-conformance statistics: hmm-conformance::run[[]conformance:reference[]]*",
            "*seed 1, budget fast: 100 cases generated, 0 run to shrink*first failure: none*",
        ]
    )


def test_plugin_refuses_a_core_profile_on_the_driver_side(pytester: pytest.Pytester) -> None:
    """--hmm-profile strict with --hmm-side driver is an error, as on the command line."""
    result = pytester.runpytest(
        "--hmm-adapter=conformance:reference_driver", "--hmm-side=driver", "--hmm-profile=strict"
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*--hmm-profile strict applies to the core side*"])


def test_plugin_saves_the_failure_so_far_when_interrupted(pytester: pytest.Pytester) -> None:
    """Ctrl-C while a failure is shrunk ends the session with 130, the case saved."""
    result = pytester.runpytest(
        "--hmm-adapter=tests.test_verdict_path:_InterruptedWhileShrinking", *ARGS
    )
    assert result.ret == 130
    result.stdout.fnmatch_lines(["*hmm-conformance: interrupted; the failure found so far is in *"])
    (saved,) = (pytester.path / "hmm-conformance-failures").glob("pytest-interrupted-*.json")
    assert saved.exists()


def test_the_plugin_watchdog_says_where_a_candidate_is_stuck(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The last resort writes past pytest's capture and saves the case under way."""
    said: list[str] = []
    session = pytest.Session.from_config(pytester.parseconfigure())
    item = plugin.HmmConformanceItem.from_parent(
        session, name="run[x]", adapter="conformance:reference"
    )
    monkeypatch.setattr(LIVE, "document", lambda: {"format": "hmm-conformance/case"})
    reporter = item.config.pluginmanager.get_plugin("terminalreporter")
    assert reporter is not None
    monkeypatch.setattr(reporter, "write_line", lambda line, **kw: said.append(line))
    item._stuck(
        StuckCall(what="snapshot", seconds=1.0, grace=5.0, thread="MainThread", stack="here\n")
    )
    assert "snapshot has not returned" in said[0]
    assert "the case under way is in" in said[0]
    # Without pytest's terminal (-p no:terminal) or its capture, it writes to stderr.
    monkeypatch.setattr(item.config.pluginmanager, "get_plugin", lambda name: None)
    monkeypatch.setattr(LIVE, "document", None)
    item._stuck(StuckCall(what="observe", seconds=1.0, grace=5.0, thread="T", stack="here\n"))
    assert "observe has not returned" in capsys.readouterr().err


def test_plugin_reports_an_inconclusive_run_without_a_replay_file(
    pytester: pytest.Pytester,
) -> None:
    """A run that never reached a rule fails with INCONCLUSIVE, and saves nothing."""
    session = pytest.Session.from_config(pytester.parseconfigure())
    item = plugin.HmmConformanceItem.from_parent(session, name="run[x]", adapter="x:y")
    candidate, handshake = start(reference)
    conforming = run(candidate, handshake, budget=BUDGETS["fast"], seed_value=1)
    with pytest.raises(plugin._ConformanceError) as failed:
        item._report(replace(conforming, unreached=("REG-3",)))
    assert "INCONCLUSIVE" in str(failed.value)
    assert "replay file" not in str(failed.value)
    assert not (pytester.path / "hmm-conformance-failures").exists()


def test_plugin_refuses_a_step_budget_of_zero(pytester: pytest.Pytester) -> None:
    """--hmm-step-timeout 0 is a setup error, and a run that never ran shows no statistics."""
    zero = pytester.runpytest(
        "--hmm-adapter=conformance:reference",
        "--hmm-step-timeout=0",
        "--hypothesis-show-statistics",
    )
    zero.assert_outcomes(errors=1)
    zero.stdout.fnmatch_lines(["*--hmm-step-timeout 0.0 must be more than 0 seconds*"])
    zero.stdout.no_fnmatch_line("*hmm-conformance statistics*")

"""The pytest plugin: --hmm-adapter adds one test that runs the whole suite."""

from __future__ import annotations

import pytest

import conformance._plugin as plugin

ARGS = ("--hmm-budget=ci", "--hmm-seed=3", "-p", "no:cacheprovider")


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
            "*NOT CONFORMING: INV-5, shrunk to 1 operation (seed 3)*",
            "*FAIL INV-5: start returned -EAGAIN*",
            "*replay file: *pytest-seed3.json*",
        ]
    )
    assert (pytester.path / "hmm-conformance-failures" / "pytest-seed3.json").exists()


def test_plugin_reports_setup_errors_as_a_failure(pytester: pytest.Pytester) -> None:
    """An adapter that does not load fails the test with the one-line reason."""
    result = pytester.runpytest("--hmm-adapter=no_such_module_xyz:make", *ARGS)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*setup: adapter module 'no_such_module_xyz' does not import*"])


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
    """A close() that raises fails the test, with the problem in the text."""
    result = pytester.runpytest("--hmm-adapter=tests.candidates:BadClose", *ARGS)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*conforms*", "*close() raised OSError: device busy*"])


def test_plugin_shows_internal_errors_as_tracebacks(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error of the harness itself is shown as pytest shows any error."""

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("engine bug")

    monkeypatch.setattr(plugin, "run", broken)
    result = pytester.runpytest("--hmm-adapter=conformance:reference", *ARGS)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*RuntimeError: engine bug*"])

"""The pytest plugin: ``pytest --hmm-adapter=MODULE:FACTORY`` runs the suite in a user's tests.

The option adds one test, ``hmm-conformance::run[MODULE:FACTORY]``, which runs the same engine
as ``hmm-conformance run``, with the same seed giving the same cases, and fails with the clause
matrix and the shrunk counterexample. The adapter may also be a program that speaks the wire
protocol, ``--hmm-adapter='exec:PROGRAM [ARGS...]'``, with ``--hmm-step-timeout``.
``--hmm-side=driver`` checks a mirror driver against the DRV rules instead
(docs/driver-side.md). Without the option the plugin does nothing.

Hypothesis's own options mean what a Hypothesis user expects: ``--hypothesis-seed`` is the
run's seed when ``--hmm-seed`` is not given, and ``--hypothesis-show-statistics`` prints the
run's counts. A candidate that cannot be started is an ERROR (the test's setup failed), a rule
broken is a FAILED.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, final

import pytest

from . import _engine as engine
from ._alarm import StuckCall, Watchdog, say_stuck
from ._connect import DEFAULT_STEP_TIMEOUT
from ._counting import BUDGETS, Budget, budget_from_env
from ._engine import RunInterrupted, RunResult
from ._errors import AdapterError, CandidateFault
from ._isolation import child_subreaper, interrupts
from ._outputs import (
    database_for,
    database_root,
    printable,
    save_replay,
    save_stuck,
)
from ._report import clause_matrix, describe_failure, headline, replay_document, rule_rows
from ._rules import Profile
from ._side import Side
from ._sides import SIDES, side_named
from ._verdicts import fault_verdict
from .cli._base import seed_number

__all__ = ["HmmConformanceCollector", "HmmConformanceItem"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hmm-conformance", "HMM mirror protocol conformance")
    group.addoption(
        "--hmm-adapter",
        metavar="MODULE:FACTORY",
        default=None,
        help="check this candidate HMM core against the hmm-conformance rules",
    )
    group.addoption(
        "--hmm-profile",
        choices=[p.value for p in Profile],
        default=None,
        help="rule profile: seed (default) or strict (core side only)",
    )
    group.addoption(
        "--hmm-budget",
        choices=sorted(BUDGETS),
        default=None,
        help="fast, ci (default, or $HMM_CONFORMANCE_BUDGET) or thorough",
    )
    group.addoption(
        "--hmm-seed",
        type=seed_number,
        default=None,
        help="random seed, to repeat a run (as hmm-conformance run --seed)",
    )
    group.addoption(
        "--hmm-side",
        choices=tuple(SIDES),
        default="core",
        help="core (default): the adapter is an HMM core; driver: a mirror driver (DRV rules)",
    )
    group.addoption(
        "--hmm-step-timeout",
        type=float,
        default=DEFAULT_STEP_TIMEOUT,
        metavar="SECONDS",
        help="how long one step may take before it is a HANG",
    )
    group.addoption(
        "--hmm-database",
        type=Path,
        default=None,
        metavar="DIR",
        help="keep failing cases here and try them first next time (default: "
        "$HMM_CONFORMANCE_DATABASE, or .hypothesis/hmm-conformance under the rootdir)",
    )
    group.addoption(
        "--hmm-no-database",
        action="store_true",
        help="neither try nor keep failing cases in the example database",
    )


class _ConformanceError(Exception):
    """The candidate broke a rule, or could not be started; the message is the report."""


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class _Options:
    """The plugin's options, read once and checked."""

    side: Side[Any, Any, Any, Any]
    profile: Profile
    budget: Budget
    seed: int | None
    step_timeout: float
    database: Path | None


def _options(config: pytest.Config) -> _Options:
    """The options, or :class:`AdapterError` naming the one that is wrong and the fix."""
    budget_name = config.getoption("--hmm-budget")
    budget = BUDGETS[budget_name] if budget_name else budget_from_env()
    side = side_named(config.getoption("--hmm-side"))
    profile_name = config.getoption("--hmm-profile")
    problem = side.profile_problem(Profile(profile_name or Profile.SEED.value))
    if problem is not None:
        raise AdapterError(f"--hmm-profile {profile_name} {problem}")
    seed = config.getoption("--hmm-seed")
    hypothesis_seed = config.getoption("hypothesis_seed", None)
    if seed is None and hypothesis_seed is not None:
        try:
            seed = seed_number(str(hypothesis_seed))
        except argparse.ArgumentTypeError:
            raise AdapterError(
                f"--hypothesis-seed={hypothesis_seed!r} is not a whole number; the conformance "
                "run takes one, or give it --hmm-seed"
            ) from None
    step_timeout = config.getoption("--hmm-step-timeout")
    if not step_timeout > 0:
        raise AdapterError(f"--hmm-step-timeout {step_timeout} must be more than 0 seconds")
    database = database_root(
        config.getoption("--hmm-database"),
        off=config.getoption("--hmm-no-database"),
        default=config.rootpath / ".hypothesis" / "hmm-conformance",
    )
    return _Options(
        side=side,
        profile=Profile(profile_name or Profile.SEED.value),
        budget=budget,
        seed=seed,
        step_timeout=step_timeout,
        database=database,
    )


#: The conformance tests of this session, for the terminal summary.
_ITEMS: pytest.StashKey[list[HmmConformanceItem]] = pytest.StashKey()


def _started_message(fault: CandidateFault) -> str:
    verdict = fault_verdict(fault)
    return f"the candidate failed before the first case: {verdict.status.name}: {verdict.detail}"


@final
class HmmConformanceItem(pytest.Item):
    """One test: the whole conformance run against one adapter.

    The candidate starts in :meth:`setup` (so an adapter that cannot be loaded is an ERROR),
    runs in :meth:`runtest`, and is closed in :meth:`teardown`.
    """

    def __init__(self, *, adapter: str, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.adapter = adapter
        self.options: _Options | None = None
        #: The started candidate and its handshake.
        self.started: tuple[Any, Any] | None = None
        #: The finished run, for ``--hypothesis-show-statistics``.
        self.result: RunResult[Any, Any, Any] | None = None

    def setup(self) -> None:
        problem: str | None = None
        try:
            self.options = options = _options(self.config)
            self.started = engine.open_session(
                options.side,
                self.adapter,
                step_timeout=options.step_timeout,
                log=None,
                watchdog=Watchdog(on_stuck=self._stuck),
                isolate=False,
            )
        except AdapterError as error:
            problem = f"setup: {error}"
        except CandidateFault as fault:
            problem = _started_message(fault)
        if problem is not None:  # outside the except: one message, not a chain of two
            pytest.fail(problem, pytrace=False)

    def runtest(self) -> None:
        # SIGINT and SIGTERM stop the run, not only pytest: the candidate's processes are
        # stopped in teardown, and the failure found so far is saved first. The plugin is the
        # reaper of what the candidate orphans only while the run goes on; it kills nothing
        # else (pytest's session may own other processes).
        with child_subreaper(), interrupts():
            try:
                result = self._run()
            except RunInterrupted as stop:
                saved = self._save(stop.result) if stop.result.failure is not None else None
                where = f"; the failure found so far is in {saved}" if saved else ""
                pytest.exit(f"hmm-conformance: {stop}{where}", returncode=stop.exit_status)
        self.result = result
        self._report(result)

    def _run(self) -> RunResult[Any, Any, Any]:
        options = self.options
        assert options is not None, "setup() comes first"
        assert self.started is not None, "setup() started the candidate"
        candidate, handshake = self.started
        return engine.run(
            options.side,
            candidate,
            handshake,
            profile=options.profile,
            budget=options.budget,
            seed_value=options.seed,
            database=database_for(
                options.database, options.side.name, handshake.name, options.profile.value
            ),
        )

    def _failures_dir(self) -> Path:
        return self.config.rootpath / "hmm-conformance-failures"

    def _save(self, result: RunResult[Any, Any, Any]) -> str:
        """Save the failing case; where it went, as the report says it."""
        stem = "pytest-" + result.side.run_stem(result.handshake, result.profile, result.seed)
        path, note = save_replay(self._failures_dir(), stem, replay_document(result))
        return str(path) if note is None else f"{path} ({note})"

    def _stuck(self, call: StuckCall) -> None:
        """The watchdog's last act before it ends the process: pytest captures stderr, so say
        where the candidate is stuck on the terminal pytest writes to, and save the case."""
        saved = save_stuck(call.describe().strip(), self._failures_dir())
        where = f"\nhmm-conformance: the case under way is in {saved[0]}" if saved else ""
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        capture = self.config.pluginmanager.get_plugin("capturemanager")
        if capture is not None:
            capture.suspend_global_capture(in_=True)
        if reporter is not None:
            reporter.write_line("\n" + call.describe().strip() + where, red=True, bold=True)
        else:
            say_stuck(call)

    def teardown(self) -> None:
        problem: str | None = None
        if self.started is not None and self.options is not None:
            problem = engine.close(self.options.side, self.started[0])
        self.started = None
        if problem is not None:
            pytest.fail(problem, pytrace=False)

    def _report(self, result: RunResult[Any, Any, Any]) -> None:
        """Pass, or fail with the headline, the clause matrix and the counterexample."""
        if result.conforms:
            return
        text = []
        if result.failure is not None:  # saved first: nothing after it can lose the case
            text.append(f"replay file: {self._save(result)}")
        text += [f"{headline(result)} (seed {result.seed})", clause_matrix(rule_rows(result))]
        if result.failure is not None:
            text.append(describe_failure(result.side, result.failure))
        raise _ConformanceError("\n".join(text))

    def repr_failure(
        self,
        excinfo: pytest.ExceptionInfo[BaseException],
        style: str | None = None,
    ) -> str:
        if isinstance(excinfo.value, _ConformanceError):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, self.name


@final
class HmmConformanceCollector(pytest.Collector):
    """Holds the conformance test, so that pytest collects and counts it as any other."""

    def __init__(self, *, adapter: str, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.adapter = adapter

    def collect(self) -> list[pytest.Item]:
        return [
            HmmConformanceItem.from_parent(
                self, name=f"run[{printable(self.adapter)}]", adapter=self.adapter
            )
        ]


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    adapter = config.getoption("--hmm-adapter")
    if not adapter:
        return
    collector = HmmConformanceCollector.from_parent(
        session, name="hmm-conformance", nodeid="hmm-conformance", adapter=adapter
    )
    # Collected through pytest's own hooks, so the count, --collect-only and the reports
    # (JUnit's classname among them) see it as they see every other test.
    report = collector.ihook.pytest_make_collect_report(collector=collector)
    collector.ihook.pytest_collectreport(report=report)
    ours = [item for item in report.result if isinstance(item, HmmConformanceItem)]
    config.stash[_ITEMS] = ours
    items.extend(ours)


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    """``--hypothesis-show-statistics``: each conformance run's counts, as Hypothesis shows its
    own tests' statistics."""
    if not config.getoption("hypothesis_show_statistics", False):
        return
    for item in config.stash.get(_ITEMS, []):
        result = item.result
        if result is None:
            continue
        terminalreporter.write_sep("=", f"hmm-conformance statistics: {item.nodeid}")
        first = f"case {result.first_failure}" if result.first_failure else "none"
        terminalreporter.write_line(
            f"  - seed {result.seed}, budget {result.budget.name}: {result.cases} cases "
            f"generated, {result.shrink_cases} run to shrink and replay a failure, "
            f"{result.tally.steps} steps; first failure: {first}"
        )

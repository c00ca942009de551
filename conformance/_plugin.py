"""The pytest plugin: ``pytest --hmm-adapter=MODULE:FACTORY`` runs the suite in a user's tests.

The option adds one test item, ``hmm-conformance[MODULE:FACTORY]``, which runs the same engine as
``hmm-conformance run`` and fails with the clause matrix and the shrunk counterexample. The
adapter may also be a program that speaks the wire protocol, ``--hmm-adapter='exec:PROGRAM
[ARGS...]'``, with ``--hmm-step-timeout``. ``--hmm-side=driver`` checks a mirror driver against
the DRV rules instead (docs/driver-side.md). Without the option the plugin does nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import final

import pytest

from ._adapter import AdapterError, CandidateFault
from ._driver_adapter import load_driver_factory
from ._driver_engine import DriverRunResult, close_driver, run_driver, start_driver
from ._driver_ops import DRIVER_SIDE
from ._engine import BUDGETS, Budget, RunResult, budget_from_env, close_quietly, run, start
from ._executor import fault_verdict
from ._model import Profile
from ._report import clause_matrix, describe_failure, headline, replay_document, rule_rows
from ._wire import DEFAULT_STEP_TIMEOUT, adapter_factory

__all__ = ["HmmConformanceItem"]


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
        default="seed",
        help="rule profile: seed (default) or strict",
    )
    group.addoption(
        "--hmm-budget",
        choices=sorted(BUDGETS),
        default=None,
        help="fast, ci (default, or $HMM_CONFORMANCE_BUDGET) or thorough",
    )
    group.addoption("--hmm-seed", type=int, default=None, help="random seed, to repeat a run")
    group.addoption(
        "--hmm-side",
        choices=("core", DRIVER_SIDE),
        default="core",
        help="core (default): the adapter is an HMM core; driver: a mirror driver (DRV rules)",
    )
    group.addoption(
        "--hmm-step-timeout",
        type=float,
        default=DEFAULT_STEP_TIMEOUT,
        metavar="SECONDS",
        help="exec: adapters only: how long one step may take before it is a HANG",
    )


class _ConformanceError(Exception):
    """The candidate broke a rule; the message is the report."""


@final
class HmmConformanceItem(pytest.Item):
    """One test: the whole conformance run against one adapter."""

    def __init__(self, *, adapter: str, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.adapter = adapter

    def runtest(self) -> None:
        config = self.config
        budget_name = config.getoption("--hmm-budget")
        try:
            budget = BUDGETS[budget_name] if budget_name else budget_from_env()
        except AdapterError as error:
            raise _ConformanceError(f"setup: {error}") from None
        if config.getoption("--hmm-side") == DRIVER_SIDE:
            self._report(*self._run_driver(budget))
            return
        try:
            factory = adapter_factory(
                self.adapter, step_timeout=config.getoption("--hmm-step-timeout")
            )
            candidate, handshake = start(factory)
        except AdapterError as error:
            raise _ConformanceError(f"setup: {error}") from None
        except CandidateFault as fault:
            verdict = fault_verdict(fault)
            raise _ConformanceError(
                f"the candidate failed before the first case: {verdict.status.name}: "
                f"{verdict.detail}"
            ) from None
        try:
            result = run(
                candidate,
                handshake,
                profile=Profile(config.getoption("--hmm-profile")),
                budget=budget,
                seed_value=config.getoption("--hmm-seed"),
            )
        finally:
            problem = close_quietly(candidate)
        self._report(result, problem)

    def _run_driver(self, budget: Budget) -> tuple[DriverRunResult, str | None]:
        config = self.config
        try:
            candidate, handshake = start_driver(load_driver_factory(self.adapter))
        except AdapterError as error:
            raise _ConformanceError(f"setup: {error}") from None
        try:
            result = run_driver(
                candidate, handshake, budget=budget, seed_value=config.getoption("--hmm-seed")
            )
        finally:
            problem = close_driver(candidate)
        return result, problem

    def _report(self, result: RunResult | DriverRunResult, problem: str | None) -> None:
        """Pass, or fail with the headline, the clause matrix and the counterexample."""
        config = self.config
        if result.conforms and problem is None:
            return
        text = [f"{headline(result)} (seed {result.seed})", clause_matrix(rule_rows(result))]
        if problem is not None:
            text.append(problem)
        if result.failure is not None:
            text.append(describe_failure(result.failure))
            path = config.rootpath / "hmm-conformance-failures" / f"pytest-seed{result.seed}.json"
            path.parent.mkdir(exist_ok=True)
            path.write_text(json.dumps(replay_document(result), indent=2) + "\n")
            text.append(f"replay file: {path}")
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


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    adapter = config.getoption("--hmm-adapter")
    if adapter:
        items.append(
            HmmConformanceItem.from_parent(
                session, name=f"hmm-conformance[{adapter}]", adapter=adapter
            )
        )

"""Shared test configuration: pytester, and a build cache for the C candidate."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance.ccore._build import BUILD_DIR_ENV

pytest_plugins = ["pytester"]


@pytest.fixture(scope="session")
def ccore_build_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A build cache for the C candidate, fresh for the session: each build compiles once."""
    directory = tmp_path_factory.mktemp("ccore-build")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(BUILD_DIR_ENV, str(directory))
        yield directory


@pytest.fixture(autouse=True)
def no_example_database(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs keep no failing cases between tests: each test's run starts from its seed alone."""
    monkeypatch.setenv("HMM_CONFORMANCE_DATABASE", "off")

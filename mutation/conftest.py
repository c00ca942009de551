"""Under mutmut, make sure the kill tests import the mutated copy of hmm_ref.

mutmut copies the sources into ``mutants/`` and runs the tests there; if ``hmm_ref`` were
imported from the project instead, no mutant could ever be killed, and every one would be
reported as a survivor. Outside mutmut this checks nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import hmm_ref


def pytest_sessionstart(session: pytest.Session) -> None:
    if "MUTANT_UNDER_TEST" in os.environ:
        where = Path(hmm_ref.__file__).resolve().parent.parent
        if where.name != "mutants":
            raise pytest.UsageError(f"hmm_ref was imported from {where}, not from mutants/")

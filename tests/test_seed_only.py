"""A seed's cases depend on the seed and the side only, not on which modules are loaded.

Hypothesis mixes the literals of every local module in ``sys.modules`` into a few percent of
its draws; the engine keeps them out (``conformance._driving.seed_only``), or the same seed
would draw other cases once a user's adapter, or any new module, is imported.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest
from hypothesis.internal.conjecture import providers

from conformance import Budget, Case, reference, run
from conformance._driving import seed_only

BUDGET = Budget(name="seed-only", examples=30, steps=15)


def _cases() -> list[Case]:
    candidate = reference()
    kept: list[Case] = []
    run(candidate, candidate.handshake(), budget=BUDGET, seed_value=5, keep=kept)
    return kept


def test_a_new_local_module_does_not_change_what_a_seed_draws(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _cases()
    module = tmp_path / "adapter_with_constants.py"
    literals = ", ".join(str(n) for n in range(3, 4096, 7))  # numbers a draw may take
    module.write_text(f"SPANS = ({literals})\nWORDS = ('mirror', 'range', 'gpu')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.import_module("adapter_with_constants")
    try:
        assert _cases() == before
    finally:
        sys.modules.pop("adapter_with_constants", None)


def test_a_hypothesis_without_local_constants_is_left_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Versions before 6.131 have no local constants to keep out: the block only runs."""
    monkeypatch.delattr(providers, "_get_local_constants")
    ran = []
    with seed_only():
        ran.append(True)
    assert ran == [True]
    assert not hasattr(providers, "_get_local_constants")

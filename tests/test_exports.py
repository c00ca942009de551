"""The public surface: every exported name imports, and public classes are closed."""

from __future__ import annotations

import enum

import pytest

import hmm_ref

#: Classes meant to be subclassed or implemented by users.
OPEN = {"MmuNotifier", "HmmMirrorOps", "HmmError", "UsageError", "WouldLivelockError"}


@pytest.mark.parametrize("name", hmm_ref.__all__)
def test_every_exported_name_exists(name: str) -> None:
    """Each name in __all__ is an attribute of the package, and none is private."""
    assert hasattr(hmm_ref, name)
    assert not name.startswith("_")


def test_all_lists_every_public_name() -> None:
    """Every public attribute that is not a module is listed in __all__."""
    public = {
        name
        for name, value in vars(hmm_ref).items()
        if not name.startswith("_") and type(value).__name__ != "module"
    }
    assert public == set(hmm_ref.__all__)


@pytest.mark.parametrize(
    "name", [n for n in hmm_ref.__all__ if isinstance(getattr(hmm_ref, n), type)]
)
def test_public_classes_are_final_unless_meant_for_subclassing(name: str) -> None:
    """Public classes are @final (enums are closed by having members), except the open ones."""
    cls = getattr(hmm_ref, name)
    closed = getattr(cls, "__final__", False) or issubclass(cls, enum.Enum)
    assert closed is (name not in OPEN)

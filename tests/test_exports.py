"""The public surface: every exported name imports, and public classes are closed."""

from __future__ import annotations

import enum
import importlib
import pkgutil
from types import ModuleType
from typing import Final

import pytest

import conformance
import conformance.driver

#: Every public module: the two packages and their submodules without a leading underscore.
PUBLIC_MODULES: Final = (
    "hmm_ref",
    "conformance",
    "conformance.ccore",
    "conformance.cdriver",
    "conformance.cli",
    "conformance.core",
    "conformance.driver",
    "conformance.oracle",
)

#: Modules that only gather the API from private ones: every public name they hold is exported.
#: (conformance.oracle is not one: its check functions are reached through CHECKS and by name
#: from docs/spec.md, and what it imports to write them is not its API.)
FACADES: Final = (
    "hmm_ref",
    "conformance",
    "conformance.ccore",
    "conformance.cdriver",
    "conformance.cli",
    "conformance.core",
    "conformance.driver",
)

#: Classes meant to be implemented, subclassed or raised by users, by module, with the reason:
#: "protocol" (implemented), "exception" (raised, caught, subclassed), "base" (of exported
#: classes), "extension" (subclassed by users). Every other exported class is @final or an enum.
OPEN: Final[dict[str, dict[str, str]]] = {
    "hmm_ref": {
        "HmmMirrorOps": "protocol",
        "FaultHandler": "protocol",
        "MmuNotifier": "extension",
        "HmmError": "exception",
        "UsageError": "exception",
        "WouldLivelockError": "exception",
    },
    "conformance.cli": {},
    "conformance.ccore": {},
    "conformance.cdriver": {},
    "conformance.core": {
        "Candidate": "protocol",
        "CpuView": "protocol",
        "Faults": "protocol",
        "AdapterError": "exception",
        "CandidateRejected": "exception",
        "CandidateWouldHang": "exception",
        "CaseFormatError": "exception",
        "Operation": "base",
    },
    "conformance": {
        "Candidate": "protocol",
        "CpuView": "protocol",
        "Faults": "protocol",
        "DriverCandidate": "protocol",
        "AdapterError": "exception",
        "CandidateRejected": "exception",
        "CandidateWouldHang": "exception",
        "CaseFormatError": "exception",
        "Operation": "base",
    },
    "conformance.driver": {"DriverCandidate": "protocol", "DriverOperation": "base"},
    "conformance.oracle": {},
}


def _module(name: str) -> ModuleType:
    return importlib.import_module(name)


def _exports(names: tuple[str, ...]) -> list[tuple[str, str]]:
    return [(module, name) for module in names for name in _module(module).__all__]


def _exported_classes() -> list[tuple[str, str]]:
    return [
        (module, name)
        for module, name in _exports(PUBLIC_MODULES)
        if isinstance(getattr(_module(module), name), type)
    ]


def test_every_public_module_is_guarded() -> None:
    """The public submodules of both packages are exactly the ones these tests check."""
    found = {"hmm_ref", "conformance"}
    for package in ("hmm_ref", "conformance"):
        found.update(
            f"{package}.{info.name}"
            for info in pkgutil.iter_modules(_module(package).__path__)
            if not info.name.startswith("_")
        )
    assert found == set(PUBLIC_MODULES)
    assert set(OPEN) == set(PUBLIC_MODULES)


@pytest.mark.parametrize("module", PUBLIC_MODULES)
def test_all_has_no_duplicates(module: str) -> None:
    """Each public module's __all__ names each export once."""
    exported = _module(module).__all__
    assert len(set(exported)) == len(exported)


@pytest.mark.parametrize(("module", "name"), _exports(PUBLIC_MODULES))
def test_every_exported_name_exists(module: str, name: str) -> None:
    """Each name in __all__ is an attribute of its module, and none is private."""
    assert hasattr(_module(module), name)
    assert not name.startswith("_")


@pytest.mark.parametrize("module", FACADES)
def test_all_lists_every_public_name(module: str) -> None:
    """Every public attribute of a facade that is not a module is listed in its __all__."""
    public = {
        name
        for name, value in vars(_module(module)).items()
        if not name.startswith("_") and not isinstance(value, ModuleType)
    }
    assert public == set(_module(module).__all__)


@pytest.mark.parametrize(
    ("side", "some"),
    [
        ("conformance.core", {"Candidate", "Handshake", "run", "explore", "reference", "Case"}),
        ("conformance.ccore", {"c_core", "c_core_wire", "c_core_with"}),
        ("conformance.cdriver", {"c_driver", "c_driver_rwsem", "c_driver_wire", "c_driver_with"}),
        ("conformance.driver", {"DriverCandidate", "DriverHandshake", "reference_driver"}),
    ],
)
def test_each_side_api_is_one_api(side: str, some: set[str]) -> None:
    """What conformance and a side's package both export is the very same object."""
    shared = set(conformance.__all__) & set(_module(side).__all__)
    assert some <= shared
    for name in shared:
        assert getattr(conformance, name) is getattr(_module(side), name)


@pytest.mark.parametrize(("module", "name"), _exported_classes())
def test_public_classes_are_final_unless_meant_for_subclassing(module: str, name: str) -> None:
    """Public classes are @final (enums are closed by having members), except the open ones."""
    cls = getattr(_module(module), name)
    closed = getattr(cls, "__final__", False) or issubclass(cls, enum.Enum)
    assert closed is (name not in OPEN[module])


@pytest.mark.parametrize(
    ("module", "name", "reason"),
    [(module, name, reason) for module, names in OPEN.items() for name, reason in names.items()],
)
def test_open_classes_are_open_for_their_reason(module: str, name: str, reason: str) -> None:
    """Each open class is what its reason says: a protocol, an exception, or a base of exports."""
    cls = getattr(_module(module), name)
    protocol = getattr(cls, "_is_protocol", False)
    # By the MRO, since issubclass refuses protocols that are not runtime-checkable.
    subclassed = any(
        other is not cls and cls in other.__mro__
        for other in (getattr(_module(m), n) for m, n in _exported_classes())
    )
    kinds = {
        "protocol": protocol,
        "exception": issubclass(cls, BaseException),
        "base": subclassed,
        "extension": not protocol and not issubclass(cls, BaseException),
    }
    assert kinds[reason]

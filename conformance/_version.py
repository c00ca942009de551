"""The installed package's version, which handshakes, hellos and reports name."""

from __future__ import annotations

import importlib.metadata

__all__ = ["package_version"]


def package_version() -> str:
    """The version of hmm-conformance that is installed (``pyproject.toml``'s)."""
    return importlib.metadata.version("hmm-conformance")

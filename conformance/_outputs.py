"""Where a run writes: checked before it starts, and a failing case saved whatever happens.

A run can take minutes; a report path that cannot be written must not be found out after it,
with the counterexample lost in a traceback. So every output path is probed before the run (a
real write, since root may write where permission bits say it may not, and a read-only mount
says no to everyone), the replay file is written before any report, and it never replaces a
file already there: a second run of the same candidate and seed gets a new name.

Names that come from a candidate (its handshake's name) are shown and used in file names only
after :func:`printable` and :func:`file_stem`: a name with terminal escape sequences must not
drive the user's terminal, and a file name must not start with ``-`` or run past the file
system's limit.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Final

from ._counting import LIVE
from ._errors import AdapterError

__all__ = [
    "DATABASE_ENV",
    "DEFAULT_DATABASE",
    "check_directory",
    "check_file",
    "database_for",
    "database_root",
    "file_stem",
    "printable",
    "save_replay",
    "save_stuck",
]

#: Where failing cases are kept for the next run, relative to the working directory.
DEFAULT_DATABASE: Final = Path(".hypothesis") / "hmm-conformance"
#: The example database's directory; ``off`` (or empty) for none.
DATABASE_ENV: Final = "HMM_CONFORMANCE_DATABASE"

#: The longest file-name stem taken from a candidate's name (the file system allows 255 bytes).
STEM_LIMIT: Final = 64
#: The longest candidate-supplied text shown on one line.
SHOWN_LIMIT: Final = 120


def printable(text: str, limit: int = SHOWN_LIMIT) -> str:
    """``text`` safe to print: control characters (escape sequences among them) written as
    ``\\xNN``, and cut to ``limit`` characters with an ellipsis."""
    shown = "".join(
        char if char.isprintable() else f"\\x{ord(char):02x}" if ord(char) < 256 else "?"
        for char in text
    )
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def file_stem(name: str) -> str:
    """A safe file-name stem made from a candidate's name: letters, digits, ``_.-`` only, not
    starting with ``-`` or ``.``, at most :data:`STEM_LIMIT` characters."""
    kept = "".join(
        char if char.isascii() and (char.isalnum() or char in "_.-") else "-" for char in name
    )
    stem = "-".join(part for part in kept.split("-") if part).lstrip(".-")
    return stem[:STEM_LIMIT].rstrip(".-") or "candidate"


def _why(error: OSError) -> str:
    return error.strerror or str(error)


def check_file(path: Path, what: str) -> None:
    """:class:`AdapterError` unless ``path`` can be written as a file (it is left as it was)."""
    if path.is_dir():
        raise AdapterError(f"{what}: {str(path)!r} is a directory; give a file name")
    existed = path.exists()
    try:
        with path.open("a"):
            pass
    except OSError as error:
        raise AdapterError(
            f"{what}: cannot write {str(path)!r}: {_why(error)}; give a path in a directory "
            "that exists and can be written"
        ) from None
    if not existed:
        path.unlink()


def check_directory(path: Path, what: str) -> None:
    """:class:`AdapterError` unless ``path`` is, or can be made, a directory to write in (a
    directory it makes for the probe is removed again)."""
    made: list[Path] = []
    try:
        for folder in reversed((path, *path.parents)):
            if not folder.exists():
                folder.mkdir()
                made.append(folder)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as error:
        raise AdapterError(
            f"{what}: cannot write in {str(path)!r}: {_why(error)}; give a directory that "
            "exists or can be made, and can be written"
        ) from None
    finally:
        for folder in reversed(made):
            with contextlib.suppress(OSError):
                folder.rmdir()


def _write_new(directory: Path, stem: str, text: str) -> Path:
    """Write ``text`` to ``directory/stem.json``, or ``stem-2.json``, ... : never over a file."""
    directory.mkdir(parents=True, exist_ok=True)
    number = 1
    while True:
        path = directory / (f"{stem}.json" if number == 1 else f"{stem}-{number}.json")
        try:
            with path.open("x") as file:
                file.write(text)
        except FileExistsError:
            number += 1
            continue
        return path


def save_replay(directory: Path, stem: str, document: dict[str, Any]) -> tuple[Path, str | None]:
    """Save a failing case; the path it went to, and a note if that is not ``directory``.

    The directory was checked before the run, but the file system may have changed since:
    then the case goes to a new temporary directory rather than being lost.
    """
    text = json.dumps(document, indent=2) + "\n"
    try:
        return _write_new(directory, stem, text), None
    except OSError as error:
        fallback = Path(tempfile.mkdtemp(prefix="hmm-conformance-"))
        note = f"could not write in {str(directory)!r} ({_why(error)}); saved in {fallback}"
        return _write_new(fallback, stem, text), note


def database_root(
    given: Path | None, *, off: bool, default: Path = DEFAULT_DATABASE
) -> Path | None:
    """The example database's directory, checked: ``given``, else ``$HMM_CONFORMANCE_DATABASE``
    (``off`` for none), else ``default``; None when ``off`` (``--no-database``)."""
    if off:
        return None
    root = given
    if root is None:
        configured = os.environ.get(DATABASE_ENV)
        if configured is not None and configured.strip().lower() in ("", "off"):
            return None
        root = Path(configured) if configured is not None else default
    check_directory(root, "the example database")
    return root


def database_for(root: Path | None, side: str, name: str, profile: str) -> Path | None:
    """Where one candidate's failing cases are kept, for one side and profile: each has its
    own, so a run tries only its own saved failures first."""
    return None if root is None else root / f"{side}-{file_stem(name)}-{profile}"


def save_stuck(detail: str, directory: Path) -> tuple[Path, str | None] | None:
    """Save the case under way with a HANG verdict (the watchdog's last act before the
    process ends); None before the first case. The same naming and fields as any replay file.
    """
    if LIVE.document is None:
        return None
    document = {
        **LIVE.document(),
        **LIVE.header,
        "failure": [{"rule": None, "status": "hang", "detail": detail}],
    }
    return save_replay(directory, f"{LIVE.stem}-stuck", document)

"""Replay files: every file a run writes reads back as its case, and every bad file is one line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from conformance import BUDGETS, AdapterError, Profile, explore, reference, run, start
from conformance._case_file import MAX_DEPTH, MAX_FILE_BYTES, CaseFile, read_case_file
from conformance._report import replay_document
from conformance.core._catalogue import EntriesNotCleared, ParentTree
from conformance.core._ops import Case
from conformance.driver._catalogue import EagainWhenBlockable
from conformance.driver._ops import DriverCase
from conformance.driver._side import run_driver, start_driver

from .driver_candidates import CrashesInBegin

CASE: dict[str, Any] = {
    "format": "hmm-conformance/case",
    "version": 1,
    "world": {"vmas": [{"start": 65536, "end": 98304}], "ptes": []},
    "ops": [{"op": "register", "mirror": 0, "with_ops": True}, {"op": "release"}],
}
DRIVER_CASE: dict[str, Any] = {
    "format": "hmm-conformance/case",
    "version": 1,
    "side": "driver",
    "world": {"vmas": [{"start": 65536, "end": 98304}], "ptes": []},
    "encoding": {"flags": [1, 2, 4], "values": [16, 8, 32], "pfn_shift": 12},
    "ops": [{"op": "start_fault", "fault": 0, "start": 65536, "end": 69632}],
}


def _file(tmp_path: Path, content: str | bytes | dict[str, Any]) -> Path:
    path = tmp_path / "case.json"
    if isinstance(content, dict):
        path.write_text(json.dumps(content, indent=2) + "\n")
    elif isinstance(content, str):
        path.write_text(content)
    else:
        path.write_bytes(content)
    return path


def _refusal(path: Path) -> str:
    with pytest.raises(AdapterError) as caught:
        read_case_file(path)
    message = str(caught.value)
    assert "\n" not in message
    return message


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Path, Case | DriverCase, str]]:
    """Replay files as failing runs write them: random and exhaustive core runs in both
    profiles, a driver run, and a driver that crashes before its first step."""
    directory = tmp_path_factory.mktemp("replays")
    documents: list[tuple[dict[str, Any], Case | DriverCase, str]] = []
    candidate, handshake = start(ParentTree)
    result = run(candidate, handshake, budget=BUDGETS["fast"], seed_value=7)
    assert result.failure is not None
    documents.append((replay_document(result), result.failure.case, "core"))
    for factory, profile in ((EntriesNotCleared, Profile.SEED), (reference, Profile.STRICT)):
        candidate, handshake = start(factory)
        explored = explore(candidate, handshake, depth=2, profile=profile)
        assert explored.failure is not None
        document = replay_document(explored, depth=explored.depth)
        documents.append((document, explored.failure.case, "core"))
    for driver in (EagainWhenBlockable, CrashesInBegin):
        driver_candidate, driver_handshake = start_driver(driver)
        driven = run_driver(
            driver_candidate, driver_handshake, budget=BUDGETS["fast"], seed_value=7
        )
        assert driven.failure is not None
        documents.append((replay_document(driven), driven.failure.case, "driver"))
    files = []
    for index, (document, case, side) in enumerate(documents):
        path = directory / f"replay{index}.json"
        path.write_text(json.dumps(document, indent=2) + "\n")
        files.append((path, case, side))
    return files


def test_every_replay_file_a_run_writes_reads_back_as_its_case(
    written: list[tuple[Path, Case | DriverCase, str]],
) -> None:
    """Core, strict, exhaustive and driver replay files, header fields and all, decode to the
    failing case, with its side and the profile the run used."""
    profiles = []
    for path, case, side in written:
        loaded = read_case_file(path)
        assert loaded == CaseFile(case=case, side=side, profile=loaded.profile)
        profiles.append(loaded.profile)
    assert profiles == [Profile.SEED, Profile.SEED, Profile.STRICT, Profile.SEED, Profile.SEED]
    assert {side for _, _, side in written} == {"core", "driver"}


def test_a_hand_written_case_records_no_profile_and_may_start_with_a_bom(tmp_path: Path) -> None:
    """A case without header fields has no profile; a UTF-8 byte-order mark is skipped."""
    loaded = read_case_file(_file(tmp_path, b"\xef\xbb\xbf" + json.dumps(CASE).encode()))
    assert loaded.profile is None
    assert loaded.side == "core"
    assert isinstance(loaded.case, Case)
    assert len(loaded.case.ops) == 2
    driver = read_case_file(_file(tmp_path, DRIVER_CASE))
    assert (driver.side, driver.profile, isinstance(driver.case, DriverCase)) == (
        "driver",
        None,
        True,
    )


def test_brackets_inside_strings_do_not_count_as_nesting(tmp_path: Path) -> None:
    """A header string full of brackets and escaped quotes is text, however many there are."""
    text = '[{"\\"' * 200
    loaded = read_case_file(_file(tmp_path, {**CASE, "candidate": {"name": text}}))
    assert isinstance(loaded.case, Case)


def test_a_file_that_cannot_be_read_says_why(tmp_path: Path) -> None:
    """A missing file and a directory are refused with the system's reason."""
    missing = tmp_path / "missing.json"
    assert (
        _refusal(missing) == f"cannot read replay file {str(missing)!r}: No such file or directory"
    )
    assert _refusal(tmp_path) == f"cannot read replay file {str(tmp_path)!r}: Is a directory"


def test_a_file_too_large_is_refused_before_it_is_read_whole(tmp_path: Path) -> None:
    """More than MAX_FILE_BYTES is refused, not read into memory and parsed."""
    path = _file(tmp_path, b" " * (MAX_FILE_BYTES + 1))
    assert "is larger than 16 MiB; a replay file is the few KiB" in _refusal(path)


def test_a_file_that_is_not_utf8_names_the_byte_and_its_offset(tmp_path: Path) -> None:
    """Latin-1 text is refused at its first non-UTF-8 byte, not with a UnicodeDecodeError."""
    path = _file(tmp_path, b'{"format": "caf\xe9"}')
    assert _refusal(path) == (
        f"replay file {str(path)!r} is not UTF-8: byte 0xe9 at offset 15 (invalid continuation "
        "byte); save it as UTF-8"
    )


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("[" * 100_000 + "]" * 100_000, f"line 1, column {MAX_DEPTH + 1}"),
        ('{"format": "x",\n "ops": ' + "[" * 5000, f"line 2, column {MAX_DEPTH + 8}"),
        ("{" + '"a": {' * 3000 + "}" * 3001, f"line 1, column {6 * MAX_DEPTH + 1}"),
    ],
)
def test_deep_nesting_is_refused_before_the_decoder_recurses(
    tmp_path: Path, text: str, where: str
) -> None:
    """Nesting past MAX_DEPTH, even thousands of levels, is one line, not a RecursionError."""
    message = _refusal(_file(tmp_path, text))
    assert (
        f"nests deeper than {MAX_DEPTH} levels ({where}); replay files nest five levels deep"
        in message
    )


def test_nesting_up_to_the_limit_reaches_the_decoder(tmp_path: Path) -> None:
    """MAX_DEPTH levels are JSON like any other; an unterminated string ends the scan."""
    array = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert "holds a JSON array, not an object" in _refusal(_file(tmp_path, array))
    unterminated = '{"a": "' + "[" * 100
    assert "is not JSON: Unterminated string" in _refusal(_file(tmp_path, unterminated))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "is not JSON: Expecting property name enclosed in double quotes at line 1"),
        ("", "is not JSON: Expecting value at line 1, column 1"),
        ('{"version": ' + "9" * 5000 + "}", "holds a number of more than"),
        ("[1, 2]", "holds a JSON array, not an object; a replay file is the object"),
        ('"case"', "holds a JSON string, not an object"),
        ("null", "holds a JSON null, not an object"),
        ("true", "holds a JSON boolean, not an object"),
        ("4.5", "holds a JSON number, not an object"),
        (
            '{"format": "hmm-conformance/case", "format": "other"}',
            "an object names the field 'format' twice; give each field once",
        ),
    ],
)
def test_a_file_that_is_not_a_json_object_is_refused(
    tmp_path: Path, text: str, message: str
) -> None:
    """Broken JSON, an integer too long to convert, another JSON value, or a repeated field."""
    assert sys.get_int_max_str_digits() < 5000
    assert message in _refusal(_file(tmp_path, text))


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({**CASE, "profile": "lenient"}, "case.profile: unknown profile 'lenient'; one of seed, "),
        ({**CASE, "profile": 1}, "case.profile: unknown profile 1; one of seed, strict"),
        (
            {**DRIVER_CASE, "profile": "strict"},
            "case.profile: 'strict' applies to the core side; drivers run on the seed's core",
        ),
        ({**CASE, "side": "gpu"}, "case.side: 'gpu' is not 'core' or 'driver'"),
        (
            {
                **CASE,
                "ops": [
                    {
                        "op": "snapshot",
                        "range": 0,
                        "vma": 77,
                        "start": 65536,
                        "end": 69632,
                        "encoding": DRIVER_CASE["encoding"],
                    }
                ],
            },
            "case.ops[0].vma: 77 is not a vma of the world; give 0 to 0",
        ),
        (
            {**CASE, "world": {"vmas": [], "ptes": []}},
            "case.world.vmas: no vma; a world has at least one",
        ),
        (
            {**CASE, "ops": [{"op": "release", "after": 1}]},
            "case.ops[0]: unknown field 'after'; a release operation has op",
        ),
        (
            {**DRIVER_CASE, "ops": [{"op": "exit", "status": 0}]},
            "case.ops[0]: unknown field 'status'; an exit operation has op",
        ),
        ({**CASE, "seeds": 3}, "case: unknown field 'seeds'; a core case has format, version"),
    ],
)
def test_a_case_the_engine_cannot_run_is_the_files_fault(
    tmp_path: Path, document: dict[str, Any], message: str
) -> None:
    """An unknown profile or side, or a case the decoders refuse, is an AdapterError naming the
    file and the field, before any candidate starts."""
    path = _file(tmp_path, document)
    refusal = _refusal(path)
    assert refusal.startswith(f"replay file {str(path)!r}: case")
    assert message in refusal

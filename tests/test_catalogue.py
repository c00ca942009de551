"""The catalogue: every known-bad core is caught against one of its rules; the base conforms."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import pytest

import conformance
import conformance._cli as cli
from conformance import (
    BUDGETS,
    Candidate,
    CandidateRejected,
    Case,
    ExploreResult,
    Failure,
    Handshake,
    run,
    start,
)
from conformance._catalogue import CATALOGUE, Entry, SeedCore

SEED = 1


def test_the_base_core_conforms() -> None:
    """Without a bug, the catalogue's core behaves like the seed and conforms."""
    candidate, handshake = start(SeedCore)
    assert run(candidate, handshake, budget=BUDGETS["ci"], seed_value=SEED).conforms
    with pytest.raises(CandidateRejected, match="no range r7"):
        SeedCore().observe(7)


@pytest.mark.parametrize("entry", CATALOGUE, ids=lambda entry: entry.name)
def test_every_known_bad_core_is_caught_against_its_rule(entry: Entry) -> None:
    """Each entry fails one of the rules it is listed under, shrunk to its shortest length."""
    candidate, handshake = start(entry.make)
    result = run(candidate, handshake, budget=BUDGETS["ci"], seed_value=SEED)
    assert result.failure is not None, f"{entry.name} was not caught"
    broken = {verdict.rule for verdict in result.failure.verdicts}
    assert broken & entry.rules, f"{entry.name} broke {broken}, not {set(entry.rules)}"
    assert len(result.failure.case.ops) == entry.shortest
    assert result.first_failure is not None


def test_catalogue_has_the_cores_the_issue_lists_with_their_origins() -> None:
    """At least the 16 listed kinds, named uniquely, each with an origin."""
    names = [entry.name for entry in CATALOGUE]
    assert len(names) == len(set(names)) >= 16
    assert all(entry.origin and entry.rules for entry in CATALOGUE)


def test_catalogue_command_reports_caught_and_missed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command prints a row per entry; an entry not caught makes it exit 1."""
    bug = CATALOGUE[0]
    not_a_bug = Entry(
        name="not-a-bug", make=SeedCore, rules=frozenset({"INV-5"}), shortest=1, origin="none"
    )
    monkeypatch.setattr(cli, "CATALOGUE", (bug,))
    out = io.StringIO()
    assert cli.main(["catalogue", "--side", "core", "--budget", "fast"], stdout=out) == 0
    [row] = [line.split() for line in out.getvalue().splitlines() if line.startswith("parent")]
    # entry, caught, rule, cases to the first failure, shrunk, shortest, origin...
    assert row[:3] == ["parent-tree", "yes", "INV-5"]
    assert int(row[3]) >= 1
    assert row[4] == row[5] == "1"
    assert "every one of the 1 known-bad cores was caught" in out.getvalue()
    monkeypatch.setattr(cli, "CATALOGUE", (bug, not_a_bug))
    out = io.StringIO()
    assert cli.main(["catalogue", "--side", "core", "--budget", "fast"], stdout=out) == 1
    [row] = [line.split() for line in out.getvalue().splitlines() if line.startswith("not-a")]
    assert row[:6] == ["not-a-bug", "NO", "-", "-", "-", "none"]
    assert "1 known-bad cores were NOT caught" in out.getvalue()


def test_the_catalogue_document_lists_every_entry() -> None:
    """docs/catalogue.md has a row per entry with its rules and shortest length, in order."""
    text = (Path(__file__).resolve().parent.parent / "docs" / "catalogue.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert [row.split("`")[1] for row in rows] == [entry.name for entry in CATALOGUE]
    for row, entry in zip(rows, CATALOGUE, strict=True):
        assert row.split("|")[2].strip() == ", ".join(sorted(entry.rules))
        assert row.split("|")[3].strip() == str(entry.shortest)


def test_catalogue_command_flags_a_case_shrunk_past_the_shortest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """If the exhaustive engine finds a shorter case than the shrinker kept, the command says
    so (the ratio target is 1.00). Here the search is handed a shorter case."""
    bug = CATALOGUE[1]  # mirrors-at-end: shrunk to 2 operations
    real_explore = conformance.explore

    def shorter(candidate: Candidate, handshake: Handshake, *, depth: int) -> ExploreResult:
        result = real_explore(candidate, handshake, depth=depth)
        assert result.failure is not None
        case = result.failure.case
        trimmed = Failure(case=Case(world=case.world, ops=case.ops[:1]), steps=())
        return replace(result, failure=trimmed)

    monkeypatch.setattr(cli, "CATALOGUE", (bug,))
    monkeypatch.setattr(cli, "explore", shorter)
    out = io.StringIO()
    assert cli.main(["catalogue", "--side", "core", "--budget", "fast"], stdout=out) == 0
    assert "1 counterexamples were shrunk to more than the shortest length" in out.getvalue()

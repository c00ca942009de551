"""The kill tests: the conformance suite, pointed at the reference, as mutmut's test.

A mutant of ``hmm_ref``'s core is killed when the suite notices: a random run no longer
conforms, the exhaustive engine finds a counterexample, the strict profile's documented
defects change, or the reference stops behaving exactly like the seed where a rule leaves
latitude (the seed's own choice is the reference's whole point). ``python3 tasks.py mutate``
runs them; docs/mutation.md has the score and the triage of every survivor.

Nothing is cached between tests or at import time: mutmut forks its workers after importing,
so only what a test computes itself sees the mutant.
"""

from __future__ import annotations

import pytest

from conformance import BUDGETS, Profile, explore, reference, run, start
from conformance._generation import ENCODINGS
from hmm_ref import PfnEncoding

#: Fixed seeds: a mutant's verdict must not depend on the run.
SEEDS = (1, 2, 3)


def test_the_suites_encodings_are_accepted() -> None:
    """The encodings the generators use are built at import time; build them again here."""
    for encoding in ENCODINGS:
        rebuilt = PfnEncoding(
            flags=encoding.flags, values=encoding.values, pfn_shift=encoding.pfn_shift
        )
        assert rebuilt == encoding


@pytest.mark.parametrize("seed", SEEDS)
def test_a_random_run_conforms_and_takes_the_seeds_choices(seed: int) -> None:
    candidate, handshake = start(reference)
    result = run(candidate, handshake, budget=BUDGETS["ci"], seed_value=seed)
    assert result.failure is None, [v.describe() for v in result.failure.verdicts]
    assert result.conforms, (result.flaky, result.unreached)
    assert not result.tally.latitudes, result.tally.latitudes


def test_every_sequence_of_three_holds_and_takes_the_seeds_choices() -> None:
    candidate, handshake = start(reference)
    result = explore(candidate, handshake, depth=3)
    assert result.failure is None, [v.describe() for v in result.failure.verdicts]
    assert result.conforms
    assert not result.tally.latitudes, result.tally.latitudes


def test_the_strict_profile_finds_exactly_the_documented_defect() -> None:
    """Under strict, the reference fails REL-3 (snapshot, release), and nothing shorter."""
    candidate, handshake = start(reference)
    result = explore(candidate, handshake, depth=3, profile=Profile.STRICT)
    assert result.failure is not None
    assert [op.name for op in result.failure.case.ops] == ["snapshot", "release"]
    assert {v.rule for v in result.failure.verdicts} == {"REL-3"}

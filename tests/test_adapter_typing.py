"""Every shipped adapter satisfies the Candidate protocol, statically (checked by mypy --strict).

The assignments below are the test: mypy rejects the module if a shipped adapter drifts from
the protocol. The negative control must be rejected too: ``warn_unused_ignores`` turns its
ignore into an error the day mypy stops rejecting it.
"""

from __future__ import annotations

import pytest

from conformance import Candidate, CandidateRejected, ReferenceCandidate, reference
from examples.exact_core import ExactCore, make


class NotACandidate:
    """Has a handshake and nothing else."""

    def handshake(self) -> None:
        return None


def test_shipped_adapters_are_candidates() -> None:
    """The reference and the example core are candidates, statically and at run time."""
    shipped: list[Candidate] = [ReferenceCandidate(), reference(), ExactCore(), make()]
    assert all(callable(getattr(candidate, "range_done", None)) for candidate in shipped)


def test_negative_control_is_rejected_statically() -> None:
    """A class missing the protocol's methods cannot be assigned to Candidate."""
    rejected: Candidate = NotACandidate()  # type: ignore[assignment]
    assert not hasattr(rejected, "range_done")


def test_the_example_core_refuses_unknown_ranges_and_closes() -> None:
    """The example core's own edges: an unknown range is refused; close forgets everything."""
    core = make()
    with pytest.raises(CandidateRejected, match="no range 9"):
        core.observe(9)
    core.close()
    assert core.ranges == {}

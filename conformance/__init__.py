"""conformance: check implementations of the HMM mirror protocol against the rules in docs/spec.md.

The engine (operations, adapters, oracle, state machine, reports) arrives with the engine issue;
today this package holds the command-line entry point and the walk-through of the seed's
scenarios (``hmm-conformance demo``).
"""

from ._cli import main as main

__all__ = ["main"]

"""The exhaustive engine over the catalogue: the merged search against ``--every-sequence``.

The merged search continues only the first sequence to reach each state (the model's and the
candidate's own); ``--every-sequence`` continues every sequence. For each catalogue entry, the
blind set's included, both search to the depth where the merged one finds the bug (4 if it
finds none): the lengths say whether merging lost a shorter counterexample, and the times
what merging saves.

    python -m benchmarks.searches    # this section alone, over the whole catalogue
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

from conformance import Candidate, explore, start
from conformance._known_bad import KnownBad
from conformance.core._catalogue import CATALOGUE

__all__ = ["DEPTH", "compare", "main", "markdown"]

#: How deep the merged search looks for an entry's bug.
DEPTH = 4


def _search(entry: KnownBad[Candidate], depth: int, *, merge: bool) -> dict[str, Any]:
    candidate, handshake = start(entry.make)
    began = time.perf_counter()
    result = explore(candidate, handshake, depth=depth, merge=merge)
    seconds = time.perf_counter() - began
    failure = result.failure
    return {
        "length": len(failure.case.ops) if failure else None,
        "rules": sorted({v.rule or v.status.name for v in failure.verdicts}) if failure else [],
        "transitions": result.transitions,
        "seconds": seconds,
    }


def compare(entry: KnownBad[Candidate]) -> dict[str, Any]:
    """One entry searched both ways, to the depth of the merged search's counterexample."""
    merged = _search(entry, DEPTH, merge=True)
    every = _search(entry, merged["length"] or DEPTH, merge=False)
    return {"entry": entry.name, "merged": merged, "every": every}


def markdown(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The section of docs/benchmarks.md: a summary, and a row for each entry where the two
    differ or the search took a second or more."""
    same = [r for r in rows if r["merged"]["length"] == r["every"]["length"]]
    found = [r for r in same if r["merged"]["length"] is not None]
    merged_s = sum(r["merged"]["seconds"] for r in rows)
    every_s = sum(r["every"]["seconds"] for r in rows)
    ratios = [
        r["every"]["transitions"] / r["merged"]["transitions"]
        for r in rows
        if r["merged"]["transitions"]
    ]
    lines = [
        "",
        "## The exhaustive engine over the catalogue: merged against every sequence",
        "",
        f"Every catalogue entry (the blind set's included) searched to depth {DEPTH} by the "
        "merged search, then by `--every-sequence` to the depth the merged search found it at.",
        f"Same shortest length both ways: {len(same)} of {len(rows)} entries ({len(found)} found "
        f"within depth {DEPTH}). Time in all: merged {merged_s:.1f} s, every sequence "
        f"{every_s:.1f} s ({every_s / merged_s:.2f}x); transitions, every sequence over merged: "
        f"median {statistics.median(ratios):.2f}x, at most {max(ratios):.2f}x.",
        "",
        "| entry | merged: length | transitions | seconds | every sequence: length | "
        "transitions | seconds |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        m, e = r["merged"], r["every"]
        if r in same and max(m["seconds"], e["seconds"]) < 1.0:
            continue
        lines.append(
            f"| `{r['entry']}` | {m['length'] or '-'} | {m['transitions']:,} | "
            f"{m['seconds']:.1f} | {e['length'] or '-'} | {e['transitions']:,} | "
            f"{e['seconds']:.1f} |"
        )
    lines.append("")
    lines.append("(Rows: the entries that took a second or more either way, or differ.)")
    return lines


def main() -> int:
    """Print the section for the whole catalogue (``tasks.py bench`` writes it with the rest)."""
    print("\n".join(markdown([compare(entry) for entry in CATALOGUE])))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What the core's generation reaches: the rare states behind each rule's checks, and every rule
in force over many seeds at the smallest budget (``benchmarks/run.py`` calls these).

- Features: one run of the reference at the CI budget, its cases replayed to count, for every
  rule, how many of its checks were made in each rare state (``conformance/core/_features.py``),
  and in how many cases each state came up at all.
- Reach: the reference at the ``fast`` budget over many seeds: how many runs left a rule
  unreached (INCONCLUSIVE), and how many reached a rule only with an aimed case.
"""

from __future__ import annotations

from typing import Any

from conformance import BUDGETS, Budget, reference, run, start
from conformance.core._features import FEATURES, feature_names, feature_rates
from conformance.core._ops import Case


def features(seed: int, budget: Budget) -> dict[str, Any]:
    kept: list[Case] = []
    result = run(*start(reference), budget=budget, seed_value=seed, keep=kept)
    rates = feature_rates(kept[: result.cases], reference)
    return {
        "seed": seed,
        "cases": rates.cases,
        "cases_with": {name: rates.cases_with[name] for name in feature_names()},
        "rules": {
            rule: {
                "checks": rates.checks[rule],
                **{name: rates.within[rule][name] for name in feature_names()},
            }
            for rule in sorted(rates.checks)
        },
    }


def reach(seeds: int) -> dict[str, Any]:
    runs = []
    for seed in range(1, seeds + 1):
        result = run(*start(reference), budget=BUDGETS["fast"], seed_value=seed)
        runs.append(
            {"seed": seed, "unreached": list(result.unreached), "aimed": list(result.aimed)}
        )
    return {
        "budget": "fast",
        "seeds": seeds,
        "inconclusive": sum(bool(r["unreached"]) for r in runs),
        "aimed": [r for r in runs if r["aimed"]],
    }


def markdown(results: dict[str, Any]) -> list[str]:
    found, reached = results["features"], results["reach"]
    names = feature_names()
    lines = [
        "",
        "## Generation: the rare states",
        "",
        f"Seed {found['seed']}'s {found['cases']} cases against the reference, replayed to count, "
        "for each rule, how many of its checks were made in each state a bug can hide in; the "
        "first row is in how many cases the state came up at all. Each case draws its shape "
        "first (swarm testing): how many mirrors, the oldest unregistered or not, a snapshot "
        "before the first mirror, windows left open, the encodings its snapshots use, what its "
        "faults ask and meet, the kinds of entry its world holds, spans its snapshots share, "
        "faults aimed at seams, and whether it dwells on what the rules refuse.",
        "",
        *(f"- `{feature.name}`: {feature.meaning}" for feature in FEATURES),
        "",
        "| rule | checks | " + " | ".join(f"`{name}`" for name in names) + " |",
        "|---|---:|" + "---:|" * len(names),
        "| (cases) | "
        + f"{found['cases']} | "
        + " | ".join(str(found["cases_with"][name]) for name in names)
        + " |",
    ]
    for rule, row in found["rules"].items():
        lines.append(
            f"| {rule} | {row['checks']} | " + " | ".join(str(row[name]) for name in names) + " |"
        )
    aimed = ", ".join(f"seed {r['seed']} ({', '.join(r['aimed'])})" for r in reached["aimed"])
    lines += [
        "",
        f"Every rule reached: the reference at budget `{reached['budget']}` over seeds 1 to "
        f"{reached['seeds']}: {reached['inconclusive']} runs inconclusive; "
        + (
            f"rules reached only by an aimed case in {aimed}."
            if aimed
            else "no run needed an aimed case."
        ),
    ]
    return lines

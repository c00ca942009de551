"""The benchmark script runs end to end and writes what docs/benchmarks.md is made from.

Speeds are measured, never asserted: this checks the counts the script reports (cases, steps,
detections, lengths) and that the report is built from them.
"""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.run import main


def test_a_quick_benchmark_run_writes_json_and_markdown(
    tmp_path: Path, ccore_build_dir: Path
) -> None:
    results, doc = tmp_path / "results.json", tmp_path / "benchmarks.md"
    assert main(["--quick", "--json", str(results), "--markdown", str(doc)]) == 0
    data = json.loads(results.read_text())
    overhead = data["overhead"]
    assert overhead["steps"] > overhead["cases"] > 0
    assert set(overhead["steps_per_second"]) == {"state_machine", "executor_replay", "plain_loop"}
    assert abs(sum(overhead["time_share"].values()) - 1) < 1e-9
    for row in data["strength"]:
        assert row["caught"] == row["seeds"] == 1
        assert row["shortest"] == row["recorded_shortest"]
        assert row["worst_ratio"] == 1.0
    for row in data["searches"]:
        # the first two entries are 2 operations long either way, and every sequence of 2
        # is at least as many transitions as the merged search's
        assert row["merged"]["length"] == row["every"]["length"] == 2
        assert row["every"]["transitions"] >= row["merged"]["transitions"] > 0
    assert [row["entry"] for row in data["searches"]] == [row["entry"] for row in data["strength"]]
    exhaustive = data["exhaustive"]
    assert exhaustive["transitions"] == sum(lv["transitions"] for lv in exhaustive["levels"])
    assert exhaustive["completed_depth"] <= len(exhaustive["levels"])
    adapters = data["adapters"]
    assert [row["candidate"] for row in adapters["rows"]] == [
        "hmm_ref",
        "hmm_ref",
        "hmm-c",
        "hmm-c",
        "hmm-c",
    ]
    trips = [row["round_trips_per_step"] for row in adapters["rows"]]
    assert trips[0] == trips[2] == 0  # in process
    assert 1 <= trips[3] < trips[4]  # observe-ahead saves round trips over 1.0
    assert adapters["steps"] > adapters["cases"] > 0
    assert all(row["steps"] == adapters["steps"] for row in adapters["rows"])
    assert set(adapters["c_wire_cost_per_step"]) == set(overhead["steps_per_second"])
    assert set(adapters["c_wire_1_0_cost_per_step"]) == set(overhead["steps_per_second"])
    for row in data["driver_strength"]:
        assert row["caught"] == row["seeds"] == 1
        assert row["shortest"] == row["recorded_shortest"]
        assert row["worst_ratio"] == 1.0
    speed = data["driver_speed"]
    assert speed["steps"] > speed["cases"] > 0
    assert [row["candidate"] for row in speed["rows"]] == [
        "hmm_ref.ReferenceDriver (mutex)",
        "hmm_ref.ReferenceDriver (mutex)",
        "dmirror-c",
        "dmirror-c",
    ]
    assert all(row["steps"] == speed["steps"] for row in speed["rows"])
    assert set(speed["c_wire_cost_per_step"]) == {"state_machine", "executor_replay"}
    assert speed["explore"]["completed_depth"] >= 1
    text = doc.read_text()
    assert "| `sleeps-when-not-blockable` | 1/1 |" in text
    assert "## The driver side" in text
    assert "| `parent-tree` | 1/1 |" in text
    assert "Same shortest length both ways: 2 of 2 entries (2 found within depth 4)." in text
    assert f"Python {data['machine']['python']}" in text
    assert "| C candidate, C wire server |" in text
    assert "| C candidate, C wire server, protocol 1.0 |" in text
    assert "| C driver, C wire server |" in text

#!/usr/bin/env python3
"""Set up the project's virtual environment and run its jobs; standard library only.

    python3 tasks.py run    # set up, then the main job
    python3 tasks.py test   # set up, then every gate: mypy --strict, ruff, pytest + coverage
    python3 tasks.py bench  # set up, then the benchmarks (docs/benchmarks.md), about 50 minutes
    python3 tasks.py mutate # set up, then mutation testing (docs/mutation.md), about an hour

The environment lives in ``.venv/`` (override with HMM_VENV) and is reinstalled only when
``pyproject.toml`` changes.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("HMM_VENV", ROOT / ".venv"))
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / "python"

#: Branch coverage gates, in percent. They only go up.
COVERAGE_TOTAL = 100
COVERAGE_HMM_REF = 100


def _say(message: str) -> None:
    print(f"[tasks] {message}", flush=True)


def _call(command: Sequence[str | Path]) -> int:
    _say(" ".join(str(part) for part in command))
    return subprocess.call([str(part) for part in command], cwd=ROOT)


def ensure_environment() -> None:
    """Create ``.venv`` and install the project with its dev extras, if not done already."""
    if sys.version_info < (3, 11):  # noqa: UP036 - this script may run on any python3
        sys.exit(f"[tasks] Python 3.11 or newer is needed; this is {sys.version.split()[0]}")
    stamp = VENV / ".hmm-conformance-installed"
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == wanted and PYTHON.exists():
        return
    if not PYTHON.exists():
        _say(f"creating {VENV}")
        venv.EnvBuilder(with_pip=True).create(VENV)
    status = _call(
        [PYTHON, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-e", ".[dev]"]
    )
    if status:
        sys.exit(f"[tasks] installing the project failed (pip exit {status}); see above")
    stamp.write_text(wanted)


def run() -> int:
    """The main job: the conformance run against the reference, at the CI budget."""
    return _call([BIN / "hmm-conformance", "run"])


def bench() -> int:
    """The benchmarks: write benchmarks/results.json and docs/benchmarks.md."""
    return _call([PYTHON, "-m", "benchmarks.run"])


def mutate() -> int:
    """Mutation testing of hmm_ref's core, the conformance suite as the test ([tool.mutmut])."""
    status = _call(
        [
            PYTHON,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-e",
            ".[mutation]",
        ]
    )
    if status:
        return status
    mutmut = BIN / "mutmut"
    status = _call([mutmut, "run", "--max-children", str(os.cpu_count() or 1)])
    if status:
        return status
    _call([mutmut, "export-cicd-stats"])
    return _call([mutmut, "results"])


def test() -> int:
    """Every gate, in order; stops at the first that fails."""
    gates: list[list[str | Path]] = [
        [PYTHON, "-m", "mypy", "--strict"],
        [PYTHON, "-m", "ruff", "check", "."],
        [PYTHON, "-m", "ruff", "format", "--check", "."],
        # Coverage starts before pytest, so the pytest plugin's early imports are measured;
        # the tests run on every core, each worker measured, then the data is combined.
        [PYTHON, "-m", "coverage", "erase"],
        [PYTHON, "-m", "coverage", "run", "-m", "pytest", "-n", "auto", "--dist", "worksteal"],
        [PYTHON, "-m", "coverage", "combine", "--quiet"],
        [PYTHON, "-m", "coverage", "report", f"--fail-under={COVERAGE_TOTAL}"],
        [
            PYTHON,
            "-m",
            "coverage",
            "report",
            "--include=hmm_ref/*",
            f"--fail-under={COVERAGE_HMM_REF}",
        ],
    ]
    for gate in gates:
        status = _call(gate)
        if status:
            _say(f"FAILED: {' '.join(str(part) for part in gate[2:])} (exit {status})")
            return status
    _say("all gates passed")
    return 0


def main(argv: Sequence[str]) -> int:
    jobs = {"run": run, "test": test, "bench": bench, "mutate": mutate}
    if len(argv) != 1 or argv[0] not in jobs:
        print(__doc__, file=sys.stderr)
        return 2
    ensure_environment()
    return jobs[argv[0]]()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

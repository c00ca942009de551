"""The code in the README runs, and the adapter guide's snippets are the example's real code."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), re.S)


def test_readme_example_runs() -> None:
    """The README's Python example executes, assertions included."""
    [block] = _python_blocks(ROOT / "README.md")
    exec(compile(block, "README.md", "exec"), {})


def test_adapter_guide_quotes_the_example_verbatim() -> None:
    """Every snippet in docs/writing-an-adapter.md appears, line for line, in the example file."""
    example = (ROOT / "examples" / "exact_core.py").read_text()
    blocks = _python_blocks(ROOT / "docs" / "writing-an-adapter.md")
    assert len(blocks) >= 3
    for block in blocks:
        for line in block.strip("\n").splitlines():
            assert line in example, f"not in examples/exact_core.py: {line!r}"

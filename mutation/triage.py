"""The triage of every mutant that mutmut did not kill: why each one does not count, or does.

Run it from the directory where ``mutmut run`` ran (for ``python3 tasks.py mutate``, the
project root)::

    .venv/bin/python mutation/triage.py             # scores, then every group and mutant
    .venv/bin/python mutation/triage.py --counts    # scores and checks only (fast)
    .venv/bin/python mutation/triage.py --markdown  # the same as Markdown, for docs/mutation.md

It reads mutmut's results from ``mutants/hmm_ref/*.meta`` and, except with ``--counts``, each
mutant's change from ``mutmut show`` (the ``mutmut`` next to this Python, or on ``PATH``; one
call per mutant, a few minutes in all). It uses only the standard library and does not import
mutmut.

It exits 1, naming the mutants, if the table below no longer matches the results: a mutant that
was not killed is in no group, a mutant in a group is not in the results or was killed, a
mutant is in two groups, or the run did not finish. mutmut numbers the mutants of a function in
source order, so editing a function renumbers its mutants; that usually shows up here as a
grouped mutant that is now killed next to one that is not grouped. Re-read the changes this
script prints before moving a name from one group to another.

The categories, with respect to what a candidate can show through the conformance protocol:

(a) equivalent: no candidate-visible behaviour changes on any path the protocol can take;
(b) out of reach: the change is on a path the harness never takes (caller-side misuse it never
    commits, allocation-failure injection, the strict profile only, functions it never calls),
    or in text it never reads (refusal messages, the kernel log);
(c) a gap: the suite should notice the change and does not;
(t) timed out: mutmut stopped the tests at its CPU-time limit; the change is caught.
"""

from __future__ import annotations

import argparse
import enum
import json
import keyword
import re
import shutil
import subprocess
import sys
import textwrap
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Final, final

#: mutmut's results for the mutated package, relative to the directory it ran in.
META_DIR: Final = Path("mutants/hmm_ref")


@final
class Category(enum.Enum):
    """Why a mutant that was not killed does not count against the suite (or does)."""

    EQUIVALENT = "a"
    OUT_OF_REACH = "b"
    GAP = "c"
    TIMED_OUT = "t"

    @property
    def title(self) -> str:
        return _CATEGORY_TITLES[self]


_CATEGORY_TITLES: Final = {
    Category.EQUIVALENT: "equivalent: nothing a candidate can show through the protocol changes",
    Category.OUT_OF_REACH: "out of reach: a path the harness never takes, or text it never reads",
    Category.GAP: "gaps: the suite should notice these and does not",
    Category.TIMED_OUT: "timed out: caught by mutmut's CPU-time limit",
}


@final
@dataclass(frozen=True, slots=True)
class Group:
    """Mutants that are not killed for one reason."""

    category: Category
    title: str
    reason: str
    mutants: tuple[str, ...]


def mutants(module: str, function: str, *numbers: int | range) -> tuple[str, ...]:
    """mutmut's names for mutants of ``function`` (``Class.method`` for a method) in ``module``.

    ``mutants("_hmm", "HmmMirror.__init__", 3)`` is
    ``("hmm_ref._hmm.xǁHmmMirrorǁ__init____mutmut_3",)``.
    """
    mangled = "xǁ" + "ǁ".join(function.split(".")) if "." in function else "x_" + function
    flat: list[int] = []
    for number in numbers:
        flat.extend([number] if isinstance(number, int) else number)
    return tuple(f"hmm_ref.{module}.{mangled}__mutmut_{n}" for n in flat)


def _group(category: Category, title: str, reason: str, *parts: tuple[str, ...]) -> Group:
    return Group(category, title, " ".join(reason.split()), tuple(n for p in parts for n in p))


A, B, C, T = Category.EQUIVALENT, Category.OUT_OF_REACH, Category.GAP, Category.TIMED_OUT

# ---------------------------------------------------------------------------------------------
# The table. Each reason says what the mutants change and why the suite cannot, or need not,
# see it; docs/mutation.md prints it (``--markdown``).

GROUPS: Final[tuple[Group, ...]] = (
    # -- (a) equivalent ------------------------------------------------------------------------
    _group(
        A,
        "`None` for `False` in `HmmMirror._linked`",
        """`_linked` is only ever tested for truth (`if mirror._linked`), where None and False
        behave alike; `HmmMirror.registered`, which would show the None, is not read by the
        adapter.""",
        mutants("_hmm", "HmmMirror.__init__", 3),
        mutants("_hmm", "hmm_mirror_unregister", 7),
        mutants("_hmm", "_hmm_release", 4),
    ),
    _group(
        A,
        "`Hmm.freed` is never read",
        """`freed` is written when the last unregister frees the hmm and read only by
        `Hmm.__repr__`; no code path of the core, no rule and no adapter call reads it.""",
        mutants("_hmm", "Hmm.__init__", 7, 8),
        mutants("_hmm", "hmm_mirror_unregister", 25, 26),
    ),
    _group(
        A,
        "messages of assertions that cannot fail",
        """Python builds an assertion's message only when its condition fails, and these
        conditions are invariants of the core: a registered HMM notifier always finds
        `mm.hmm`, a mirror on the list always has ops, and the last unregister finds `mm.hmm`
        pointing at its own hmm.""",
        mutants("_hmm", "hmm_mirror_unregister", 22, 23),
        mutants("_hmm", "_hmm_invalidate_range", 12, 13),
        mutants("_hmm", "_HmmNotifier.release", range(3, 6)),
        mutants("_hmm", "_HmmNotifier.invalidate_range_start", range(3, 6)),
        mutants("_hmm", "_HmmNotifier.invalidate_range_end", range(3, 6)),
    ),
    _group(
        A,
        "results and flags that no caller reads",
        """`_HmmNotifier.invalidate_range_end` discards the result of `_hmm_invalidate_range`
        and passes `device=False` (None is just as false), so the mirror pass never runs and
        the update's `blockable` is never read. `_hmm_register` discards the result of
        `mmu_notifier_register`.""",
        mutants("_hmm", "_hmm_invalidate_range", 6),
        mutants("_hmm", "_HmmNotifier.invalidate_range_end", 7, 15, 19),
        mutants("_mmu_notifier", "mmu_notifier_register", 28),
    ),
    _group(
        A,
        "order of `hmm->ranges`",
        """A new range goes second instead of first. The order of the list only decides the
        order of the range pass, which calls nothing between two ranges; range_done removes a
        range by identity, and the adapter never reads `Hmm.ranges`.""",
        mutants("_hmm", "hmm_vma_get_pfns", 69),
    ),
    _group(
        A,
        "first value of `HmmRange._done`",
        """Every range the adapter hands to `hmm_vma_range_done` went through
        `hmm_vma_get_pfns`, which sets `_done = False` before anything reads it (a range_done
        on a range never snapshotted is refused by the adapter itself).""",
        mutants("_range", "HmmRange.__init__", 43, 44),
    ),
    _group(
        A,
        "first contents of a range where the core writes nothing",
        """The entries start as 1 instead of 0, or `valid` as None or True instead of False.
        This shows only where the core writes nothing: a snapshot refused for its bounds (no
        entry written), any failed snapshot (`valid` never set), and the entries after a
        poisoned page. In the kernel these are the driver's own fields, which the seed does
        not write on those paths, so the rules leave them unspecified: RNG-2 checks the
        result, the registration and the SPECIAL or NONE fill, RNG-1 and RNG-8 skip entries
        the walk does not write, and `valid` means something only for a registered range. Any
        value conforms. The defaults (zeros, False) belong to hmm_ref's Python API, which only
        a unit test can pin.""",
        mutants("_range", "HmmRange.__init__", 28, 40, 41),
    ),
    # -- (b) out of reach: paths the harness never takes -----------------------------------
    _group(
        B,
        "re-entry from a mirror callback (mirrors_sem deadlock)",
        """`Hmm._check_not_in_mirror_pass` raises only when a mirror callback registers or
        unregisters a mirror during a mirror pass, and `_mirror_passes` goes above 1 only when
        a callback starts another invalidation. The harness's mirrors only record the call
        and answer, so the count is 0 at every check and 1 during a pass: the raise, the
        names passed to it, and `= 1` for `+= 1` make no difference.""",
        mutants("_hmm", "Hmm._check_not_in_mirror_pass", range(1, 11)),
        mutants("_hmm", "hmm_mirror_register", range(34, 37)),
        mutants("_hmm", "hmm_mirror_unregister", range(3, 6)),
        mutants("_hmm", "_hmm_invalidate_range", 7),
    ),
    _group(
        B,
        "`_hmm_register` on an exited mm without an hmm",
        """The raise needs a register, snapshot or range_done after release on an mm whose hmm
        was freed. Register and snapshot after release are caller violations
        (`Model.caller_violation`) that neither engine generates. A range_done after release
        finds the hmm still there, because `Model.may_unregister` refuses the unregister that
        would free it while a range is registered. The `function` argument is used only in
        this message, so the names passed by the three callers are never read either.""",
        mutants("_hmm", "_hmm_register", range(2, 13)),
        mutants("_hmm", "hmm_mirror_register", 26, 29, 30),
        mutants("_hmm", "hmm_vma_get_pfns", 49, 52, 53),
        mutants("_hmm", "hmm_vma_range_done", 37, 40, 41),
    ),
    _group(
        B,
        "allocation failure of a `struct hmm` (-ENOMEM)",
        """Reached only after `MmStruct.inject_alloc_failures`, which no protocol operation
        calls: the protocol has no fault injection.""",
        mutants("_hmm", "hmm_mirror_register", 32, 33),
        mutants("_hmm", "hmm_vma_get_pfns", 55),
        mutants("_hmm", "hmm_vma_range_done", range(43, 46)),
    ),
    _group(
        B,
        "`hmm_mirror_register` after release",
        """Registering on an exited mm is a caller violation (`Model.caller_violation`); no
        engine generates it.""",
        mutants("_hmm", "hmm_mirror_register", range(3, 13)),
    ),
    _group(
        B,
        "`hmm_mirror_register` of a mirror already registered",
        """The adapter wraps every RegisterMirror in a new `HmmMirror`, and the engines never
        reuse a mirror number, so no mirror is registered twice.""",
        mutants("_hmm", "hmm_mirror_register", range(13, 24)),
    ),
    _group(
        B,
        "the REG-5 livelock (strict profile only)",
        """Registering on an hmm poisoned by an earlier unregister is generated only in the
        strict profile (`Model.may_register`). The kill tests run the strict profile only in
        the exhaustive engine, which stops at the REL-3 failure after two operations, and
        whose scope has two mirrors; this needs four operations and three mirrors (register,
        register, unregister, register). The change is to the text of `WouldLivelockError`
        in any case, which the adapter passes on as free text.""",
        mutants("_hmm", "hmm_mirror_register", range(38, 51)),
    ),
    _group(
        B,
        "a reversed snapshot",
        """A Snapshot with end before start cannot be built (`span` in conformance/_case.py
        raises CaseFormatError), so this refusal never runs.""",
        mutants("_hmm", "hmm_vma_get_pfns", range(13, 23)),
    ),
    _group(
        B,
        "a snapshot of a range already registered",
        """The adapter builds a new `HmmRange` for every Snapshot, so the range passed to
        `hmm_vma_get_pfns` is never registered already.""",
        mutants("_hmm", "hmm_vma_get_pfns", range(24, 36)),
    ),
    _group(
        B,
        "a snapshot after release",
        """A snapshot on an exited mm is a caller violation (`Model.caller_violation`); no
        engine generates it.""",
        mutants("_hmm", "hmm_vma_get_pfns", range(37, 47)),
    ),
    _group(
        B,
        "`HmmMirror._linked` left True by unregister",
        """After unregister the mirror is off the list, so no invalidation or release reaches
        it, and `_hmm` is None, so a second unregister returns at once. The stale flag shows
        only through `HmmMirror.registered` or by registering the same `HmmMirror` again;
        the adapter does neither.""",
        mutants("_hmm", "hmm_mirror_unregister", 8),
    ),
    _group(
        B,
        "mirror ops without a release op",
        """Without a default, `getattr(mirror.ops, "release")` fails only for ops that lack
        `release`. The ops the core sees are always the harness's, which have one.""",
        mutants("_hmm", "_hmm_release", 11),
    ),
    _group(
        B,
        "`HmmRange` arguments the adapter never passes",
        """Operations are page aligned by construction (`span` in conformance/_case.py), and
        the adapter never passes `pfns=`, so the alignment check never fails and the branch
        for a caller's array never runs.""",
        mutants("_range", "HmmRange.__init__", 2, range(5, 13), range(29, 40)),
    ),
    _group(
        B,
        "bounds checks of the notifier chain",
        """InvalidateStart and InvalidateEnd spans are page aligned and non-empty by
        construction (`span` in conformance/_case.py), so `_check_bounds` never raises; its
        `function` argument is used only in the messages.""",
        mutants("_mmu_notifier", "_check_bounds", 2, range(5, 18)),
        mutants("_mmu_notifier", "mmu_notifier_invalidate_range_start", 2, 8, 9),
        mutants("_mmu_notifier", "mmu_notifier_invalidate_range_end", 1, 7, 8),
    ),
    _group(
        B,
        "`mmu_notifier_register` misuse",
        """The only notifier ever registered is HMM's, by `_hmm_register`, which creates a
        new notifier with each new hmm and runs only on a live mm (register and snapshot after
        release are never generated, see above), so neither refusal runs.""",
        mutants("_mmu_notifier", "mmu_notifier_register", range(1, 11), range(13, 23)),
    ),
    _group(
        B,
        "one notifier on the chain",
        """Both changes need a second notifier on the mm: the duplicate check then looks for
        any other notifier, and the new one goes second. The reference adapter's mm has no
        notifier but HMM's, and HMM registers one only when the mm has no hmm, when the list
        is empty; no protocol operation adds another notifier.""",
        mutants("_mmu_notifier", "mmu_notifier_register", 12, 27),
    ),
    _group(
        B,
        "an end without a start (END-3)",
        """The engines end only windows that a successful start opened (END-3 is the caller's
        rule, kept by `Model.caller_violation`), so `_close_window` always succeeds and this
        refusal never runs.""",
        mutants("_mmu_notifier", "mmu_notifier_invalidate_range_end", range(14, 24)),
    ),
    _group(
        B,
        "`mm.exiting` not set by release",
        """The flag is read only by the refusals of register and snapshot after release, which
        are never generated, and by `_hmm_register` on an mm without an hmm, which is out of
        reach after release (see above).""",
        mutants("_mmu_notifier", "mmu_notifier_release", 3, 4),
    ),
    _group(
        B,
        "the default of `blockable`",
        """The adapter always passes `blockable` to `mmu_notifier_invalidate_range_start`;
        the default serves direct callers of hmm_ref.""",
        mutants("_mmu_notifier", "mmu_notifier_invalidate_range_start", 1),
    ),
    _group(
        B,
        "functions a run never calls (mutmut: no tests)",
        """mutmut found no test that calls these, so it ran none (exit code 33). The oracle
        works out entries itself and never decodes one (`PfnEncoding.decode`); nothing prints
        a range (`HmmRange.__repr__`); HMM's notifier overrides the default ops of
        `MmuNotifier` and is the only notifier; and the adapter calls
        `mmu_notifier_invalidate_range_start` with `blockable` rather than the
        `_nonblock` wrapper.""",
        mutants("_range", "PfnEncoding.decode", range(1, 6)),
        mutants("_range", "HmmRange.__repr__", range(1, 9)),
        mutants("_mmu_notifier", "MmuNotifier.invalidate_range_start", 1),
        mutants("_mmu_notifier", "MmuNotifier.describe", 1),
        mutants("_mmu_notifier", "mmu_notifier_invalidate_range_start_nonblock", range(1, 10)),
    ),
    _group(
        B,
        "validation of encodings the suite never builds",
        """A `PfnEncoding` is built by the harness (the generators' three `ENCODINGS`, or a
        replay file), never by a candidate, so these checks guard the harness's own input.
        The kill tests build the three encodings again at test time, which kills every
        mutant that refuses one of them. These 32 accept an invalid encoding (a `pfn_shift`
        of 64: 12, 13; `and` for `or`: 20; the NONE check disabled: 35), refuse a valid one
        that none of the three is (a `pfn_shift` of 0: 10, 11; an entry of 2**64 - 1: 27), or
        change only how a refusal is reported (the rest). An encoding with a `pfn_shift` of 0
        or an entry of 2**64 - 1 in `ENCODINGS` would kill 10, 11 and 27.""",
        mutants(
            "_range",
            "PfnEncoding.__post_init__",
            range(1, 9),
            range(10, 15),
            range(16, 21),
            27,
            28,
            range(31, 36),
            range(37, 44),
        ),
    ),
    # -- (b) out of reach: text the harness never reads ------------------------------------
    _group(
        B,
        "text of the range_done refusals (RNG-9)",
        """range_done on an empty range, twice, or after a failed snapshot is generated, and
        the refusal itself is checked (the mutants that replace its UsageCode with None are
        killed). The adapter passes the refusal on as `CandidateRejected(str(error))`, and
        RNG-9 checks only that the call was refused: the function name and message are free
        text.""",
        mutants(
            "_hmm",
            "hmm_vma_range_done",
            3,
            4,
            8,
            9,
            13,
            14,
            range(18, 24),
            25,
            26,
            range(30, 36),
        ),
    ),
    _group(
        B,
        "`HmmRange._done`, which only picks the refusal's UsageCode",
        """`_done` decides between RANGE_DONE_TWICE and RANGE_NOT_REGISTERED for a range_done
        on a range that is not registered; both are refusals, and the code reaches the suite
        only inside the refusal's free text.""",
        mutants("_hmm", "hmm_vma_get_pfns", 2, 3),
        mutants("_hmm", "hmm_vma_range_done", 48, 49),
    ),
    _group(
        B,
        "the kernel log line of a failed start (MN-1)",
        """The `pr_info` of a failed start goes to `MmStruct.dmesg`, with the notifier's
        `describe()` as its name. The MN rules bind the model and are checked by
        tests/test_mn.py; no candidate is checked against them, and the suite never reads the
        log.""",
        mutants("_hmm", "_HmmNotifier.describe", 1, 2),
        mutants("_mmu_notifier", "mmu_notifier_invalidate_range_start", range(22, 28)),
    ),
    # -- (t) timed out ---------------------------------------------------------------------
    _group(
        T,
        "a snapshot 2**24 times too large",
        """`<<` for `>>` in the page count gives a range of n pages n * 2**24 entries; the
        first snapshots exhaust mutmut's CPU-time limit (SIGXCPU). mutmut reports a timeout,
        which its score counts as caught.""",
        mutants("_range", "HmmRange.__init__", 23),
    ),
)


# ---------------------------------------------------------------------------------------------
# What mutmut recorded

#: mutmut 3.8's reading of a worker's exit code (``mutmut.stats.status_by_exit_code``); any
#: other code is "suspicious", and None means the mutant was never run.
_STATUS_BY_EXIT_CODE: Final[dict[int | None, str]] = {
    1: "killed",
    3: "killed",
    0: "survived",
    5: "no tests",
    33: "no tests",
    2: "check was interrupted by user",
    None: "not checked",
    34: "skipped",
    35: "suspicious",
    36: "timeout",
    37: "caught by type check",
    -24: "timeout",
    24: "timeout",
    152: "timeout",
    255: "timeout",
    -11: "segfault",
    -9: "segfault",
}
#: Statuses in which the tests noticed the mutant.
_KILLED: Final = frozenset({"killed", "caught by type check"})
#: The columns of the score table; any other status is counted under "other".
_COLUMNS: Final = ("killed", "survived", "no tests", "timeout")
_HEADER: Final = ["file", "mutants", *_COLUMNS, "other"]


@final
@dataclass(frozen=True, slots=True)
class Mutant:
    """One mutant as mutmut recorded it."""

    name: str
    #: The mutated file, as mutmut names it (``hmm_ref/_hmm.py``).
    path: str
    status: str

    @property
    def killed(self) -> bool:
        return self.status in _KILLED

    @property
    def function(self) -> str:
        """The mutated function as the source spells it: ``HmmMirror.__init__``."""
        mangled = self.name.rpartition(".")[2].rpartition("__mutmut_")[0]
        if mangled.startswith("xǁ"):
            return ".".join(mangled[2:].split("ǁ"))
        return mangled.removeprefix("x_")

    @property
    def number(self) -> int:
        return int(self.name.rpartition("__mutmut_")[2])


def load_results(root: Path) -> list[Mutant]:
    """Every mutant in ``root/mutants/hmm_ref/*.meta``, file by file, in mutmut's order."""
    found: list[Mutant] = []
    for meta in sorted((root / META_DIR).glob("*.meta")):
        path = f"{META_DIR.name}/{meta.name.removesuffix('.meta')}"
        codes: dict[str, int | None] = json.loads(meta.read_text(encoding="utf-8"))[
            "exit_code_by_key"
        ]
        found.extend(
            Mutant(name, path, _STATUS_BY_EXIT_CODE.get(code, "suspicious"))
            for name, code in codes.items()
        )
    return found


def problems(results: Sequence[Mutant], groups: Sequence[Group]) -> list[str]:
    """Every way in which ``groups`` fails to classify exactly the mutants not killed."""
    by_name = {m.name: m for m in results}
    grouped = Counter(name for group in groups for name in group.mutants)
    found: list[str] = []
    unfinished = sum(m.status == "not checked" for m in results)
    if unfinished:
        found.append(f"not checked: {unfinished} mutants (the run did not finish)")
    found.extend(f"in two groups: {name}" for name, count in grouped.items() if count > 1)
    found.extend(f"in a group but not in the results: {n}" for n in grouped if n not in by_name)
    found.extend(
        f"in a group but killed: {name}"
        for name in grouped
        if name in by_name and by_name[name].killed
    )
    found.extend(
        f"not killed ({m.status}) and in no group: {m.name}"
        for m in results
        if not m.killed and m.status != "not checked" and m.name not in grouped
    )
    return found


# ---------------------------------------------------------------------------------------------
# What a mutant changes, from ``mutmut show``


def find_mutmut() -> str:
    """The ``mutmut`` installed next to this Python, or else the one on ``PATH``."""
    found = shutil.which("mutmut", path=str(Path(sys.executable).parent)) or shutil.which("mutmut")
    if found is None:
        raise SystemExit("triage: no mutmut next to this Python or on PATH (pip install mutmut)")
    return found


def show(mutmut: str, root: Path, name: str) -> str:
    """``mutmut show NAME``: a header line, then a unified diff of the function."""
    done = subprocess.run(
        [mutmut, "show", name], cwd=root, capture_output=True, text=True, check=False
    )
    if done.returncode:
        raise SystemExit(f"triage: mutmut show {name} failed:\n{done.stderr}")
    return done.stdout


#: A source token: a string literal (with its prefix), a word or number, an operator, or one
#: other character.
_TOKEN: Final = re.compile(
    r"""[A-Za-z]*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|\w+|<<=?|>>=?|\*\*|->|[-+*/%&|^<>=!]=|\S"""
)
#: Longest code fragment shown in a description; longer ones are cut in the middle.
_WIDTH: Final = 64
#: How much of the line to show on each side of a change, for context.
_MARGIN: Final = 24


def _clip(text: str, width: int = _WIDTH) -> str:
    if len(text) <= width:
        return text
    half = (width - 1) // 2
    return f"{text[:half]}…{text[-half:]}"


def describe(diff: str) -> str:
    """One line for the change in a ``mutmut show`` diff: what was replaced by what, and where.

    The removed and the added lines are compared token by token (a string literal is one
    token), and only the tokens between the common start and the common end are shown.
    """
    body = diff.split("\n@@", 1)[-1].splitlines()[1:]
    old = " ".join(line[1:].strip() for line in body if line.startswith("-"))
    new = " ".join(line[1:].strip() for line in body if line.startswith("+"))
    old_tokens = [m.span() for m in _TOKEN.finditer(old)]
    new_tokens = [m.span() for m in _TOKEN.finditer(new)]
    shortest = min(len(old_tokens), len(new_tokens))

    def same(i: int, j: int) -> bool:
        (a, b), (c, d) = old_tokens[i], new_tokens[j]
        return old[a:b] == new[c:d]

    lead = 0
    while lead < shortest and same(lead, lead):
        lead += 1
    trail = 0
    while trail < shortest - lead and same(-1 - trail, -1 - trail):
        trail += 1
    # An insertion: show a neighbour too, the keyword before it (`is not`) or else the token
    # after it (`not in`).
    if old_tokens and lead + trail == len(old_tokens):
        a, b = old_tokens[lead - 1] if lead else (0, 0)
        if lead and (keyword.iskeyword(old[a:b]) or not trail):
            lead -= 1
        else:
            trail -= 1
    gone = old_tokens[lead : len(old_tokens) - trail]
    came = new_tokens[lead : len(new_tokens) - trail]
    start, end = (gone[0][0], gone[-1][1]) if gone else (0, 0)
    before = old[start:end]
    after = new[came[0][0] : came[-1][1]] if came else ""
    change = f"`{_clip(before)}` → `{_clip(after)}`" if after else f"`{_clip(before)}` deleted"
    left, right = old[max(0, start - _MARGIN) : start], old[end : end + _MARGIN]
    if not re.search(r"\w", left + right):  # nothing around the change worth showing
        return change
    left = ("…" if start > _MARGIN else "") + left
    right += "…" if end + _MARGIN < len(old) else ""
    return f"{change} in `{left}{_clip(before, _MARGIN)}{right}`"


def changes(results: Iterable[Mutant], root: Path) -> dict[str, str]:
    """The one-line change of every mutant in ``results``, from ``mutmut show``."""
    mutmut = find_mutmut()
    names = [m.name for m in results]
    with ThreadPoolExecutor() as pool:
        diffs = pool.map(lambda name: show(mutmut, root, name), names)
        return {name: describe(diff) for name, diff in zip(names, diffs, strict=True)}


# ---------------------------------------------------------------------------------------------
# Reports


@final
@dataclass(frozen=True, slots=True)
class Scores:
    """The counts of one file, or of all of them."""

    label: str
    statuses: Counter[str]

    @property
    def total(self) -> int:
        return sum(self.statuses.values())

    def row(self) -> list[str]:
        killed = sum(self.statuses[s] for s in _KILLED)
        rest = [self.statuses[c] for c in _COLUMNS[1:]]
        cells = [killed, *rest, self.total - killed - sum(rest)]
        return [self.label, str(self.total), *(str(n) for n in cells)]


def scores(results: Sequence[Mutant]) -> list[Scores]:
    """One row per file, then the whole run."""
    rows = [
        Scores(path, Counter(m.status for m in results if m.path == path))
        for path in dict.fromkeys(m.path for m in results)
    ]
    return [*rows, Scores("all", Counter(m.status for m in results))]


def summary(results: Sequence[Mutant], groups: Sequence[Group]) -> list[str]:
    """The classification in numbers, mutmut's score, and the score over mutants that count."""
    by_category = Counter(g.category for g in groups for _ in g.mutants)
    statuses = Counter(m.status for m in results)
    killed = sum(m.killed for m in results)
    caught = statuses["killed"] + statuses["timeout"]
    tested = len(results) - statuses["skipped"]
    in_reach = len(results) - by_category[A] - by_category[B]
    lines = [
        f"Not killed: {len(results) - killed}, of which "
        + ", ".join(f"({c.value}) {by_category[c]}" for c in Category)
        + ".",
        f"mutmut's score, (killed + timeout) / (mutants - skipped) as `mutmut badge` counts it:"
        f" {caught}/{tested} = {caught / tested:.1%}.",
    ]
    if in_reach:
        caught_in_reach = killed + by_category[T]
        lines.append(
            f"Over the {in_reach} mutants that are neither (a) nor (b): caught (killed or timed "
            f"out) {caught_in_reach}/{in_reach} = {caught_in_reach / in_reach:.1%}."
        )
    return lines


def score_table(results: Sequence[Mutant]) -> list[str]:
    """The counts per file and in all, as aligned text."""
    rows = [_HEADER, *(s.row() for s in scores(results))]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_HEADER))]
    return [
        "  ".join(
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]


def text_report(
    results: Sequence[Mutant], groups: Sequence[Group], changed: dict[str, str] | None
) -> str:
    """The scores and the summary, then (given the changes) every group and its mutants."""
    out = [*score_table(results), "", *summary(results, groups)]
    if changed is None:
        return "\n".join(out)
    by_name = {m.name: m for m in results}
    for group in groups:
        out += ["", f"({group.category.value}) {group.title} [{len(group.mutants)}]"]
        for name in group.mutants:
            m = by_name[name]
            status = "" if m.status == "survived" else f" ({m.status})"
            out.append(f"    {m.path} {m.function} {m.number}{status}: {changed[name]}")
    return "\n".join(out)


def _wrap(text: str) -> str:
    return textwrap.fill(text, 100, break_long_words=False, break_on_hyphens=False)


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


def markdown_report(
    results: Sequence[Mutant], groups: Sequence[Group], changed: dict[str, str]
) -> str:
    """The same as :func:`text_report`, as Markdown: the body of docs/mutation.md's figures."""
    out = [
        "| " + " | ".join(_HEADER) + " |",
        "|---|" + "---:|" * (len(_HEADER) - 1),
        *(
            "| " + " | ".join([f"`{row[0]}`" if row[0] != "all" else "**all**", *row[1:]]) + " |"
            for row in (s.row() for s in scores(results))
        ),
        "",
        *(f"- {line}" for line in summary(results, groups)),
    ]
    by_name = {m.name: m for m in results}
    for category in Category:
        members = [g for g in groups if g.category is category]
        count = sum(len(g.mutants) for g in members)
        out += ["", f"### ({category.value}) {_upper_first(category.title)} ({count})"]
        if not members:
            out += ["", "None."]
        for group in members:
            title = f"{_upper_first(group.title)} ({len(group.mutants)})"
            out += ["", f"#### {title}", "", _wrap(group.reason), ""]
            for name in group.mutants:
                m = by_name[name]
                status = "" if m.status == "survived" else f" ({m.status})"
                out.append(f"- `{m.path}` `{m.function}` {m.number}{status}: {changed[name]}")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Classify every mutant mutmut did not kill; exit 1 if the table is stale."
    )
    form = parser.add_mutually_exclusive_group()
    form.add_argument("--counts", action="store_true", help="scores and checks only")
    form.add_argument("--markdown", action="store_true", help="Markdown for docs/mutation.md")
    parser.add_argument("--root", type=Path, default=Path(), help="where mutmut ran (default: .)")
    args = parser.parse_args(argv)
    results = load_results(args.root)
    if not results:
        print(f"triage: no results in {args.root / META_DIR}; run mutmut first", file=sys.stderr)
        return 2
    wrong = problems(results, GROUPS)
    if wrong:
        print("triage: the table does not match mutmut's results:", file=sys.stderr)
        for line in wrong:
            print(f"  {line}", file=sys.stderr)
        print("\n".join(score_table(results)))
        return 1
    if args.counts:
        print(text_report(results, GROUPS, None))
        return 0
    changed = changes((m for m in results if not m.killed), args.root)
    report = markdown_report if args.markdown else text_report
    print(report(results, GROUPS, changed))
    return 0


if __name__ == "__main__":
    sys.exit(main())

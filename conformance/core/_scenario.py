"""The OOM-reaper scenario: the seed against the tree before it, with reference drivers.

The seed patch exists for the OOM reaper (kernel-semantics §4 and §6, rule MN-2): before it,
HMM refused every non-blockable invalidation start, so the reaper could reap no vma of a process
with a mirror and gave up after ``MAX_OOM_REAP_RETRIES`` attempts. This scenario shows it with
``hmm_ref``'s own reaper (:func:`hmm_ref.oom_reap_task`) and its reference drivers
(:class:`hmm_ref.ReferenceDriver`), in a few driver situations, on both trees side by side.

The world. An mm with four vmas of four pages each; three drivers, each mapping one vma on its
device (``gpu0`` A with a mutex, ``gpu1`` B with a read/write semaphore, ``gpu2`` C with a
mutex); the fourth vma (D) is mapped by the CPU only. A driver is *busy* when a device fault of
its own is in progress on its vma and holds its lock (the fault has taken its snapshot and its
lock, and not yet checked the snapshot). A busy driver answers a non-blockable update that
overlaps what its device maps with ``-EAGAIN`` (DRV-1), and 0 to any other (DRV-6).

The parent tree. ``hmm_ref`` models only the seed, so the tree before 7/7 is modelled here, as
:class:`ParentTreeNotifier`: HMM's own notifier with its start wrapped so that a non-blockable
start returns ``-EAGAIN`` at once, before the range pass and without calling any mirror, as
6/7's ``hmm_invalidate_range_start`` did (kernel-semantics §4, bug history #6). Blockable
starts, ends and release pass through unchanged: in 6/7 they behave as in the seed, as far as a
caller and these drivers can see. The catalogue's ``parent-tree`` entry
(``conformance/core/_catalogue.py``) is the same change to a whole core.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, TextIO, final

import hmm_ref as H

__all__ = [
    "SITUATIONS",
    "ParentTreeNotifier",
    "Situation",
    "SituationOutcome",
    "Tree",
    "TreeRun",
    "install_parent_tree",
    "oom_reaper_outcomes",
    "oom_reaper_scenario",
    "render_oom_reaper",
    "run_situation",
]

_PAGES = 4
#: The vmas, by label: four pages each, 1 MiB apart.
_VMAS: Final = tuple((label, 0x100000 * (index + 1)) for index, label in enumerate("ABCD"))
#: The drivers: name, lock kind, and the label of the vma its device maps.
_DRIVERS: Final = (
    ("gpu0", H.DriverLockKind.MUTEX, "A"),
    ("gpu1", H.DriverLockKind.RWSEM, "B"),
    ("gpu2", H.DriverLockKind.MUTEX, "C"),
)


@final
class Tree(enum.Enum):
    """Which HMM the reaper runs against."""

    #: The seed (mainline 4.20): mirrors decide, a vma is skipped only if one answers -EAGAIN.
    SEED = "seed"
    #: The parent of 7/7 (6/7 applied): every non-blockable start refused with -EAGAIN.
    PARENT = "parent"


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class Situation:
    """What the drivers are doing when the reaper comes: which of them are busy."""

    name: str
    #: Names of the drivers whose lock a fault in progress holds.
    busy: frozenset[str] = frozenset()


#: The situations the scenario runs, in order.
SITUATIONS: Final = (
    Situation(name="all idle"),
    Situation(name="one busy", busy=frozenset({"gpu1"})),
    Situation(name="all busy", busy=frozenset({"gpu0", "gpu1", "gpu2"})),
)


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class TreeRun:
    """The reaper's report on one tree in one situation, with what the drivers saw."""

    tree: Tree
    report: H.OomReapReport
    #: ``sync_cpu_device_pagetables`` calls the reaper caused, over all drivers.
    mirror_calls: int
    #: Device entries that map another page than the CPU's, or with more rights (DRV-5),
    #: after the reaper is done.
    stale_device_entries: int
    #: Sleeping calls the drivers made in the reaper's non-blockable callbacks (DRV-1).
    sleep_violations: int
    #: The drivers that answered -EAGAIN to the reaper at least once.
    refused_by: frozenset[str]


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class SituationOutcome:
    """One situation on both trees."""

    situation: Situation
    seed: TreeRun
    parent: TreeRun


@final
class ParentTreeNotifier(H.MmuNotifier):
    """HMM's notifier as the parent of 7/7 had it: non-blockable starts refused outright.

    6/7's ``hmm_invalidate_range_start`` returned ``-EAGAIN`` when not blockable, before it
    looked up the hmm: no range was invalidated and no mirror called (kernel-semantics §4). All
    else is delegated to the seed's notifier that this one stands in for.
    """

    def __init__(self, seed: H.MmuNotifier) -> None:
        self.seed = seed

    def describe(self) -> str:
        return self.seed.describe()

    def release(self, mm: H.MmStruct) -> None:
        self.seed.release(mm)

    def invalidate_range_start(self, mm: H.MmStruct, start: int, end: int, blockable: bool) -> int:
        if not blockable:
            return -H.Errno.EAGAIN
        return self.seed.invalidate_range_start(mm, start, end, blockable)

    def invalidate_range_end(self, mm: H.MmStruct, start: int, end: int) -> None:
        self.seed.invalidate_range_end(mm, start, end)


def install_parent_tree(mm: H.MmStruct) -> ParentTreeNotifier:
    """Put :class:`ParentTreeNotifier` in place of HMM's notifier on ``mm`` (which has an hmm)."""
    hmm = mm.hmm
    if hmm is None:
        raise ValueError("the mm has no struct hmm yet: register a mirror first")
    H.mmu_notifier_unregister_no_release(hmm.notifier, mm)
    parent = ParentTreeNotifier(hmm.notifier)
    H.mmu_notifier_register(parent, mm)
    return parent


def _span(label: str) -> tuple[int, int]:
    start = dict(_VMAS)[label]
    return start, start + _PAGES * H.PAGE_SIZE


def _world(situation: Situation, tree: Tree) -> tuple[H.MmStruct, list[H.ReferenceDriver]]:
    """The victim's mm and its drivers, each device mapping its vma, the busy ones mid-fault."""
    mm = H.MmStruct(pid=4242, comm="victim")
    for number, (label, _) in enumerate(_VMAS):
        start, end = _span(label)
        mm.mmap(start, end)
        for index, addr in enumerate(range(start, end, H.PAGE_SIZE)):
            mm.set_pte(addr, H.Pte.present(0x1000 * (number + 1) + index, write=index % 2 == 0))
    monitor = H.SleepMonitor()
    drivers = [
        H.ReferenceDriver(mm, name=name, lock_kind=kind, monitor=monitor)
        for name, kind, _ in _DRIVERS
    ]
    for driver in drivers:
        registered = driver.register()
        assert registered == 0, f"{driver.name} could not register"
    if tree is Tree.PARENT:
        install_parent_tree(mm)
    for driver, (name, _, label) in zip(drivers, _DRIVERS, strict=True):
        start, end = _span(label)
        mapped = driver.fault(start, end)
        assert mapped == 0, f"{name} could not map vma {label}"
        if name in situation.busy:
            fault = driver.start_fault(start, start + H.PAGE_SIZE)
            fault.step()  # the snapshot
            fault.step()  # the lock, held from here on
    return mm, drivers


def _stale(mm: H.MmStruct, drivers: Iterable[H.ReferenceDriver]) -> int:
    return sum(
        1
        for driver in drivers
        for addr, entry in driver.device_page_table.items()
        if not (
            mm.pte(addr).mapped
            and mm.pte(addr).pfn == entry.pfn
            and (mm.pte(addr).write or not entry.write)
        )
    )


def run_situation(situation: Situation, tree: Tree) -> TreeRun:
    """Build the world for ``situation`` on ``tree`` and let the OOM reaper at it."""
    mm, drivers = _world(situation, tree)
    report = H.oom_reap_task(mm)
    return TreeRun(
        tree=tree,
        report=report,
        mirror_calls=sum(len(driver.syncs) for driver in drivers),
        stale_device_entries=_stale(mm, drivers),
        sleep_violations=len(drivers[0].monitor.violations),
        refused_by=frozenset(
            driver.name
            for driver in drivers
            if any(sync.reply == -H.Errno.EAGAIN for sync in driver.syncs)
        ),
    )


def oom_reaper_outcomes(
    situations: Sequence[Situation] = SITUATIONS,
) -> tuple[SituationOutcome, ...]:
    """Each situation, run on the seed and on the parent tree."""
    return tuple(
        SituationOutcome(
            situation=situation,
            seed=run_situation(situation, Tree.SEED),
            parent=run_situation(situation, Tree.PARENT),
        )
        for situation in situations
    )


def _label(start: int) -> str:
    return next(label for label, first in _VMAS if first == start)


def _cells(report: H.OomReapReport, number: int) -> list[str]:
    """Reaped, skipped and outcome of attempt ``number``, or blanks if there was none."""
    if number > len(report.attempts):
        return ["", "", ""]
    attempt = report.attempts[number - 1]
    reaped = " ".join(_label(vma.start) for vma in attempt.vmas if vma.reaped) or "-"
    skipped = " ".join(_label(vma.start) for vma in attempt.vmas if not vma.reaped) or "-"
    if attempt.succeeded:
        outcome = "reaped"
    elif number == len(report.attempts) and report.gave_up:
        outcome = "gave up"
    else:
        outcome = "retry"
    return [reaped, skipped, outcome]


def _verdict(report: H.OomReapReport) -> str:
    done = report.reaped_in_attempt
    if done is not None:
        return f"reaped in attempt {done}"
    return f"gave up after {len(report.attempts)} attempts"


def _situation_name(situation: Situation) -> str:
    if not situation.busy:
        return situation.name
    return f"{situation.name} ({' '.join(sorted(situation.busy))})"


def _table(rows: Sequence[Sequence[str]], groups: Sequence[int]) -> list[str]:
    """``rows`` (the first is the header) in aligned columns, a rule under the header, and a
    ``|`` before each column index in ``groups``."""
    widths = [max(len(row[col]) for row in rows) for col in range(len(rows[0]))]

    def line(row: Sequence[str]) -> str:
        text = ""
        for col, (cell, width) in enumerate(zip(row, widths, strict=True)):
            gap = "  | " if col in groups else "  " if col else ""
            text += gap + cell.ljust(width)
        return text.rstrip()

    return [line(rows[0]), line(["-" * width for width in widths]), *map(line, rows[1:])]


_ATTEMPTS_HEADER: Final = (
    *("situation", "attempt"),
    *("seed reaped", "skipped", "outcome"),
    *("parent reaped", "skipped", "outcome"),
)
_TOTALS_HEADER: Final = (
    *("situation", "seed", "parent"),
    *("refused by", "mirror calls", "stale entries", "sleeps"),
)


def _both(seed: object, parent: object) -> str:
    return f"{seed} / {parent}"


def _names(names: frozenset[str]) -> str:
    return " ".join(sorted(names)) or "-"


def render_oom_reaper(outcomes: Sequence[SituationOutcome]) -> list[str]:
    """The outcomes as text: a table with one row per attempt, seed and parent side by side,
    then one row per situation with the verdicts and what the drivers saw."""
    attempts: list[Sequence[str]] = [_ATTEMPTS_HEADER]
    totals: list[Sequence[str]] = [_TOTALS_HEADER]
    for outcome in outcomes:
        seed, parent = outcome.seed, outcome.parent
        name = _situation_name(outcome.situation)
        count = max(len(seed.report.attempts), len(parent.report.attempts))
        for number in range(1, count + 1):
            first = name if number == 1 else ""
            seed_cells, parent_cells = _cells(seed.report, number), _cells(parent.report, number)
            attempts.append([first, str(number), *seed_cells, *parent_cells])
        totals.append(
            [
                name,
                _verdict(seed.report),
                _verdict(parent.report),
                _both(_names(seed.refused_by), _names(parent.refused_by)),
                _both(seed.mirror_calls, parent.mirror_calls),
                _both(seed.stale_device_entries, parent.stale_device_entries),
                _both(seed.sleep_violations, parent.sleep_violations),
            ]
        )
    return [
        "OOM reaper: the seed (4.20) against its parent tree (6/7: HMM refuses every "
        "non-blockable start)",
        "victim pid 4242, vmas: " + ", ".join(f"{label} {_range(label)}" for label, _ in _VMAS),
        "devices: "
        + ", ".join(f"{name} ({kind.value}) maps {label}" for name, kind, label in _DRIVERS)
        + ", D is mapped by the CPU only",
        "busy: a device fault on the driver's vma holds the driver's lock, so the driver",
        "      answers -EAGAIN to a non-blockable start over that vma",
        "",
        *_table(attempts, groups=(2, 5)),
        "",
        *_table(totals, groups=(1, 3)),
        "",
        "seed / parent. refused by: the drivers that answered -EAGAIN. mirror calls: the",
        "sync_cpu_device_pagetables calls the reaper caused. stale entries: device entries",
        "that do not match the CPU's after reaping (DRV-5). sleeps: sleeping calls made in",
        "non-blockable callbacks (DRV-1).",
    ]


def _range(label: str) -> str:
    start, end = _span(label)
    return f"[{start:#x}, {end:#x})"


def oom_reaper_scenario(out: TextIO) -> int:
    """``hmm-conformance scenario oom-reaper``: run every situation on both trees, print, 0."""
    for text in render_oom_reaper(oom_reaper_outcomes()):
        out.write(f"{text}\n")
    return 0

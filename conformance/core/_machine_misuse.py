"""The state machine's rules that misuse the API on purpose, mixed into the core machine: a
register without ops (REG-2), an unregister of a mirror already gone, a range_done on a range
already done or never snapshotted (RNG-9). The rules say what a candidate must answer to
each, and the case goes on after it.
"""

from __future__ import annotations

from hypothesis.stateful import Bundle, precondition, rule

from ._machine_names import MachineNames
from ._ops import RangeDone, RegisterMirror, UnregisterMirror

__all__ = ["MisuseRules"]


class MisuseRules(MachineNames):
    """The misuse rules, over the names of the machine they are mixed into."""

    retired = Bundle("retired")
    finished = Bundle("finished")

    @precondition(lambda self: not self.model.released)
    @rule(target=retired)
    def register_without_ops(self) -> int:
        """A register the rules refuse (REG-2); the driver may still unregister it."""
        mirror = self._mirror_id()
        self._do(RegisterMirror(mirror=mirror, with_ops=False))
        return mirror

    @rule(mirror=retired)
    def unregister_again(self, mirror: int) -> None:
        """Unregister a mirror already unregistered, or one whose register was refused."""
        self._do(UnregisterMirror(mirror=mirror))

    @rule(range_id=finished)
    def range_done_again(self, range_id: int) -> None:
        """range_done on a range already done (RNG-9)."""
        self._do(RangeDone(range=range_id))

    @rule(target=finished)
    def range_done_unknown(self) -> int:
        """range_done on a range never snapshotted (RNG-9), then a handle to misuse again.

        (Hypothesis picks the first of its rules, those that make nothing first, more often
        than others: made without a handle, this one took a fifth of all steps.)"""
        range_id = self._range_id()
        self._do(RangeDone(range=range_id))
        return range_id

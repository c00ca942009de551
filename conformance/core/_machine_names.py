"""What the core machine's rule mixins (``_machine_faults.py``, ``_machine_misuse.py``) use of
the machine they are mixed into, declared once for the type checker."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hypothesis import strategies as st

    from hmm_ref import PfnEncoding

    from ._draws import Swarm
    from ._model import Model
    from ._ops import CoreOperation

__all__ = ["MachineNames"]


class MachineNames:
    """The machine's names its rule mixins call: the model, one step, a fresh mirror or range
    number, the case's swarm and an encoding it allows. ``_machine.py`` defines them all."""

    if TYPE_CHECKING:

        @property
        def model(self) -> Model: ...

        def _do(self, op: CoreOperation) -> None: ...

        def _mirror_id(self) -> int: ...

        def _range_id(self) -> int: ...

        def _encoding(self, data: st.DataObject) -> PfnEncoding: ...

        @property
        def _swarm(self) -> Swarm: ...

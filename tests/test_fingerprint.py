"""A candidate's own state as a value: equal for equal states, apart for states that differ."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

from conformance._fingerprint import own_state


def _state(thing: object, *given: tuple[object, Hashable]) -> Hashable:
    return own_state(thing, {id(handed): (handed, label) for handed, label in given})


@dataclass
class Core:
    flag: bool = False
    ranges: dict[int, list[int]] = field(default_factory=dict)
    busy: set[int] = field(default_factory=set)
    partner: object = None


def test_equal_states_are_equal_and_any_difference_tells_them_apart() -> None:
    """Two cores built alike agree; a flag, an entry, a set member or a key order apart."""
    one, two = Core(ranges={0: [1, 2]}), Core(ranges={0: [1, 2]})
    assert _state(one) == _state(two)
    assert hash(_state(one)) == hash(_state(two))
    for change in (
        lambda c: setattr(c, "flag", True),
        lambda c: c.ranges[0].append(3),
        lambda c: c.busy.add(1),
        lambda c: c.ranges.update({1: []}),
    ):
        other = Core(ranges={0: [1, 2]})
        change(other)
        assert _state(other) != _state(one)
    reordered = Core(ranges={1: [], 0: [1, 2]})
    assert _state(reordered) != _state(Core(ranges={0: [1, 2], 1: []}))


def test_sharing_and_cycles_are_part_of_the_state() -> None:
    """One list held twice is not two equal lists; a core that points at itself is walked."""
    shared: list[int] = []
    aliased, copied = Core(ranges={0: shared, 1: shared}), Core(ranges={0: [], 1: []})
    assert _state(aliased) != _state(copied)
    looped = Core()
    looped.partner = looped
    assert _state(looped) != _state(Core())
    again = Core()
    again.partner = again
    assert _state(looped) == _state(again)


def test_what_the_harness_handed_stands_for_its_label() -> None:
    """Two different objects the harness handed under one label are the same to the walk,
    whatever they recorded; two labels are different."""
    first, second = [1, 2, 3], ["a long history"]
    assert _state(Core(partner=first), (first, "cpu")) == _state(
        Core(partner=second), (second, "cpu")
    )
    assert _state(Core(partner=first), (first, "cpu")) != _state(
        Core(partner=first), (first, ("mirror", 0))
    )


class Declares:
    def __init__(self, hidden: int, noise: int) -> None:
        self.hidden, self.noise = hidden, noise

    def search_state(self) -> object:
        return self.hidden


def test_a_candidate_that_says_what_its_state_is_is_taken_at_its_word() -> None:
    assert _state(Declares(1, 10)) == _state(Declares(1, 20))
    assert _state(Declares(1, 10)) != _state(Declares(2, 10))
    assert _state(Core(partner=Declares(1, 0))) != _state(Core(partner=Declares(2, 0)))


class Slotted:
    __slots__ = ("__private", "public")

    def __init__(self, private: int) -> None:
        self.__private = private
        self.public = 0

    def value(self) -> int:
        return self.__private


class Referable:
    __slots__ = ("__weakref__", "value")

    def __init__(self, value: int) -> None:
        self.value = value


class OneSlot:
    __slots__ = "only"  # noqa: PLC0205 - one slot named by a string, which the walk must read
    only: int


def test_slots_private_slots_and_unset_slots_are_walked() -> None:
    assert _state(Slotted(1)) == _state(Slotted(1))
    assert _state(Slotted(1)) != _state(Slotted(2))
    unset, set_ = OneSlot(), OneSlot()
    set_.only = 1
    assert _state(unset) != _state(set_)
    assert _state(unset) == _state(OneSlot())
    assert _state(Referable(1)) == _state(Referable(1)) != _state(Referable(2))


@dataclass(frozen=True)
class Value:
    number: int


def _counter(start: int) -> Callable[[], int]:
    count = [start]

    def bump() -> int:
        count[0] += 1
        return count[0]

    return bump


def test_values_code_methods_and_closures_are_their_state() -> None:
    """A frozen dataclass is its fields; a function is its name and what its closure holds; a
    bound method is its function and its object; a class or module is its name."""
    assert _state(Core(partner=Value(1))) == _state(Core(partner=Value(1)))
    assert _state(Core(partner=Value(1))) != _state(Core(partner=Value(2)))
    assert _state(_counter(1)) == _state(_counter(1))
    assert _state(_counter(1)) != _state(_counter(2))
    assert _state(Slotted(1).value) != _state(Slotted(2).value)
    assert _state(Core(partner=Core)) == _state(Core(partner=Core))
    assert _state(Core(partner=len)) != _state(Core(partner=abs))
    assert _state(object()) == _state(object())

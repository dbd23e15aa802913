from datetime import timedelta

import pytest

from mock_server.tasks.clock import ClockError, VirtualClock
from tests.conftest import T0


class FakeMonotonic:
    def __init__(self):
        self.value = 100.0

    def __call__(self):
        return self.value


def test_running_clock_follows_real_time_and_frozen_clock_does_not():
    real = FakeMonotonic()
    clock = VirtualClock(T0, monotonic=real)
    real.value += 2.5
    assert clock.now() == T0 + timedelta(seconds=2.5)
    clock.freeze()
    real.value += 100
    assert clock.now() == T0 + timedelta(seconds=2.5)
    clock.freeze(False)
    real.value += 1
    assert clock.now() == T0 + timedelta(seconds=3.5)


def test_advance_and_set_move_forward_and_notify():
    seen = []
    clock = VirtualClock(T0, frozen=True)
    clock.on_change(seen.append)
    clock.advance(60)
    clock.set(T0 + timedelta(hours=1))
    assert clock.now() == T0 + timedelta(hours=1)
    assert seen == [T0 + timedelta(seconds=60), T0 + timedelta(hours=1)]


def test_clock_never_moves_backwards():
    clock = VirtualClock(T0, frozen=True)
    with pytest.raises(ClockError):
        clock.set(T0 - timedelta(seconds=1))
    with pytest.raises(ClockError):
        clock.advance(-1)
    assert clock.now() == T0

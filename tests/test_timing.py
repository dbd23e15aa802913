"""Timing profiles: what a polling client observes, drawn from a seeded RNG."""

import random

import pytest

from mock_server.tasks.timelines import draw_timeline

# sdk-wire-contract §15: the 1.x client polls right after submit (~2 ms), then at 1 s, 2 s, 4 s...
FIRST_POLL, SECOND_POLL, THIRD_POLL, FOURTH_POLL = 0.01, 1.0, 2.0, 4.0


@pytest.mark.parametrize("model", ["wan2.2-kf2v-flash", "wanx2.1-kf2v-plus"])
def test_fast_profile_shows_pending_then_running_and_ends_within_a_few_polls(model):
    rng = random.Random(0)
    for _ in range(2000):
        t = draw_timeline("fast", rng, model)
        end = t.queue_wait + t.run_time
        assert FIRST_POLL < t.queue_wait < SECOND_POLL  # the first poll sees PENDING
        assert t.queue_wait <= SECOND_POLL < end  # the 1 s poll sees RUNNING
        assert end < 3.0  # v2's third poll (1 s + 2 s) and 1.x's 4 s poll see the end


def test_realistic_profile_stays_in_the_documented_one_to_five_minutes_and_flash_is_faster():
    totals = {}
    for model in ("wan2.2-kf2v-flash", "wanx2.1-kf2v-plus"):
        rng = random.Random(1)
        draws = [draw_timeline("realistic", rng, model) for _ in range(2000)]
        assert all(60 <= d.queue_wait + d.run_time <= 300 for d in draws)
        assert all(d.queue_wait > 0 and d.run_time > 0 for d in draws)
        totals[model] = sorted(d.queue_wait + d.run_time for d in draws)[1000]
    assert totals["wan2.2-kf2v-flash"] < totals["wanx2.1-kf2v-plus"]


def test_same_seed_same_timeline():
    a = [draw_timeline("realistic", random.Random(5), "wan2.2-kf2v-flash") for _ in range(3)]
    assert len(set(a)) == 1
    with pytest.raises(ValueError):
        draw_timeline("instant", random.Random(0), "wan2.2-kf2v-flash")

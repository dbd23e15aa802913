"""Time: how long tasks take under the ``realistic`` profile, concurrency, and what 24 hours do.

The emulator side runs a second ``kf2v-mock serve --timing realistic`` on a frozen clock and moves
it; the real side measures the shared generation in real time.
"""

from __future__ import annotations

import pytest
import requests

from contract.schema import load_contract
from contract.targets import Api, Target, observe, parse_task_time
from mock_server.testing.serve_process import ServeProcess

DOCUMENTED_MINUTES = (1, 5)  # "通常为1-5分钟" ([SEED])


@pytest.fixture(scope="module")
def realistic(target, tmp_path_factory):
    """(Api, observations): three tasks run one after another on a realistic-profile emulator."""
    if not target.is_emulator:
        yield None
        return
    process = ServeProcess("--timing", "realistic", "--seed", "3",
                           data_dir=tmp_path_factory.mktemp("realistic-data")).start()
    other = [r for r in process.urls if r != target.region][0]
    realistic_target = Target("emulator", target.region, process.urls[target.region],
                              target.api_key, process.urls[other])
    realistic_target.session.trust_env = False
    realistic_target.freeze()
    api = Api(realistic_target)
    seen = []
    for _ in range(3):
        created = api.create()
        assert created.status == 200, created.body
        seen.append(observe(api, created.body["output"]["task_id"], "PENDING", step=5.0))
    yield api, seen
    process.stop()
    process.cleanup()


def _minutes(observation) -> float:
    output = observation.last["output"]
    taken = parse_task_time(output["end_time"]) - parse_task_time(output["submit_time"])
    return taken.total_seconds() / 60


@pytest.mark.parity_documented(source="[SEED]: tasks usually take 1-5 minutes", assumptions=["Timing"])
def test_realistic_timing_within_the_documented_minutes(realistic, generation, target):
    """Submit to end takes 1-5 minutes (realistic profile); the real service at most 5."""
    low, high = DOCUMENTED_MINUTES
    if target.is_emulator:
        _, seen = realistic
        taken = [_minutes(o) for o in seen]
        assert all(o.states == ["PENDING", "RUNNING", "SUCCEEDED"] for o in seen)
        assert all(low <= t <= high for t in taken), taken
    else:  # one sample; "usually" gives no lower bound worth failing on
        assert _minutes(generation[1]) <= high


@pytest.mark.parity_documented(
    source="[SEED]/[REF-NEW]: task id and video_url kept 24 h; OSS 403 'Request has expired.'",
    assumptions=["Result link expiry", "OSS error codes"])
def test_after_24_hours_unknown_and_the_link_has_expired(realistic, clock):
    """24 h on, the task answers UNKNOWN, leaves the list, and its link answers 403 in XML."""
    api, seen = realistic
    done = seen[0]
    url = done.last["output"]["video_url"]
    assert requests.head(url, timeout=30).status_code == 200
    api.target.advance(24 * 3600 + 600)
    later = api.query(done.task_id).body
    assert later["output"] == {"task_id": done.task_id, "task_status": "UNKNOWN"}
    assert api.list(task_id=done.task_id).body["total"] == 0
    expired = requests.get(url, timeout=30)
    assert expired.status_code == 403 and expired.headers["x-oss-ec"] == "0002-00000069"
    assert load_contract().xml_errors(403, expired.text) == []
    assert "<Message>Request has expired.</Message>" in expired.text


@pytest.mark.parity_emulator_only(reason="real concurrency handling is not documented; checking it "
                                         "would cost three generations",
                                  assumptions=["Concurrency"])
def test_a_third_task_waits_pending_while_two_run(api, clock):
    """With two tasks RUNNING for the account and model, a third stays PENDING until one ends."""
    ids = []
    for n in range(3):
        if n == 2:
            # Two submits per second (quotas are on); one second is also past the first two's queue
            # waits (at most 0.9 s) and before either can end (at least 1.7 s).
            clock.advance(1.0)
        created = api.create()
        assert created.status == 200, created.body
        ids.append(created.body["output"]["task_id"])
    states = [api.query(i).body["output"]["task_status"] for i in ids]
    assert sorted(states) == ["PENDING", "RUNNING", "RUNNING"]
    # The waiting task is observed first: observing another one first moves the clock past its
    # whole run, and whether its clip is written by then is a race with the renderer.
    order = sorted(range(3), key=lambda n: states[n] != "PENDING")
    observed = {n: observe(api, ids[n], states[n]) for n in order}
    runs = [observed[n] for n in range(3)]
    waiting = runs[states.index("PENDING")]
    assert waiting.states == ["PENDING", "RUNNING", "SUCCEEDED"]
    started = parse_task_time(waiting.last["output"]["scheduled_time"])
    assert started >= min(parse_task_time(r.last["output"]["end_time"]) for r in runs if r is not waiting)

"""Per-account concurrency: at most ``cap`` tasks RUNNING, the rest PENDING, never retroactive."""

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from mock_server.tasks.models import RUNNING, Task, TaskSpec
from mock_server.tasks.scheduler import assign_start_times
from tests.conftest import T0

SPEC = TaskSpec("wan2.2-kf2v-flash", "data:", "data:", None, None, None, "480P", 5, False, False, 1)


def make_task(n: int, submit: float, wait: float, run: float) -> Task:
    return Task(task_id=f"t{n}", request_id="r", region="cn-beijing", account_id="a", api_key_id="k",
                spec=SPEC, seed=1, submit_time=T0 + timedelta(seconds=submit), queue_wait=wait,
                run_time=run, sequence=n, video_ready=True)


def apply(tasks, cap):
    starts = assign_start_times(tasks, cap)
    for task in tasks:
        task.scheduled_time = starts[task.task_id]


def running_at(tasks, when):
    return [t for t in tasks if t.status_at(when) == RUNNING]


def test_third_task_waits_for_a_free_slot():
    tasks = [make_task(i, submit=0, wait=1, run=10) for i in range(3)]
    apply(tasks, cap=2)
    assert [t.scheduled_time for t in tasks] == [T0 + timedelta(seconds=1)] * 2 + [
        T0 + timedelta(seconds=11)]


def test_canceled_pending_task_frees_its_turn():
    tasks = [make_task(i, submit=0, wait=1, run=10) for i in range(4)]
    apply(tasks, cap=2)
    tasks[2].canceled_time = T0 + timedelta(seconds=5)
    apply(tasks, cap=2)
    assert tasks[2].scheduled_time is None
    assert tasks[3].scheduled_time == T0 + timedelta(seconds=11)


timelines = st.lists(st.tuples(st.floats(0, 50), st.floats(0, 20), st.floats(0.1, 30)),
                     min_size=1, max_size=12)


@settings(max_examples=150, deadline=None)
@given(timelines, st.integers(1, 3), st.data())
def test_never_more_than_cap_running_and_cancel_is_not_retroactive(spec, cap, data):
    tasks = [make_task(i, submit, wait, run) for i, (submit, wait, run) in enumerate(spec)]
    apply(tasks, cap)
    probes = [T0 + timedelta(seconds=s) for s in range(0, 200, 3)]
    for when in probes:
        assert len(running_at(tasks, when)) <= cap
    # Cancel one task that is PENDING at some moment; nothing observed before that moment changes.
    when = T0 + timedelta(seconds=data.draw(st.floats(0, 80)))
    pending = [t for t in tasks if t.submit_time <= when and t.status_at(when) == "PENDING"]
    if not pending:
        return
    victim = data.draw(st.sampled_from(pending))
    before = {t.task_id: [t.status_at(p) for p in probes if p < when] for t in tasks}
    victim.canceled_time = when
    apply(tasks, cap)
    after = {t.task_id: [t.status_at(p) for p in probes if p < when] for t in tasks}
    assert before == after
    for probe in probes:
        assert len(running_at(tasks, probe)) <= cap

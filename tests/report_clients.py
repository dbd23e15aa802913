"""Small raw-HTTP kf2v clients: one that does everything right, and one per real-world mistake
(shared/spec/client-mistakes.md), for the report card's tests.

Each talks to the emulator through ``requests`` only. ``Api.sleep`` is how it waits: the tests
give it the virtual clock (advance it, then let accepted renders finish), so every wait is exact
and nothing sleeps; a script run under ``kf2v-mock run`` gives it ``time.sleep``.
"""

from __future__ import annotations

import os
import time
from typing import Callable, Iterator

import requests

from mock_server.testing.samples import frame_pair

CREATE = "/services/aigc/image2video/video-synthesis"
TERMINAL = ("SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN")
RETRYABLE = (429, 500, 502, 503, 504)
MODELS = {"cn-beijing": "wan2.2-kf2v-flash", "ap-southeast-1": "wan2.1-kf2v-plus"}
RESOLUTIONS = {"cn-beijing": "480P", "ap-southeast-1": "720P"}


class ClientError(Exception):
    """What a client reports to its caller when a job fails."""


class Api:
    def __init__(self, base_url: str, api_key: str, sleep: Callable[[float], None], *,
                 region: str = "cn-beijing"):
        self.base = base_url.rstrip("/")
        self.root = self.base.removesuffix("/api/v1")
        self.key = api_key
        self.sleep = sleep
        self.region = region
        self.http = requests.Session()
        self.http.trust_env = False  # loopback, never through a proxy

    @classmethod
    def from_env(cls) -> "Api":
        """Pointed where ``kf2v-mock run`` points the SDK; waits in real time."""
        return cls(os.environ["DASHSCOPE_HTTP_BASE_URL"], os.environ["DASHSCOPE_API_KEY"],
                   time.sleep)

    def body(self, prompt: str = "a cat turns into a dog", model: str | None = None,
             seed: int = 1) -> dict:
        first, last = frame_pair(seed, (320, 240)).data_urls()
        return {"model": model or MODELS[self.region],
                "input": {"prompt": prompt, "first_frame_url": first, "last_frame_url": last},
                "parameters": {"resolution": RESOLUTIONS[self.region]}}

    def create(self, body: dict, *, key: str | None = None,
               async_header: bool = True) -> requests.Response:
        headers = {"Authorization": f"Bearer {key or self.key}"}
        if async_header:
            headers["X-DashScope-Async"] = "enable"
        return self.http.post(self.base + CREATE, json=body, headers=headers, timeout=60)

    def query(self, task_id: str) -> requests.Response:
        return self.http.get(f"{self.base}/tasks/{task_id}",
                             headers={"Authorization": f"Bearer {self.key}"}, timeout=60)

    def download(self, url: str) -> requests.Response:
        return self.http.get(url, timeout=60)

    def fault(self, **rule) -> None:
        """Set up the situation a client meets (``POST /_mock/faults``)."""
        self.http.post(self.root + "/_mock/faults", json=rule, timeout=10).raise_for_status()


# --- the correct client --------------------------------------------------------------------------------
def sdk_waits() -> Iterator[float]:
    """The official SDK's wait() schedule: 1, 1, 2, 2, 2, 4, 4, 4, 5, 5, ... s."""
    wait, step = 1.0, 0
    while True:
        step += 1
        if step % 3 == 0:
            wait = min(wait * 2, 5.0)
        yield wait


def submit(api: Api, body: dict, attempts: int = 8) -> str:
    """Create a task; a 429 / 5xx created nothing, so retry it after Retry-After or a growing
    delay; anything else is the caller's error."""
    delay = 1.0
    for _ in range(attempts):
        response = api.create(body)
        if response.status_code == 200:
            return response.json()["output"]["task_id"]
        if response.status_code not in RETRYABLE:
            raise ClientError(response.json())
        api.sleep(max(delay, float(response.headers.get("Retry-After", 0))))
        delay = min(delay * 2, 8.0)
    raise ClientError("the service stayed busy")


def wait(api: Api, task_id: str) -> dict:
    """Poll on the SDK's schedule until a terminal status; a dropped poll, a 5xx or a 429 (after
    its Retry-After) is just polled again."""
    waits = sdk_waits()
    while True:
        try:
            response = api.query(task_id)
        except requests.RequestException:
            api.sleep(next(waits))
            continue
        if response.status_code == 200:
            output = response.json()["output"]
            if output["task_status"] in TERMINAL:
                return output
            api.sleep(next(waits))
        elif response.status_code in RETRYABLE:
            api.sleep(max(next(waits), float(response.headers.get("Retry-After", 0))))
        else:
            raise ClientError(response.json())


def fetch_video(api: Api, task_id: str, output: dict, attempts: int = 4) -> bytes:
    """Download the result; a cut-off download is fetched again, an expired link is replaced by
    a fresh one from the task (once)."""
    url = output["video_url"]
    refreshed = False
    for _ in range(attempts):
        try:
            response = api.download(url)
        except requests.RequestException:  # cut off (Content-Length not reached): again
            continue
        if response.status_code == 200:
            return response.content
        if response.status_code == 403 and not refreshed:
            refreshed = True
            url = wait(api, task_id).get("video_url") or url  # polls through 5xx and drops
            continue
        raise ClientError(f"download failed: {response.status_code}")
    raise ClientError("download kept failing")


def finish(api: Api, task_id: str) -> bytes | None:
    output = wait(api, task_id)
    return fetch_video(api, task_id, output) if output["task_status"] == "SUCCEEDED" else None


def correct(api: Api, tasks: int = 1) -> list[bytes | None]:
    """Does everything right: submits (honouring 429s), waits like the SDK, downloads."""
    results = []
    for n in range(tasks):
        task_id = submit(api, api.body(f"scene {n}", seed=n + 1))
        results.append(finish(api, task_id))
    return results


# --- one mistake each ----------------------------------------------------------------------------------
def polls_unknown_forever(api: Api) -> str:
    """OpenStoryline: a task id kept from an earlier run, and anything but SUCCEEDED / FAILED taken
    for "still running", polled every 15 s until its own 600 s timeout."""
    stored = "0c1d3f7e-5b2a-4c8e-9f10-2a3b4c5d6e7f"
    for _ in range(40):
        status = api.query(stored).json()["output"]["task_status"]
        if status in ("SUCCEEDED", "FAILED"):
            return status
        api.sleep(15)
    return "timeout"


def reports_success_while_pending(api: Api) -> str:
    """agentscope-bricks: one fetch after the submit, and its video_url ("" while PENDING) is
    reported as the result."""
    task_id = api.create(api.body()).json()["output"]["task_id"]
    return api.query(task_id).json()["output"].get("video_url", "")


def gives_up_on_throttle(api: Api) -> list[str]:
    """All three: three submits at once, and a 429 fails that job instead of being retried."""
    created = []
    for n in range(3):
        response = api.create(api.body(f"scene {n}", seed=n + 1))
        if response.status_code == 200:
            created.append(response.json()["output"]["task_id"])
    for task_id in created:
        finish(api, task_id)
    return created


def retries_without_waiting(api: Api) -> None:
    """Retries a throttled submit every 0.1 s, whatever its Retry-After says."""
    api.fault(match={"endpoint": "create"}, error={"name": "throttling_rate", "retry_after": 2},
              times=3)
    body = api.body()
    while (response := api.create(body)).status_code != 200:
        api.sleep(0.1)
    finish(api, response.json()["output"]["task_id"])


def wrong_region(api: Api) -> None:
    """ComfyUI_Wan: the Singapore model name on the Beijing endpoint, and a Singapore key there."""
    api.create(api.body(model="wan2.1-kf2v-plus"))
    api.create(api.body(), key="sk-kf2v-mock-singapore")


def retries_every_error(api: Api) -> None:
    """A retry-everything wrapper: re-sends, with growing delays, a create that moderation
    refused (400 DataInspectionFailed)."""
    body = api.body("a storm over the sea [mock:data-inspection-failed]")
    delay = 1.0
    for _ in range(3):
        if api.create(body).status_code == 200:
            return
        api.sleep(delay)
        delay *= 2


def resubmits_after_lost_answer(api: Api) -> None:
    """The create's answer is cut off after the task was made; the client sends it again and a
    second, billable task is created."""
    api.fault(match={"endpoint": "create"}, truncate={}, times=1)
    body = api.body()
    for _ in range(2):
        try:
            response = api.create(body)
        except requests.RequestException:
            continue
        finish(api, response.json()["output"]["task_id"])
        return


def polls_too_fast(api: Api) -> None:
    """Polls every 0.2 s."""
    task_id = submit(api, api.body())
    while (output := api.query(task_id).json()["output"])["task_status"] not in TERMINAL:
        api.sleep(0.2)
    fetch_video(api, task_id, output)


def polls_after_done(api: Api) -> None:
    """Polls a fixed ten times, a second apart, whatever the answers say."""
    task_id = submit(api, api.body())
    output: dict = {}
    for _ in range(10):
        answer = api.query(task_id).json()["output"]
        output = answer if answer["task_status"] == "SUCCEEDED" else output
        api.sleep(1)
    fetch_video(api, task_id, output)


def downloads_late(api: Api) -> None:
    """Keeps the link instead of the file, and downloads it the next day."""
    task_id = submit(api, api.body())
    output = wait(api, task_id)
    api.sleep(25 * 3600)
    api.download(output["video_url"])


def never_downloads(api: Api) -> str:
    """Returns the link and never fetches the video."""
    return wait(api, submit(api, api.body()))["video_url"]


def sync_caller(api: Api) -> int:
    """Forgets X-DashScope-Async: enable."""
    return api.create(api.body(), async_header=False).status_code


def keeps_broken_download(api: Api) -> bytes:
    """Takes whatever a download gave, even when it was cut off."""
    api.fault(match={"endpoint": "download"}, truncate={}, times=1)
    task_id = submit(api, api.body())
    output = wait(api, task_id)
    try:
        return api.download(output["video_url"]).content
    except requests.RequestException:
        return b""


# (client, the rules its report card must name, exactly)
MISTAKES = [
    (polls_unknown_forever, {"unknown-not-terminal"}),
    (reports_success_while_pending, {"abandoned-task"}),
    (gives_up_on_throttle, {"no-retry-on-throttle", "submit-burst"}),
    (retries_without_waiting, {"no-backoff"}),
    (wrong_region, {"wrong-region-model", "wrong-region-key"}),
    (retries_every_error, {"retried-unchanged-4xx"}),
    (resubmits_after_lost_answer, {"duplicate-submit"}),
    (polls_too_fast, {"poll-too-fast"}),
    (polls_after_done, {"poll-after-terminal"}),
    (downloads_late, {"download-after-expiry"}),
    (never_downloads, {"result-not-downloaded"}),
    (sync_caller, {"sync-call"}),
    (keeps_broken_download, {"incomplete-download"}),
    (correct, set()),
]


def gives_up_on_anything(api: Api, tasks: int = 4) -> int:
    """Assumes the happy path: a throttled submit, a failed or dropped poll or a cut-off download
    ends that job (what a chaos run finds). Returns the number of videos it got."""
    videos = 0
    for n in range(tasks):
        response = api.create(api.body(f"scene {n}", seed=n + 1))
        if response.status_code != 200:
            continue
        task_id = response.json()["output"]["task_id"]
        waits = sdk_waits()
        while True:
            try:
                response = api.query(task_id)
            except requests.RequestException:
                break
            if response.status_code != 200:
                break
            output = response.json()["output"]
            if output["task_status"] in TERMINAL:
                break
            api.sleep(next(waits))
        if response.status_code == 200 and output["task_status"] == "SUCCEEDED":
            try:
                videos += api.download(output["video_url"]).status_code == 200
            except requests.RequestException:
                pass
    return videos

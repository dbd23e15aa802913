"""A kf2v client with the mistakes found in three public kf2v clients, for the client report card
(README, "What your client does wrong"). Run it under the emulator:

    kf2v-mock run --report -- python examples/report-card/flawed_client.py

It submits three scenes at once and drops the one that is throttled, reports the second as done
after one look, polls the first every 0.3 s and a few more times "to be sure", polls a task id
kept from an earlier run as if UNKNOWN meant "still running", and never downloads a video.
"""

import os
import time

import requests

from mock_server.testing.samples import frame_pair  # sample frames (any image URLs would do)

BASE = os.environ["DASHSCOPE_HTTP_BASE_URL"]
HEADERS = {"Authorization": f"Bearer {os.environ['DASHSCOPE_API_KEY']}"}
http = requests.Session()
http.trust_env = False  # the emulator is on loopback


def submit(prompt: str, seed: int) -> str | None:
    first, last = frame_pair(seed, (320, 240)).data_urls()
    body = {"model": "wan2.2-kf2v-flash", "parameters": {"resolution": "480P"},
            "input": {"prompt": prompt, "first_frame_url": first, "last_frame_url": last}}
    answer = http.post(f"{BASE}/services/aigc/image2video/video-synthesis", json=body,
                       headers={**HEADERS, "X-DashScope-Async": "enable"})
    if answer.status_code != 200:
        print("submit failed:", answer.json()["code"])  # and the job is lost
        return None
    return answer.json()["output"]["task_id"]


def status(task_id: str) -> dict:
    return http.get(f"{BASE}/tasks/{task_id}", headers=HEADERS).json()["output"]


def main() -> None:
    first, second, _ = [submit(f"scene {n}: a cat turns into a dog", n) for n in range(1, 4)]
    if second:
        print("scene 2:", status(second).get("video_url", "") or "(done, no video)")
    if first:
        for _ in range(100):  # up to 30 s
            if status(first)["task_status"] in ("SUCCEEDED", "FAILED"):
                break
            time.sleep(0.3)
        for _ in range(4):  # "to be sure"
            video_url = status(first).get("video_url")
        print("scene 1:", video_url)
    remembered = "0c1d3f7e-5b2a-4c8e-9f10-2a3b4c5d6e7f"  # from yesterday's run
    for _ in range(6):  # (OpenStoryline: every 15 s for 600 s)
        if status(remembered)["task_status"] in ("SUCCEEDED", "FAILED"):
            break
        time.sleep(1)


if __name__ == "__main__":
    main()

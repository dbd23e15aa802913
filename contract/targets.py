"""What the parity suite talks to: the emulator (a ``kf2v-mock serve`` subprocess it starts itself,
``mock_server.testing.serve_process.ServeProcess``) or the real service. Tests see one ``Target`` either way; only the emulator offers its clock.

Every JSON answer that comes back through ``Api`` is validated against contract/openapi.yaml on the
spot, so a real-service answer outside the contract fails as loudly as an emulator one would.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import requests

from contract.schema import load_contract

BEIJING, SINGAPORE = "cn-beijing", "ap-southeast-1"
REAL_BASE = {BEIJING: "https://dashscope.aliyuncs.com/api/v1",
             SINGAPORE: "https://dashscope-intl.aliyuncs.com/api/v1"}
EMULATOR_KEYS = {BEIJING: "sk-kf2v-mock-beijing", SINGAPORE: "sk-kf2v-mock-singapore"}
# The cheapest generation each region offers (api-facts §7): Beijing's flash model at 480P
# (¥0.10/s), Singapore's only model at its only tier (720P).
CHEAPEST = {BEIJING: ("wan2.2-kf2v-flash", "480P"), SINGAPORE: ("wan2.1-kf2v-plus", "720P")}
TERMINAL = ("SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN")
# The documented sample prompt ([SEED]), so orig_prompt matches the documented example verbatim.
DOC_PROMPT = "写实风格，一只黑色小猫好奇地看向天空，镜头从平视逐渐上升，最后俯拍小猫好奇的眼神。"


@dataclass
class Target:
    kind: str  # "emulator" or "real"
    region: str
    base_url: str  # .../api/v1
    api_key: str
    other_region_base_url: str  # the other region's endpoint, where this key is not valid
    session: requests.Session = field(default_factory=requests.Session)

    @property
    def is_emulator(self) -> bool:
        return self.kind == "emulator"

    @property
    def model(self) -> str:
        return CHEAPEST[self.region][0]

    @property
    def resolution(self) -> str:
        return CHEAPEST[self.region][1]

    @property
    def origin(self) -> str:
        return self.base_url.removesuffix("/api/v1")

    # --- the emulator's clock (never offered by the real target) ------------------------------
    def _admin(self, path: str, body: dict | None = None) -> dict:
        assert self.is_emulator, "the real service has no /_mock/ API"
        url = f"{self.origin}/_mock/{path}"
        response = (self.session.post(url, json=body, timeout=30) if body is not None
                    else self.session.get(url, timeout=30))
        response.raise_for_status()
        return response.json()

    def freeze(self, frozen: bool = True) -> None:
        self._admin("clock", {"frozen": frozen})

    def advance(self, seconds: float) -> None:
        self._admin("clock", {"advance_seconds": seconds})

    def reset(self) -> None:
        self._admin("reset", {})


class ContractViolation(AssertionError):
    pass


@dataclass
class Reply:
    status: int
    body: Any
    headers: requests.structures.CaseInsensitiveDict
    raw: bytes = b""  # the body's bytes, as sent (decompressed when it came gzipped)


class Api:
    """Raw HTTP to a target; every JSON answer is checked against the contract."""

    def __init__(self, target: Target):
        self.target = target

    def _send(self, method: str, path: str, *, key: str | None = "", headers: dict | None = None,
              base_url: str | None = None, **kwargs: Any) -> Reply:
        key = self.target.api_key if key == "" else key
        sent = {**({"Authorization": f"Bearer {key}"} if key is not None else {}), **(headers or {})}
        response = self.target.session.request(method, f"{base_url or self.target.base_url}{path}",
                                               headers=sent, timeout=60, **kwargs)
        body = response.json() if response.headers.get("Content-Type", "").startswith(
            "application/json") else response.text
        errors = load_contract().json_errors(method, f"/api/v1{path.split('?')[0]}",
                                             response.status_code, body)
        if errors:
            raise ContractViolation(f"{method} {path}: " + "; ".join(errors))
        return Reply(response.status_code, body, response.headers, response.content)

    def create(self, body: dict | None = None, *, key: str | None = "", async_header: bool = True,
               path: str = "/services/aigc/image2video/video-synthesis", raw: bytes | None = None,
               headers: dict | None = None, base_url: str | None = None) -> Reply:
        sent = {"Content-Type": "application/json", **(headers or {})}
        if async_header:
            sent["X-DashScope-Async"] = "enable"
        if raw is not None:
            return self._send("POST", path, key=key, headers=sent, data=raw, base_url=base_url)
        return self._send("POST", path, key=key, headers=sent, json=body or self.body(),
                          base_url=base_url)

    def body(self, *, size: tuple[int, int] = (640, 480), **input_overrides: Any) -> dict:
        from fixtures.frames import frame_data_url
        return {"model": self.target.model,
                "input": {"prompt": DOC_PROMPT,
                          "first_frame_url": frame_data_url(*size, seed=1, fmt="JPEG"),
                          "last_frame_url": frame_data_url(*size, seed=2, fmt="JPEG"),
                          **input_overrides},
                "parameters": {"resolution": self.target.resolution, "prompt_extend": True}}

    def query(self, task_id: str, *, key: str | None = "") -> Reply:
        return self._send("GET", f"/tasks/{task_id}", key=key)

    def list(self, **params: Any) -> Reply:
        return self._send("GET", "/tasks", params=params)

    def cancel(self, task_id: str, *, key: str | None = "") -> Reply:
        return self._send("POST", f"/tasks/{task_id}/cancel", key=key)

    def get_policy(self, model: str) -> Reply:
        return self._send("GET", "/uploads", params={"action": "getPolicy", "model": model},
                          headers={"Content-Type": "application/json"})


@dataclass
class Observation:
    """What a polling client saw of one task: the states in order, and the last answer."""
    task_id: str
    states: list[str]
    last: dict
    answers: list[dict]


def observe(api: Api, task_id: str, first_state: str, *, step: float = 0.25,
            timeout: float = 900.0, poll_every: float = 10.0) -> Observation:
    """Poll until the task is terminal. On the emulator the (frozen) clock is advanced ``step``
    seconds between polls; on the real service polls are ``poll_every`` real seconds apart."""
    target = api.target
    states, answers = [first_state], []
    deadline = time.monotonic() + (120 if target.is_emulator else timeout)
    while True:
        reply = api.query(task_id)
        assert reply.status == 200, reply.body
        answers.append(reply.body)
        state = reply.body["output"]["task_status"]
        if state != states[-1]:
            states.append(state)
        if state in TERMINAL:
            return Observation(task_id, states, reply.body, answers)
        if time.monotonic() > deadline:
            raise AssertionError(f"task {task_id} not terminal in time; states {states}")
        if target.is_emulator:
            target.advance(step)
            # Past its end the task stays RUNNING until the clip is written (real work in the
            # server process): give the renderer a moment of real time.
            time.sleep(0.02)
        else:
            time.sleep(poll_every)


def parse_task_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f")

#!/usr/bin/env python3
"""Regenerate the README's console screenshots (docs/console-*.png): an emulator with a few tasks
made through the official SDK (one SUCCEEDED, one FAILED by a fault rule, one RUNNING, a refused
image download), and, for the Client report tab, another one with a seeded chaos run and the
browser test's flawed raw-HTTP client, photographed in headless Chromium. Run from the repository
root (name some of tasks, journal, task, report to make only those):

    .venv/bin/python scripts/console_screenshot.py [NAME ...]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import dashscope  # noqa: E402
from dashscope import VideoSynthesis  # noqa: E402
from PIL import Image  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

from mock_server.config import Settings  # noqa: E402
from mock_server.testing.embedded import EmbeddedServer  # noqa: E402
from mock_server.testing.samples.frames import frame_data_url  # noqa: E402
from tests.report_clients import Api  # noqa: E402
from tests.test_console_browser import CHROMIUM, LAUNCH_ARGS, flawed_client  # noqa: E402

KEY = "sk-kf2v-mock-beijing"
SHOTS = ("tasks", "journal", "task", "report")


def main(names: list[str]) -> None:
    unknown = set(names) - set(SHOTS)
    if unknown:
        sys.exit(f"unknown screenshot(s) {', '.join(sorted(unknown))}; choose from {', '.join(SHOTS)}")
    chosen = set(names or SHOTS)
    if chosen & {"tasks", "journal", "task"}:
        tasks_journal_task(chosen)
    if "report" in chosen:
        report()


def tasks_journal_task(chosen: set[str]) -> None:
    with tempfile.TemporaryDirectory() as data, EmbeddedServer(Settings(
            beijing_port=0, singapore_port=0, log_requests=False, render_preset="ultrafast",
            quotas=False, data_dir=Path(data))) as server:
        dashscope.base_http_api_url = server.urls["cn-beijing"]
        server.freeze()
        first, last = frame_data_url(750, 1000, seed=11), frame_data_url(750, 1000, seed=12)

        def submit(prompt: str, first_frame_url: str = first, **extra):
            return VideoSynthesis.async_call(api_key=KEY, model="wan2.2-kf2v-flash", prompt=prompt,
                                             first_frame_url=first_frame_url,
                                             last_frame_url=last, resolution="480P", **extra)

        done = submit("a black kitten looks up at the sky, the camera rises slowly").output.task_id
        submit("a paper boat drifts across a rainy street", headers={
            "X-Mock-Scenario": "fail-at-end"})
        server.advance(30)
        server.drain()
        submit("a lighthouse at dusk, waves rolling in")
        server.advance(1)
        submit("a dead link", first_frame_url="http://10.0.0.5/first.png")
        VideoSynthesis.fetch(done, api_key=KEY)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
            page = browser.new_page(viewport={"width": 1360, "height": 640})
            root = server.root_url("cn-beijing")
            if "tasks" in chosen:
                page.goto(root + "/_mock/ui#/tasks")
                page.wait_for_selector("#tasks tbody tr")
                page.wait_for_timeout(600)
                page.screenshot(path=str(ROOT / "docs" / "console-tasks.png"))
            if "journal" in chosen:
                page.goto(root + "/_mock/ui#/journal")
                page.wait_for_selector("#journal tr.has-reason")
                page.wait_for_timeout(600)
                page.screenshot(path=str(ROOT / "docs" / "console-journal.png"))
            if "task" in chosen:
                page.set_viewport_size({"width": 1360, "height": 900})
                page.goto(root + "/_mock/ui#/task/" + done)
                page.wait_for_selector("#t-video:not([hidden])")
                page.wait_for_timeout(1200)
                page.screenshot(path=str(ROOT / "docs" / "console-task.png"))
            browser.close()


def report() -> None:
    """The Client report tab: the flawed client of the browser test under a seeded chaos run,
    judged as the end of the run."""
    with tempfile.TemporaryDirectory() as data, EmbeddedServer(Settings(
            beijing_port=0, singapore_port=0, log_requests=False, render_preset="ultrafast",
            quotas=False, data_dir=Path(data))) as server:
        server.freeze()

        def sleep(seconds: float) -> None:
            server.advance(seconds)
            server.drain()

        api = Api(server.urls["cn-beijing"], KEY, sleep)
        root = server.root_url("cn-beijing")
        api.http.post(root + "/_mock/chaos", json={"seed": 3, "profile": "quick"},
                      timeout=10).raise_for_status()
        flawed_client(api, ghost="0c1d3f7e-5b2a-4c8e-9f10-2a3b4c5d6e7f")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
            page = browser.new_page(viewport={"width": 1360, "height": 1000})
            page.goto(root + "/_mock/ui#/report")
            page.check("#rp-final")
            page.wait_for_selector("#rp-schedule tbody tr")
            page.wait_for_timeout(600)
            shot = ROOT / "docs" / "console-report.png"
            page.screenshot(path=str(shot), full_page=True)
            browser.close()
        # A tall page: a 64-colour palette keeps the PNG small (flat UI colours, no photos in it).
        Image.open(shot).convert("RGB").quantize(colors=64).save(shot, optimize=True)


if __name__ == "__main__":
    main(sys.argv[1:])

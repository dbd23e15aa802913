"""The web console (/_mock/ui) in a real browser: Debian's Chromium, headless, driven by
Playwright's Python package (never its own browser downloads). Tasks are made with the official
SDK; the test watches them move in the table, plays a clip, adds a fault from a preset and sees
its counter move, finds the reason of a refused download in the journal, shows a hostile prompt
as text, and expires everything with the +24 h button. The Client report tab grades a flawed
raw-HTTP client live (a made-up task id with markup in it stays text) and shows a chaos run's
schedule.

The browser is a real component: with ``CI`` set a missing Chromium or Playwright fails the test
(``scripts/test`` installs Chromium when it runs as root); elsewhere the test skips and says why.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from fixtures.frames import frame_data_url
from mock_server.config import Settings
from mock_server.testing.embedded import EmbeddedServer
from tests.conftest import BJ_KEY, SG_KEY, missing_component
from tests.netutil import local_non_loopback_address

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync"]
XSS_PROMPT = "<img src=x onerror=alert(1)> a cat <script>alert(2)</script>"
WAIT_MS = 15_000


def _missing(why: str):
    missing_component(why, "install it with apt-get install -y chromium; scripts/test does as root")


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("Playwright's Python package is not installed (pip install -e '.[test]')")
    if not CHROMIUM.exists():
        _missing(f"Chromium is not installed at {CHROMIUM}")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield launched
        launched.close()


def serve(tmp_path: Path, **overrides) -> EmbeddedServer:
    values = dict(beijing_port=0, singapore_port=0, log_requests=False, render_preset="ultrafast",
                  data_dir=tmp_path / "data", quotas=False)
    values.update(overrides)
    return EmbeddedServer(Settings(**values)).start()


@pytest.fixture
def server(tmp_path):
    started = serve(tmp_path)
    yield started
    started.stop()


def new_page(browser):
    # bypass_csp lets Playwright evaluate its own checks in the page; the page's escaping is
    # what is under test (the Content-Security-Policy header is a second line, tested over HTTP).
    page = browser.new_page(viewport={"width": 1400, "height": 900}, bypass_csp=True)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    return page, dialogs, errors


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens there once the socket is closed


def test_the_console_shows_what_happened(browser, server, monkeypatch):
    import dashscope
    from dashscope import VideoSynthesis
    from playwright.sync_api import expect

    root = server.root_url("cn-beijing")
    monkeypatch.setattr(dashscope, "base_http_api_url", server.urls["cn-beijing"])
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    server.freeze()
    first, last = frame_data_url(640, 480, seed=1), frame_data_url(640, 480, seed=2)

    def submit(prompt: str, first_frame_url: str = first):
        return VideoSynthesis.async_call(api_key=BJ_KEY, model="wan2.2-kf2v-flash", prompt=prompt,
                                         first_frame_url=first_frame_url, last_frame_url=last,
                                         resolution="480P")

    created = [submit(XSS_PROMPT), submit("写实风格，一只黑色小猫好奇地看向天空")]
    assert all(r.status_code == 200 for r in created), created
    task_ids = [r.output.task_id for r in created]
    page, dialogs, errors = new_page(browser)

    # A lost user at / ends up in the console; the tasks are there, PENDING.
    page.goto(root + "/")
    assert page.url.endswith("/_mock/ui")
    status = {t: page.locator(f'#tasks tr[data-task-id="{t}"] td.status') for t in task_ids}
    for cell in status.values():
        expect(cell).to_have_text("PENDING", timeout=WAIT_MS)

    # Time moves: RUNNING, then SUCCEEDED once the clip is written.
    waits = server.call(lambda: [t.queue_wait for t in server.emulator.store.tasks()])
    server.advance(max(waits) + 0.05)
    for cell in status.values():
        expect(cell).to_have_text("RUNNING", timeout=WAIT_MS)
    server.advance(10)
    server.drain()
    for cell in status.values():
        expect(cell).to_have_text("SUCCEEDED", timeout=WAIT_MS)

    # The hostile prompt is shown as text, in the table and on the task's page.
    hostile = page.locator(f'#tasks tr[data-task-id="{task_ids[0]}"] td.prompt')
    expect(hostile).to_have_text(XSS_PROMPT)
    assert page.locator("img[src='x']").count() == 0 and page.locator("main script").count() == 0

    # The task's page: its request, its frames, its answer, and a clip that really plays.
    page.locator(f'#tasks tr[data-task-id="{task_ids[0]}"] a').click()
    expect(page.locator("#t-status")).to_have_text("SUCCEEDED", timeout=WAIT_MS)
    expect(page.locator("#t-request")).to_contain_text(XSS_PROMPT)
    expect(page.locator("#t-answer")).to_contain_text('"task_status": "SUCCEEDED"')
    page.wait_for_function("document.getElementById('t-first').naturalWidth === 640",
                           timeout=WAIT_MS)
    page.wait_for_function("document.getElementById('t-video').readyState >= 2", timeout=WAIT_MS)
    assert page.evaluate("document.getElementById('t-video').duration") == pytest.approx(5, abs=0.1)
    page.evaluate("document.getElementById('t-video').play()")
    page.wait_for_function("document.getElementById('t-video').currentTime > 0.3", timeout=WAIT_MS)
    assert page.locator("img[src='x']").count() == 0

    # A fault from a preset: the next poll answers 503, and the rule's counter moves.
    page.goto(root + "/_mock/ui#/faults")
    page.select_option("#fault-preset", label="scenario:model-unavailable")
    page.select_option("#fault-endpoint", "query")
    page.fill("#fault-times", "1")
    page.click("#fault-form button[type=submit]")
    applied = page.locator('#faults tr[data-rule-id="f1"] td.applied')
    expect(applied).to_have_text("0", timeout=WAIT_MS)
    assert VideoSynthesis.fetch(task_ids[1], api_key=BJ_KEY).status_code == 503
    expect(applied).to_have_text("1", timeout=WAIT_MS)

    # A refused download: the journal says which URL and what the fetch did.
    port = closed_port()
    refused = submit("a dead link", first_frame_url=f"http://127.0.0.1:{port}/first.png")
    assert (refused.status_code, refused.code) == (400, "InvalidParameter.DataInspection")
    page.goto(root + "/_mock/ui#/journal")
    reason = page.locator("#journal tr.has-reason td.reason").first
    expect(reason).to_contain_text(f"connection to 127.0.0.1:{port} refused", timeout=WAIT_MS)
    page.locator("#journal tr.has-reason").first.click()
    expect(page.locator("#r-reason")).to_contain_text(f"127.0.0.1:{port}/first.png")
    expect(page.locator("#r-resp-body")).to_contain_text("Unable to download the media resource")

    # A day later every task has expired (and its clip is gone).
    page.goto(root + "/_mock/ui#/tasks")
    expect(status[task_ids[0]]).to_have_text("SUCCEEDED", timeout=WAIT_MS)
    page.click("button[data-advance='86400']")
    for task_id, cell in status.items():
        expect(cell).to_contain_text("UNKNOWN", timeout=WAIT_MS)
        expect(page.locator(f'#tasks tr[data-task-id="{task_id}"] td.task-expires')).to_have_text(
            "expired")

    assert dialogs == [], f"a dialog opened: {dialogs}"
    assert errors == [], f"the page raised: {errors}"
    assert page.locator("img[src='x']").count() == 0


def test_with_a_token_the_console_asks_for_it_once(browser, tmp_path):
    """From another host the page loads, asks for the admin token, then works with it."""
    address = local_non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback address to browse from")
    server = serve(tmp_path, host=address, admin_token="s3cret")
    try:
        from playwright.sync_api import expect
        page, dialogs, errors = new_page(browser)
        page.goto(server.root_url("cn-beijing") + "/_mock/ui")
        form = page.locator("#token-form")
        expect(form).to_be_visible(timeout=WAIT_MS)
        page.fill("#token-input", "s3cret")
        page.click("#token-form button[type=submit]")
        expect(form).to_be_hidden(timeout=WAIT_MS)
        expect(page.locator("#clock-state")).to_have_text("running", timeout=WAIT_MS)
        page.reload()  # asked once: the tab remembers it
        expect(page.locator("#clock-state")).to_have_text("running", timeout=WAIT_MS)
        assert page.locator("#token-form").is_hidden()
        page.click('nav a[data-view="report"]')  # the report card comes with the token too
        expect(page.locator("#rp-summary")).to_have_text(
            "0 keys, 0 requests, 0 tasks: 0 errors, 0 warnings, 0 info — clean (no error or warning)",
            timeout=WAIT_MS)
        assert page.locator("#token-form").is_hidden()
        assert dialogs == [] and errors == []
    finally:
        server.stop()


# --- the Client report tab ---------------------------------------------------------------------------
GHOST_TASK = "<img src=x onerror=alert(1)>"  # a task id the client made up: it reaches the card


def flawed_client(api, ghost: str = GHOST_TASK) -> dict[str, str]:
    """A raw-HTTP client with three mistakes: it polls its video ten times a second apart whatever
    the answers say and never downloads it, reports a second task after one look (PENDING), and
    polls a remembered task id (``ghost``) that answers UNKNOWN. Returns the two task ids."""
    from tests import report_clients as clients

    polled = clients.submit(api, api.body("a cat turns into a dog", seed=1))
    for _ in range(10):
        api.query(polled)
        api.sleep(1)
    looked_at = clients.submit(api, api.body("a paper boat in the rain", seed=2))
    api.query(looked_at)
    for _ in range(4):
        api.query(ghost)
        api.sleep(1)
    return {"polled": polled, "looked_at": looked_at}


def virtual_sleep(server: EmbeddedServer):
    def sleep(seconds: float) -> None:
        server.advance(seconds)
        server.drain()
    return sleep


def shown_findings(page) -> set[tuple[str, str]]:
    return {(box.get_attribute("data-rule"), box.get_attribute("data-severity"))
            for box in page.locator("#rp-findings .finding").all()}


def test_the_client_report_tab(browser, server):
    from playwright.sync_api import expect

    from tests.report_clients import Api

    server.freeze()
    root = server.root_url("cn-beijing")
    page, dialogs, errors = new_page(browser)
    page.goto(root + "/_mock/ui#/report")
    expect(page.locator("#rp-clean")).to_be_visible(timeout=WAIT_MS)
    expect(page.locator('nav a[data-view="report"]')).to_have_class("active")
    assert page.locator("#rp-no-chaos").is_visible() and page.locator("#rp-chaos").is_hidden()

    # The findings appear while the page is open (it refreshes like the other tabs).
    beijing = Api(server.urls["cn-beijing"], BJ_KEY, virtual_sleep(server))
    tasks = flawed_client(beijing)
    singapore = Api(server.urls["ap-southeast-1"], SG_KEY, beijing.sleep, region="ap-southeast-1")
    assert singapore.create(singapore.body(), async_header=False).status_code == 403
    so_far = {("unknown-not-terminal", "error"), ("poll-after-terminal", "warning"),
              ("sync-call", "info")}
    expect(page.locator('#rp-findings .finding[data-rule="poll-after-terminal"]')).to_be_visible(
        timeout=WAIT_MS)
    expect(page.locator("#rp-findings .finding")).to_have_count(len(so_far), timeout=WAIT_MS)
    assert shown_findings(page) == so_far
    card = server_card(root)
    assert {(f["rule"], f["severity"]) for f in card["findings"]} == so_far

    # Each finding: its severity (coloured), summary, why, fix and evidence, as the card says.
    for finding in card["findings"]:
        box = page.locator(f'#rp-findings .finding[data-rule="{finding["rule"]}"]')
        badge = box.locator(".badge")
        expect(badge).to_have_text(finding["severity"])
        expect(badge).to_have_class(f"badge sev-{finding['severity']}")
        expect(box.locator(".summary")).to_have_text(finding["summary"])
        expect(box.locator(".why")).to_have_text(finding["why"])
        expect(box.locator(".fix")).to_have_text(finding["fix"])
        expect(box.locator(".tasks a")).to_have_text(finding["evidence"]["task_ids"])
    colours = {s: page.locator(f".finding.sev-{s} .badge").evaluate(
        "node => getComputedStyle(node).backgroundColor") for s in ("error", "warning", "info")}
    assert len(set(colours.values())) == 3, colours
    keys = page.locator("#rp-clients tbody tr")
    expect(keys).to_have_count(2)
    key_ids = {c["regions"][0]: c["key_id"] for c in card["clients"]}
    for region, counts in (("cn-beijing", ["1", "1", "0"]), ("ap-southeast-1", ["0", "0", "1"])):
        expect(page.locator(f'#rp-clients tr[data-key-id="{key_ids[region]}"] td.count')
               ).to_have_text(counts)

    # The made-up task id (markup) is text: in the summary, and as a link to that task's page.
    ghost = page.locator('#rp-findings .finding[data-rule="unknown-not-terminal"]')
    expect(ghost.locator(".summary")).to_contain_text("task <img src: queried 3 more times")
    expect(ghost.locator(".tasks a")).to_have_text(GHOST_TASK)
    assert page.locator("img[src='x']").count() == 0 and page.locator("main img:not([id])").count() == 0

    # Judged as the end of the run: the task looked at once is abandoned, the video never fetched.
    page.check("#rp-final")
    final = so_far | {("abandoned-task", "error"), ("result-not-downloaded", "info")}
    expect(page.locator("#rp-findings .finding")).to_have_count(len(final), timeout=WAIT_MS)
    assert shown_findings(page) == final
    expect(page.locator('.finding[data-rule="abandoned-task"] .tasks a')).to_have_text(
        tasks["looked_at"])

    # By key: the Singapore key's card is its sync call only.
    page.select_option("#rp-key", key_ids["ap-southeast-1"])
    expect(page.locator("#rp-findings .finding")).to_have_count(1, timeout=WAIT_MS)
    assert shown_findings(page) == {("sync-call", "info")}
    expect(keys).to_have_count(1)
    page.select_option("#rp-key", "")
    expect(page.locator("#rp-findings .finding")).to_have_count(len(final), timeout=WAIT_MS)

    # A request of the evidence opens in the journal's detail view; a task id on its page.
    late = page.locator('#rp-findings .finding[data-rule="poll-after-terminal"]')
    late.locator("details.evidence summary").click()
    first_request = late.locator("table.evidence tbody tr").first
    request_id = first_request.get_attribute("data-request-id")
    first_request.locator("a.request-link").click()
    expect(page.locator("#r-id")).to_have_text(request_id, timeout=WAIT_MS)
    expect(page.locator("#r-summary")).to_contain_text("GET /api/v1/tasks/" + tasks["polled"])
    page.go_back()
    late.locator(".tasks a").click()
    expect(page.locator("#t-id")).to_have_text(tasks["polled"], timeout=WAIT_MS)
    expect(page.locator("#t-status")).to_have_text("SUCCEEDED", timeout=WAIT_MS)
    page.go_back()
    ghost.locator(".tasks a").click()  # a made-up id: the task page says so, as text
    expect(page.locator("#t-id")).to_have_text(GHOST_TASK, timeout=WAIT_MS)
    expect(page.locator("#t-missing")).to_be_visible(timeout=WAIT_MS)

    assert dialogs == [], f"a dialog opened: {dialogs}"
    assert errors == [], f"the page raised: {errors}"
    assert page.locator("img[src='x']").count() == 0


def server_card(root: str, **params: str) -> dict:
    import requests
    with requests.Session() as http:
        http.trust_env = False  # loopback, never through a proxy
        answer = http.get(root + "/_mock/report", params=params, timeout=10)
    answer.raise_for_status()
    return answer.json()


def test_the_report_tab_shows_a_chaos_run(browser, server):
    """The seed, the profile and, per create, the hard paths it drew, whether the client reached
    them, how the task ended and what the card found; the run's label (user text) stays text."""
    from playwright.sync_api import expect

    from tests.report_clients import Api, gives_up_on_anything

    server.freeze()
    root = server.root_url("cn-beijing")
    api = Api(server.urls["cn-beijing"], BJ_KEY, virtual_sleep(server))
    started = api.http.post(root + "/_mock/chaos", json={"seed": 7, "profile": "default",
                                                         "label": XSS_PROMPT}, timeout=10)
    assert started.status_code == 200
    gives_up_on_anything(api, tasks=4)
    schedule = server_card(root, final="true")["chaos"]["schedule"]
    hits = [path["hit"] for row in schedule for path in row["paths"]]
    assert len(schedule) == 4 and True in hits and False in hits  # seed 7: paths reached and not

    page, dialogs, errors = new_page(browser)
    page.goto(root + "/_mock/ui#/report")
    page.check("#rp-final")
    expect(page.locator("#rp-chaos")).to_be_visible(timeout=WAIT_MS)
    expect(page.locator("#rp-chaos-seed")).to_have_text("7")
    expect(page.locator("#rp-chaos-profile")).to_have_text("default")
    expect(page.locator("#rp-chaos-label")).to_have_text("test " + XSS_PROMPT)
    expect(page.locator("#rp-chaos-replay")).to_have_text(
        "kf2v-mock run --chaos 7 --chaos-profile default -- COMMAND")
    rows = page.locator("#rp-schedule tbody tr")
    expect(rows).to_have_count(4, timeout=WAIT_MS)
    for row, drawn in zip(rows.all(), schedule):
        expect(row.locator("td.outcome")).to_have_text(drawn["outcome"])
        expect(row.locator("td.findings")).to_have_text(", ".join(drawn["findings"]) or "-")
        paths = row.locator("ul.paths li")
        expect(paths).to_have_count(len(drawn["paths"]))
        for item, path in zip(paths.all(), drawn["paths"]):
            assert item.get_attribute("data-path") == path["path"]
            missed = path["hit"] is False
            assert ("not reached" in item.inner_text()) == missed
            assert item.get_attribute("class") == ("missed" if missed else "reached")
        assert row.locator("a.request-link").get_attribute("href") == (
            "#/request/" + drawn["request_id"])
        if drawn["task_id"]:
            assert row.locator("a.task-link").get_attribute("href") == "#/task/" + drawn["task_id"]

    created = next(d for d in schedule if d["task_id"])
    page.locator(f'#rp-schedule tr[data-attempt="{created["attempt"]}"] a.task-link').click()
    expect(page.locator("#t-id")).to_have_text(created["task_id"], timeout=WAIT_MS)
    assert dialogs == [] and errors == []
    assert page.locator("img[src='x']").count() == 0 and page.locator("main script").count() == 0

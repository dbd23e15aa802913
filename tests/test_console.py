"""The console over HTTP: its static shell (package data, a strict Content-Security-Policy), how a
browser finds it from / and /_mock/, the admin-token rules for it, and the admin endpoints it reads
(one task with its answer, frames and clip; task filters and expired tasks; fault presets)."""

from __future__ import annotations

import re
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import pytest

from fixtures.frames import frame_bytes, frame_data_url
from mock_server.admin import console
from mock_server.admin.access import TOKEN_HEADER
from tests.conftest import CREATE, assert_error, auth, create, create_headers, kf2v_body, query
from tests.test_admin_access import PEER_HEADER
from tests.test_reasons import reasons_client  # noqa: F401 (fixture: an app with a fake peer)

ROOT = Path(__file__).resolve().parents[1]
AFAR = {PEER_HEADER: "192.0.2.7"}


def test_the_shell_is_package_data():
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"]["mock_server.admin"]
    shipped = sorted(p.name for p in console.UI_DIR.iterdir())
    assert shipped == sorted(["index.html", *console.FILES])
    for name in shipped:
        assert any(fnmatch(f"ui/{name}", pattern) for pattern in patterns), name
    page = (console.UI_DIR / "index.html").read_text()
    assert set(re.findall(r'(?:src|href)="/_mock/ui/([^"]+)"', page)) == set(console.FILES)
    script = (console.UI_DIR / "console.js").read_text()
    assert "innerHTML" not in script and "insertAdjacentHTML" not in script
    assert "http://" not in page + script and "https://" not in page + script  # nothing remote


async def test_the_page_and_its_assets(client):
    for path, content_type in (("/_mock/ui", "text/html"), ("/_mock/ui/", "text/html"),
                               ("/_mock/ui/console.js", "text/javascript"),
                               ("/_mock/ui/console.css", "text/css")):
        response = await client.get(path)
        assert response.status == 200 and response.content_type == content_type
        policy = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "default-src 'none'" in policy
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    missing = await client.get("/_mock/ui/secrets.py")
    assert missing.status == 404


async def test_a_browser_finds_the_console_and_api_clients_keep_their_404(client):
    for path in ("/", "/_mock", "/_mock/"):
        response = await client.get(path, headers={"Accept": "text/html,*/*"},
                                    allow_redirects=False)
        assert (response.status, response.headers["Location"]) == (302, "/_mock/ui"), path
    for method, headers in (("GET", {"Accept": "application/json"}), ("GET", auth()),
                            ("POST", {"Accept": "text/html"})):
        response = await client.request(method, "/", headers=headers, allow_redirects=False)
        assert_error(response.status, await response.json(), 404, "InvalidURL",
                     "Required URL is missing or invalid, check the request URL.")


async def test_with_a_token_any_peer_gets_the_shell_but_no_data(reasons_client):  # noqa: F811
    client = await reasons_client(admin_token="s3cret")
    for path in ("/_mock/ui", "/_mock/ui/console.js", "/_mock/"):
        response = await client.get(path, headers=AFAR, allow_redirects=False)
        assert response.status in (200, 302), path
    refused = await client.get("/_mock/tasks", headers=AFAR)
    assert refused.status == 403
    assert "sent no X-Mock-Admin-Token" in refused.headers["X-Kf2v-Mock-Reason"]
    allowed = await client.get("/_mock/tasks", headers={**AFAR, TOKEN_HEADER: "s3cret"})
    assert allowed.status == 200
    # The refusal is in the journal (admin calls are not, except those refused).
    journal = (await (await client.get("/_mock/requests")).json())["requests"]
    assert [(e["path"], e["status"], e["remote"]) for e in journal] == [
        ("/_mock/tasks", 403, "192.0.2.7")]


async def test_without_a_token_other_peers_get_nothing(reasons_client):  # noqa: F811
    client = await reasons_client()
    for path in ("/_mock/ui", "/_mock/ui/console.js", "/_mock/tasks"):
        response = await client.get(path, headers=AFAR)
        assert response.status == 403, path


# --- what the console reads ----------------------------------------------------------------------
async def test_one_task_as_the_console_shows_it(client):
    first = frame_bytes(320, 240, seed=1)
    body = kf2v_body(prompt="<b>bold</b> cat")
    _, created = await create(client, body)
    task_id = created["output"]["task_id"]
    client.emulator.clock.advance(30)
    await client.emulator.synthesizer.drain()
    real = await query(client, task_id)
    detail = await (await client.get(f"/_mock/tasks/{task_id}")).json()
    assert detail["task"]["status"] == "SUCCEEDED" and detail["task"]["prompt"] == "<b>bold</b> cat"
    assert detail["request"]["input"]["first_frame_url"].startswith("<data URL elided: image/png")
    assert detail["request"]["parameters"]["resolution"] == "480P"
    answer = detail["answer"]
    assert set(answer) == set(real) and answer["output"]["task_status"] == "SUCCEEDED"
    assert answer["output"]["video_url"].split("?")[0] == real["output"]["video_url"].split("?")[0]
    assert [e["endpoint"] for e in detail["requests"]] == ["create", "query"]
    assert detail["frames"] == {"first": True, "last": True} and detail["video"] is True
    frame = await client.get(f"/_mock/tasks/{task_id}/frames/first")
    assert frame.content_type == "image/png" and await frame.read() == first
    video = await client.get(f"/_mock/tasks/{task_id}/video")
    assert video.status == 200 and video.content_type == "video/mp4"
    assert (await video.read())[4:8] == b"ftyp"
    # The console's reads touch neither the journal nor fault rules.
    await client.post("/_mock/faults", json={"match": {"endpoint": "download"}, "disconnect": {}})
    assert (await client.get(f"/_mock/tasks/{task_id}/video")).status == 200
    assert (await (await client.get("/_mock/faults")).json())["faults"][0]["applied"] == 0
    assert len((await (await client.get("/_mock/requests")).json())["requests"]) == 2
    missing = await client.get("/_mock/tasks/nope")
    assert missing.status == 404


async def test_task_filters_and_expired_tasks(client):
    _, one = await create(client)
    body = kf2v_body(model="wanx2.1-kf2v-plus", resolution="720P")
    _, two = await create(client, body)
    listing = await (await client.get("/_mock/tasks", params={"model": "wanx2.1-kf2v-plus"})).json()
    assert [t["task_id"] for t in listing["tasks"]] == [two["output"]["task_id"]]
    assert len((await (await client.get("/_mock/tasks", params={"status": "PENDING"})).json())[
        "tasks"]) == 2
    assert len((await (await client.get("/_mock/tasks", params={"limit": "1"})).json())["tasks"]) == 1
    assert (await client.get("/_mock/tasks", params={"status": "BORED"})).status == 400
    assert (await client.get("/_mock/tasks", params={"colour": "red"})).status == 400
    client.emulator.clock.advance(30)
    await client.emulator.synthesizer.drain()
    client.emulator.clock.advance(2 * 24 * 3600)
    listing = await (await client.get("/_mock/tasks")).json()
    assert listing["tasks"] == []
    assert [(t["task_id"], t["status"], t["forgotten"]) for t in listing["forgotten"]] == [
        (one["output"]["task_id"], "UNKNOWN", True), (two["output"]["task_id"], "UNKNOWN", True)]
    gone = await (await client.get(f"/_mock/tasks/{one['output']['task_id']}")).json()
    assert gone["answer"]["output"]["task_status"] == "UNKNOWN" and gone["video"] is False


async def test_every_fault_preset_is_a_valid_rule(client):
    presets = (await (await client.get("/_mock/faults/presets")).json())["presets"]
    names = [p["name"] for p in presets]
    assert "scenario:model-unavailable" in names and "error:arrearage" in names
    for preset in presets:
        response = await client.post("/_mock/faults", json=preset["rule"])
        assert response.status == 200, (preset, await response.text())
    assert len((await (await client.get("/_mock/faults")).json())["faults"]) == len(presets)


async def test_a_prompt_with_markup_stays_data(client):
    """The admin API returns prompts as JSON strings; the page puts them in as text (browser test)."""
    status, created = await create(client, kf2v_body(prompt="<img src=x onerror=alert(1)>"))
    assert status == 200
    listing = await (await client.get("/_mock/tasks")).json()
    assert listing["tasks"][0]["prompt"] == "<img src=x onerror=alert(1)>"
    del created


@pytest.mark.parametrize("data_url", [frame_data_url(320, 240, seed=9)])
async def test_frames_of_a_refused_create_are_not_kept(client, data_url):
    response = await client.post(CREATE, json={"model": "nope", "input": {
        "first_frame_url": data_url, "last_frame_url": data_url}}, headers=create_headers())
    assert response.status == 400
    assert client.emulator.input_frames._frames == {}

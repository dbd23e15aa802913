"""Reproducers of what broke when kf2v-mock was attacked on purpose (issue 15), each fixed: a failed
create leaves nothing behind, lying Content-Encodings, lone surrogates, absurd Expires and Range
numbers, IPv4 addresses hidden in 6to4/Teredo/NAT64 spellings, a client vanishing mid-body, and data
dirs that cannot be used. Every case is answered the same with and without a durable store.

All loopback, on the in-process app (aiohttp's test server on real sockets) unless a raw socket or a
real ``kf2v-mock serve`` is the point.
"""

from __future__ import annotations

import asyncio
import errno
import gzip
import ipaddress
import json
import logging
import sqlite3
import zlib
from pathlib import Path

import pytest

from mock_server.api.image_fetch import UrlRefused, UrlRules
from mock_server.app import create_app, start_server
from mock_server.cli import data_dir_problem
from mock_server.emulator import Emulator
from mock_server.pipeline.keys import EMULATOR
from mock_server.store.memory import InMemoryStore
from mock_server.store.sqlite import DB_NAME, DataDirError, SqliteStore
from mock_server.tasks import rendering
from tests import contract_check
from tests.conftest import (BJ_KEY, CREATE, assert_catalogue_error, auth, create, create_headers,
                            kf2v_body, query)
from tests.conftest import test_settings as settings_for
from tests.test_intake import body_with
from tests.test_limits_and_paths import V2_CREATE
from tests.test_oss_links import succeeded_task, with_query
from tests.test_url_rules import connects  # noqa: F401  (fixture)

STORES = ["memory", "sqlite"]


@pytest.fixture(params=STORES)
async def any_client(request, make_client):
    """The emulator with its state in memory, and with it in SQLite under a data dir."""
    return await make_client(in_memory=request.param == "memory")


async def nothing_left(client) -> None:
    """No task anywhere: not in the store, the admin dump, the list, the inputs dir or a render."""
    emulator = client.emulator
    await emulator.synthesizer.drain()
    assert emulator.store.tasks() == []
    assert (await (await client.get("/_mock/tasks")).json())["tasks"] == []
    listed = await (await client.get("/api/v1/tasks", headers=auth())).json()
    assert (listed["total"], listed["data"]) == (0, [])
    inputs = emulator.inputs_dir
    assert not inputs.is_dir() or [p.name for p in inputs.iterdir()] == []


# --- 1. a failed create leaves nothing behind -----------------------------------------------------
class FailingStore(SqliteStore):
    """A durable store whose writes fail (a disk that went bad under SQLite) in ``fail_on``."""

    fail_on = "add_task"

    def add_task(self, task):
        if self.fail_on == "add_task":
            raise sqlite3.OperationalError("disk I/O error")
        super().add_task(task)

    def next_sequence(self):
        if self.fail_on == "next_sequence":
            raise sqlite3.OperationalError("database or disk is full")
        return super().next_sequence()


class FailingMemoryStore(InMemoryStore):
    fail_on = "add_task"

    def add_task(self, task):
        if self.fail_on == "add_task":
            raise OSError(errno.EIO, "injected store failure")
        super().add_task(task)

    def next_sequence(self):
        if self.fail_on == "next_sequence":
            raise OSError(errno.ENOSPC, "injected store failure")
        return super().next_sequence()


@pytest.mark.parametrize("fail_on", ["add_task", "next_sequence"])
@pytest.mark.parametrize("kind", ["sqlite", "memory"])
async def test_a_store_failure_on_create_leaves_nothing_behind(aiohttp_client, tmp_path, kind,
                                                               fail_on):
    settings = settings_for(tmp_path, in_memory=kind == "memory")
    store = FailingStore(tmp_path / "data") if kind == "sqlite" else FailingMemoryStore()
    store.fail_on = fail_on
    emulator = Emulator(settings, store=store)
    client = await aiohttp_client(contract_check.install(create_app(emulator=emulator)))
    client.emulator = emulator
    status, body = await create(client)
    assert_catalogue_error(status, body, "internal_error")
    await nothing_left(client)
    # The store works again: the next create is whole, and the only task.
    store.fail_on = None
    status, body = await create(client)
    assert status == 200, body
    assert [t.task_id for t in emulator.store.tasks()] == [body["output"]["task_id"]]


async def test_a_frame_write_failure_on_create_leaves_nothing_behind(make_client, monkeypatch):
    client = await make_client()
    calls = []

    def disk_full(folder, first, last):
        calls.append(folder)
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(rendering, "_write_inputs", disk_full)
    status, body = await create(client)
    assert_catalogue_error(status, body, "internal_error")
    assert calls, "the frames were meant to be written"
    await nothing_left(client)


async def test_a_frame_write_that_fails_half_way_leaves_nothing_behind(make_client, monkeypatch):
    client = await make_client()
    real = Path.write_bytes

    def second_write_fails(self, data):
        if self.name == "last":
            raise OSError(errno.EIO, "Input/output error")
        return real(self, data)
    monkeypatch.setattr(Path, "write_bytes", second_write_fails)
    status, body = await create(client)
    assert_catalogue_error(status, body, "internal_error")
    monkeypatch.undo()
    await nothing_left(client)


async def test_inputs_not_a_directory_leaves_nothing_behind(make_client):
    client = await make_client()
    client.emulator.inputs_dir.write_text("not a directory")
    status, body = await create(client)
    assert_catalogue_error(status, body, "internal_error")
    await client.emulator.synthesizer.drain()
    assert client.emulator.store.tasks() == []
    listed = await (await client.get("/api/v1/tasks", headers=auth())).json()
    assert listed["total"] == 0


async def test_a_store_failure_on_cancel_changes_nothing(make_client, monkeypatch):
    client = await make_client()
    _, body = await create(client)
    task_id = body["output"]["task_id"]
    store = client.emulator.store

    def broken(task):
        raise sqlite3.OperationalError("disk I/O error")
    monkeypatch.setattr(store, "save_task", broken)
    response = await client.post(f"/api/v1/tasks/{task_id}/cancel", headers=auth())
    assert_catalogue_error(response.status, await response.json(), "internal_error")
    monkeypatch.undo()
    answer = await (await client.get(f"/api/v1/tasks/{task_id}", headers=auth())).json()
    assert answer["output"]["task_status"] == "PENDING"
    listed = await (await client.get("/api/v1/tasks?status=CANCELED", headers=auth())).json()
    assert listed["total"] == 0
    # And the cancel works once the store does.
    response = await client.post(f"/api/v1/tasks/{task_id}/cancel", headers=auth())
    assert response.status == 200


# --- 3. a Content-Encoding that is a lie ----------------------------------------------------------
@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
@pytest.mark.parametrize("path", [CREATE, V2_CREATE, "/_mock/clock"])
async def test_a_body_whose_content_encoding_is_a_lie_is_a_400(any_client, path, encoding):
    data = json.dumps(kf2v_body() if path != "/_mock/clock" else {"advance_seconds": 1}).encode()
    response = await any_client.post(path, data=data,
                                     headers=create_headers(**{"Content-Encoding": encoding}))
    assert_catalogue_error(response.status, await response.json(), "invalid_body")
    assert any_client.emulator.store.tasks() == []


@pytest.mark.parametrize("compress", [gzip.compress, zlib.compress])
async def test_an_honest_content_encoding_is_accepted(any_client, compress):
    encoding = "gzip" if compress is gzip.compress else "deflate"
    response = await any_client.post(CREATE, data=compress(json.dumps(kf2v_body()).encode()),
                                     headers=create_headers(**{"Content-Encoding": encoding}))
    assert response.status == 200, await response.text()


# --- 4. a lone UTF-16 surrogate -------------------------------------------------------------------
@pytest.mark.parametrize("field, extend", [("prompt", True), ("prompt", False),
                                           ("negative_prompt", True)])
async def test_a_lone_surrogate_in_a_prompt_is_a_400_with_or_without_a_data_dir(any_client, field,
                                                                               extend):
    body = kf2v_body()
    body["input"][field] = "a cat \ud800 jumps"
    body["parameters"]["prompt_extend"] = extend
    status, answer = await create(any_client, body)  # json.dumps escapes it: valid JSON
    assert status == 400, answer
    assert (answer["code"], answer["message"]) == (
        "InvalidParameter", f"The type or value of input.{field} is out of definition.")
    assert any_client.emulator.store.tasks() == []


async def test_a_lone_surrogate_in_a_fault_rule_is_kept_and_echoed_escaped(any_client):
    # Admin input is stored as sent (ASCII JSON in SQLite) and answered \u-escaped, never a 500.
    rule = ('{"match": {"endpoint": "create", "prompt_regex": "\\ud800|cat"}, '
            '"error": {"code": "X.Y", "status": 400, "message": "m\\udc00"}}')
    response = await any_client.post("/_mock/faults", data=rule)
    assert response.status == 200, await response.text()
    assert (await response.json())["match"]["prompt_regex"] == "\ud800|cat"
    listed = await (await any_client.get("/_mock/faults")).json()
    assert listed["faults"][0]["error"]["message"] == "m\udc00"
    status, answer = await create(any_client)
    assert (status, answer["code"], answer["message"]) == (400, "X.Y", "m\udc00")


async def test_a_lone_surrogate_in_a_task_failure_rule_fails_the_task_the_same_way(any_client):
    rule = '{"task_failure": {"code": "X.Y", "message": "m\\udc00", "at": "start"}}'
    assert (await any_client.post("/_mock/faults", data=rule)).status == 200
    status, answer = await create(any_client)
    assert status == 200, answer
    any_client.emulator.clock.advance(5)
    output = (await query(any_client, answer["output"]["task_id"]))["output"]
    assert (output["task_status"], output["code"], output["message"]) == ("FAILED", "X.Y",
                                                                          "m\udc00")


async def test_a_proper_surrogate_pair_is_fine(any_client):
    body = kf2v_body()
    body["input"]["prompt"] = "a cat \U0001F408 jumps"  # an astral character, a pair in JSON
    status, answer = await create(any_client, body)
    assert status == 200, answer


# --- 5. an Expires no datetime can hold -----------------------------------------------------------
@pytest.mark.parametrize("expires, code", [("-99999999999999999", "AccessDenied"),
                                           ("-1", "AccessDenied"),
                                           ("99999999999999999", "SignatureDoesNotMatch"),
                                           ("9" * 5000, "SignatureDoesNotMatch")])
async def test_an_absurd_expires_is_an_oss_403_without_authentication(client, expires, code):
    link = await succeeded_task(client)
    response = await client.get(with_query(link, Expires=expires))
    assert response.status == 403
    text = await response.text()
    assert f"<Code>{code}</Code>" in text
    if code == "AccessDenied":
        assert "Request has expired." in text


# --- 6. a Range number of thousands of digits -----------------------------------------------------
@pytest.mark.parametrize("header", ["bytes=" + "9" * 5000 + "-", "bytes=0-" + "9" * 5000,
                                    "bytes=-" + "9" * 5000,
                                    "bytes=" + "1" * 4000 + "-" + "2" * 4000])
async def test_a_range_with_a_huge_number_serves_the_whole_object(client, header):
    link = await succeeded_task(client)
    response = await client.get(link["path_qs"], headers={"Range": header})
    assert response.status == 200
    assert await response.read() == link["file"].read_bytes()


async def test_leading_zeros_do_not_make_a_range_number_huge(client):
    link = await succeeded_task(client)
    response = await client.get(link["path_qs"], headers={"Range": "bytes=" + "0" * 5000 + "5-"})
    assert response.status == 206
    assert await response.read() == link["file"].read_bytes()[5:]


# --- 7. IPv4 addresses inside IPv6 spellings ------------------------------------------------------
EMBEDDED = {
    "2002:a9fe:a9fe::": "169.254.169.254",          # 6to4
    "2002:7f00:1::1": "127.0.0.1",                   # 6to4
    "2001:0:a9fe:a9fe::1": "169.254.169.254",        # Teredo, server part
    "2001:0:4136:e378:0:0:80ff:fffe": "127.0.0.1",   # Teredo, client part (inverted bits)
    "64:ff9b::a9fe:a9fe": "169.254.169.254",         # NAT64, well-known prefix
    "64:ff9b::7f00:1": "127.0.0.1",                  # NAT64 (was judged as loopback: allowed)
    "64:ff9b:1::a9fe:a9fe": "169.254.169.254",       # NAT64, local-use prefix
    "::a9fe:a9fe": "169.254.169.254",                # IPv4-compatible (deprecated)
    "::ffff:0:a9fe:a9fe": "169.254.169.254",         # IPv4-translated (SIIT)
    "2400:cb00::5efe:a9fe:a9fe": "169.254.169.254",  # ISATAP interface id
}


@pytest.mark.parametrize("spelling", sorted(EMBEDDED))
def test_ipv6_spellings_of_an_ipv4_address_are_refused(spelling):
    # Under the most permissive settings: the address inside is metadata, link-local or loopback,
    # and a tunnel or translator would carry the connection off this machine to it.
    rules = UrlRules(allow_private=True, allow_loopback=True)
    reason = rules.refusal(ipaddress.ip_address(spelling))
    assert reason is not None and EMBEDDED[spelling] in reason, (spelling, reason)


def test_ipv4_mapped_loopback_is_still_loopback():
    # ::ffff:a.b.c.d on a dual-stack socket really is the IPv4 address: loopback stays allowed.
    assert UrlRules().refusal(ipaddress.ip_address("::ffff:127.0.0.1")) is None
    assert UrlRules(allow_loopback=False).refusal(ipaddress.ip_address("::ffff:127.0.0.1"))


def test_a_public_6to4_address_is_judged_like_any_public_one():
    assert UrlRules().refusal(ipaddress.ip_address("2002:808:808::1")) is None  # 8.8.8.8 inside


@pytest.mark.parametrize("spelling", ["2002:a9fe:a9fe::", "2002:7f00:1::1", "64:ff9b::7f00:1",
                                      "2001:0:4136:e378:0:0:80ff:fffe"])
async def test_a_create_with_such_a_url_is_refused_without_connecting(client, connects, spelling):
    url = f"http://[{spelling}]:8080/first.png"
    with pytest.raises(UrlRefused):
        UrlRules().check_url(__import__("yarl").URL(url))
    status, answer = await create(client, body_with(url))
    assert_catalogue_error(status, answer, "media_download_failed")
    assert not [a for a in connects if ":" in a and not a.startswith("::1")], connects


# --- smaller: a client that disconnects mid-body --------------------------------------------------
@pytest.fixture
async def served(tmp_path):
    """``await served(**settings)`` -> (emulator, port): the app on a real loopback listener, as
    ``kf2v-mock serve`` runs it (``start_server``)."""
    runners = []

    async def start(**overrides):
        overrides.setdefault("data_dir", tmp_path / f"data{len(runners)}")
        settings = settings_for(tmp_path, beijing_port=0, singapore_port=0, **overrides)
        app = create_app(settings)
        runners.append(await start_server(app, settings))
        return app[EMULATOR], next(iter(app[EMULATOR].listener_regions))
    yield start
    for runner in runners:
        await runner.cleanup()


@pytest.mark.parametrize("in_memory", [True, False])
async def test_a_client_that_disconnects_mid_body_is_journaled_without_a_500(served, caplog,
                                                                            in_memory):
    emulator, port = await served(in_memory=in_memory)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write((f"POST {CREATE} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                  f"Authorization: Bearer {BJ_KEY}\r\nX-DashScope-Async: enable\r\n"
                  "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
                  '{"model": "wan2.2-kf2v-flash", "input": {').encode())
    await writer.drain()

    async def journaled():
        while not emulator.journal.entries(endpoint="create"):
            await asyncio.sleep(0.01)
        return emulator.journal.entries(endpoint="create")
    with caplog.at_level(logging.INFO, logger="kf2v_mock"):
        # The handler is reading the body when the client goes (the body can never complete).
        await asyncio.sleep(0.05)
        writer.transport.abort()
        entries = await asyncio.wait_for(journaled(), 10)
    assert [(e["status"], e["code"]) for e in entries] == [(None, None)]  # no answer: it left
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert emulator.store.tasks() == []


# --- smaller: data dirs that cannot be used fail closed, in one line ------------------------------
def test_a_zero_length_state_file_is_refused(tmp_path):
    store = SqliteStore(tmp_path)
    store.close()
    (tmp_path / DB_NAME).write_bytes(b"")
    with pytest.raises(DataDirError, match="empty"):
        SqliteStore(tmp_path)


def test_a_corrupted_state_file_is_refused(tmp_path):
    store = SqliteStore(tmp_path)
    store.close()
    (tmp_path / DB_NAME).write_bytes(b"this is not a database at all" * 200)
    with pytest.raises(DataDirError, match="cannot be read as kf2v-mock state") as info:
        SqliteStore(tmp_path)
    assert "\n" not in str(info.value)


def test_a_state_file_with_damaged_pages_is_refused(tmp_path):
    store = SqliteStore(tmp_path)
    for n in range(200):
        store.put_meta(f"m{n}", "x" * 500)
    store.close()
    data = bytearray((tmp_path / DB_NAME).read_bytes())
    data[4096 * 2:4096 * 4] = b"\xa5" * 8192  # garble two pages, keep the header
    (tmp_path / DB_NAME).write_bytes(bytes(data))
    with pytest.raises(DataDirError):
        SqliteStore(tmp_path)


def test_a_read_only_state_file_is_found_at_once(tmp_path, monkeypatch):
    """As on a read-only mount (root ignores file modes, so SQLite is made to open it read-only):
    refused when the store opens, not at the first request, and one line on the command line
    (tests/test_startup.py runs real permission cases)."""
    SqliteStore(tmp_path).close()
    real = sqlite3.connect
    monkeypatch.setattr(sqlite3, "connect", lambda path, **kw: real(
        f"file:{path}?mode=ro", uri=True, **{k: v for k, v in kw.items() if k != "uri"}))
    with pytest.raises(sqlite3.OperationalError, match="readonly") as info:
        SqliteStore(tmp_path)
    line = data_dir_problem(info.value, settings_for(tmp_path, data_dir=tmp_path))
    assert "is not writable" in line and "\n" not in line


def test_a_data_dir_that_is_a_file_is_refused_in_one_line(tmp_path):
    (tmp_path / "data").write_text("a file")
    with pytest.raises(OSError) as info:
        SqliteStore(tmp_path / "data")
    line = data_dir_problem(info.value, settings_for(tmp_path, data_dir=tmp_path / "data"))
    assert "a file is in the way" in line


def test_a_state_file_that_is_a_directory_is_refused(tmp_path):
    (tmp_path / DB_NAME).mkdir()
    with pytest.raises(DataDirError):
        SqliteStore(tmp_path)


def test_a_fresh_data_dir_never_leaves_an_empty_state_file(tmp_path, monkeypatch):
    """The state file appears complete or not at all, so an empty one always means damage."""
    real = SqliteStore._create_schema

    def crash(self, db):
        raise KeyboardInterrupt  # as if killed while the fresh file was being made
    monkeypatch.setattr(SqliteStore, "_create_schema", crash)
    with pytest.raises(KeyboardInterrupt):
        SqliteStore(tmp_path)
    assert not (tmp_path / DB_NAME).exists()
    monkeypatch.setattr(SqliteStore, "_create_schema", real)
    SqliteStore(tmp_path).close()
    assert (tmp_path / DB_NAME).stat().st_size > 0


def test_unusable_data_dirs_are_one_line_on_the_command_line(tmp_path):
    from mock_server.testing.serve_process import ServeError, ServeProcess
    data = tmp_path / "data"
    data.mkdir()
    (data / DB_NAME).write_bytes(b"garbage" * 1000)
    process = ServeProcess(data_dir=data, workdir=tmp_path / "work")
    with pytest.raises(ServeError):
        process.start()
    logs = process.logs()
    assert "Traceback" not in logs, logs
    assert "cannot be read as kf2v-mock state" in logs
    assert process.stop() == 2  # a start-up problem (issue 14: one line, status 2)

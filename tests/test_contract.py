"""The contract itself: a valid OpenAPI 3.1 document that allows its own documented examples and
refuses what it does not document; the check that holds the emulator's answers to it; the parity
suite's one-marker rule; and contract/PARITY.md being current."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from openapi_spec_validator import validate

from contract import parity
from contract.schema import load_contract
from mock_server.api import task_json as views
from tests import contract_check
from tests.conftest import BJ_KEY, auth, create

REPO = Path(__file__).resolve().parent.parent


def test_the_contract_is_valid_openapi_3_1():
    validate(load_contract().document)


def _json_examples():
    contract = load_contract()
    doc = contract.document
    shared = doc["components"]["responses"]
    for template, item in doc["paths"].items():
        for method, op in item.items():
            if not isinstance(op, dict) or "responses" not in op:
                continue
            for status, response in op["responses"].items():
                ref = response.get("$ref")
                response = shared[ref.rsplit("/", 1)[1]] if ref else response
                media = response.get("content", {}).get("application/json", {})
                for name, example in media.get("examples", {}).items():
                    code = 400 if status == "4XX" else 500 if status == "5XX" else int(status)
                    path = template.replace("{task_id}", "0385dc79")
                    yield pytest.param(method.upper(), path, code, example["value"],
                                       id=f"{op['operationId']}-{status}-{name}")


@pytest.mark.parametrize("method, path, status, body", list(_json_examples()))
def test_every_documented_example_is_allowed(method, path, status, body):
    assert load_contract().json_errors(method, path, status, body) == []


def test_every_documented_request_example_is_allowed():
    body = load_contract().document["components"]["requestBodies"]["CreateTask"]
    for example in body["content"]["application/json"]["examples"].values():
        assert load_contract().schema_errors("CreateTaskRequest", example["value"]) == []


@pytest.mark.parametrize("method, path, status, body, complaint", [
    ("GET", "/api/v1/tasks/t", 200,
     {"request_id": "r", "output": {"task_id": "t", "task_status": "PENDING", "video_url": "u"}},
     "no schema matches"),
    ("GET", "/api/v1/tasks/t", 200,
     {"request_id": "r", "output": {"task_id": "t", "task_status": "SUCCEEDED", "video_url": "u"}},
     "no schema matches"),
    ("GET", "/api/v1/tasks/t", 200,
     {"request_id": "r", "output": {"task_id": "t", "task_status": "SUSPENDED"}}, "no schema"),
    ("POST", "/api/v1/services/aigc/image2video/video-synthesis", 200,
     {"request_id": "r", "output": {"task_id": "t", "task_status": "RUNNING"}}, "PENDING"),
    ("POST", "/api/v1/tasks/t/cancel", 400, {"request_id": "r", "code": "X"}, "'message'"),
    ("GET", "/api/v1/tasks", 200, {"request_id": "r", "total": 0, "data": []}, "'total_page'"),
    ("GET", "/api/v1/nowhere", 200, {}, "no operation"),
    ("GET", "/api/v1/nowhere", 404, {"code": "X", "message": "m"}, "'request_id'"),
])
def test_the_contract_refuses_undocumented_answers(method, path, status, body, complaint):
    errors = load_contract().json_errors(method, path, status, body)
    assert errors and complaint in " ".join(errors)


def test_oss_xml_errors_are_checked():
    contract = load_contract()
    good = ("<?xml version='1.0'?><Error><Code>AccessDenied</Code><Message>Request has expired."
            "</Message><RequestId>67A0301DFD9B3D32381FFE63</RequestId><HostId>h</HostId>"
            "<EC>0002-00000069</EC></Error>")
    assert contract.xml_errors(403, good) == []
    assert contract.xml_errors(403, good.replace("<HostId>h</HostId>", ""))
    assert contract.xml_errors(403, "<Oops/>")
    assert contract.xml_errors(403, "{}")


async def test_an_answer_outside_the_contract_is_recorded_against_the_test(client, monkeypatch):
    status, body = await create(client)
    assert status == 200
    real_task_body = views.task_body

    def with_extra_field(*args, **kwargs):
        return {**real_task_body(*args, **kwargs), "debug": True}

    monkeypatch.setattr("mock_server.api.handlers.task_body", with_extra_field)
    response = await client.get(f"/api/v1/tasks/{body['output']['task_id']}", headers=auth(BJ_KEY))
    assert response.status == 200
    violations = contract_check.take_violations()  # taken here, so this test itself passes
    assert len(violations) == 1 and "debug" in violations[0]
    # Admin answers are not the real API's and are not checked.
    await client.get("/_mock/tasks")
    assert contract_check.take_violations() == []


# --- the parity suite's marker rule ----------------------------------------------------------------
MARKER_CONFTEST = """
from pathlib import Path
from contract import parity

def pytest_configure(config):
    parity.register_markers(config)

def pytest_collection_modifyitems(config, items):
    parity.check_markers(items, Path(__file__).parent, parity.assumption_topics())
"""


@pytest.mark.parametrize("decorators, why", [
    (["@pytest.mark.parity_documented(source='the page')"], None),
    (["@pytest.mark.parity_emulator_only(reason='ours', assumptions=['Timing'])"], None),
    (["@pytest.mark.parity_verified(date='2026-11-25', region='cn-beijing')"], None),
    ([], "needs exactly one parity marker, has none"),
    (["@pytest.mark.parity_documented(source='a')", "@pytest.mark.parity_emulator_only(reason='b')"],
     "needs exactly one parity marker, has parity_emulator_only, parity_documented"),
    (["@pytest.mark.parity_verified(region='cn-beijing')"], "parity_verified needs date="),
    (["@pytest.mark.parity_documented(source='a', assumptions=['No such row'])"],
     "assumption 'No such row' is not a row of docs/assumptions.md"),
])
def test_each_parity_test_needs_exactly_one_marker(pytester, decorators, why):
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makeconftest(MARKER_CONFTEST)
    pytester.makepyfile(test_one="import pytest\n\n" + "\n".join(decorators)
                        + "\ndef test_it():\n    pass\n")
    pytester.syspathinsert(str(REPO))
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    if why is None:
        result.assert_outcomes(passed=1)
    else:
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(["*parity marker check failed:", f"*test_one.py::test_it: {why}*"])


def test_parity_md_is_current(tmp_path):
    fresh = tmp_path / "PARITY.md"
    subprocess.run([sys.executable, "-m", "pytest", "contract", "--collect-only", "-q",
                    "-p", "no:cacheprovider", "--parity-md", str(fresh)],
                   cwd=REPO, check=True, capture_output=True, timeout=120)
    committed = (REPO / "contract" / "PARITY.md").read_text(encoding="utf-8")
    assert fresh.read_text(encoding="utf-8") == committed, (
        "contract/PARITY.md is stale: python -m pytest contract --collect-only -q "
        "--parity-md contract/PARITY.md")


def test_parity_md_lists_every_parity_test_with_its_marker():
    text = (REPO / "contract" / "PARITY.md").read_text(encoding="utf-8")
    assert "| `test_parity_time.py::test_a_third_task_waits_pending_while_two_run` |" in text
    assert "| emulator_only |" in text and "| documented |" in text
    linked = set(re.findall(r"\[([^\]]+)\]\(\.\./docs/assumptions\.md\)", text))
    linked.discard("docs/assumptions.md")
    assert linked and linked <= parity.assumption_topics()

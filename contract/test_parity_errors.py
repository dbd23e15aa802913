"""The error catalogue entries a plain request can reach: keys, the async header, the body.

None of these creates a task, so they cost nothing against the real service.
"""

from __future__ import annotations

import pytest

from contract.targets import DOC_PROMPT

NO_KEY = (401, "InvalidApiKey", "No API-key provided.")
BAD_KEY = (401, "InvalidApiKey", "Invalid API-key provided.")
SYNC = (403, "AccessDenied", "current user api does not support synchronous calls")
BAD_BODY = (400, "InvalidParameter", "Required body invalid, check the request body format.")
NO_MODEL = (400, "InvalidParameter", "Model not exist.")
INVALID_KEY = "sk-kf2v-contract-not-a-key"

# name -> (how to send it, expected, documented example in contract/openapi.yaml)
CREATE_CASES = {
    "no_key": (dict(key=None), NO_KEY, "no_key"),
    "invalid_key": (dict(key=INVALID_KEY), BAD_KEY, "invalid_key"),
    "no_async_header": (dict(async_header=False), SYNC, "sync_call"),
    "key_checked_before_async_header": (dict(key=None, async_header=False), NO_KEY, "no_key"),
    "body_not_json": (dict(raw=b"{not json"), BAD_BODY, "bad_body"),
}


def assert_error(reply, expected) -> None:
    assert (reply.status, reply.body["code"], reply.body["message"]) == expected, reply.body
    assert set(reply.body) == {"request_id", "code", "message"}
    assert reply.headers["Content-Type"].startswith("application/json")


@pytest.mark.parity_documented(
    source="api-facts §0/§4.2/§5: 401 InvalidApiKey, 403 AccessDenied, 400 InvalidParameter",
    assumptions=["Missing async header message", "Check order on create"])
@pytest.mark.parametrize("case", list(CREATE_CASES))
def test_create_errors(api, snap, case):
    """Create refuses a missing or bad key, a missing async header and a non-JSON body."""
    how, expected, example = CREATE_CASES[case]
    reply = api.create(**how)
    assert_error(reply, expected)
    snap.match(case, reply.body, documented=("createTask", "4XX", example))


@pytest.mark.parity_documented(source="api-facts §5: Model not exist.")
def test_unknown_model(api, snap):
    """A model the region does not serve answers 400 "Model not exist."."""
    body = api.body()
    body["model"] = "wan9.9-kf2v-none"
    reply = api.create(body)
    assert_error(reply, NO_MODEL)
    snap.match("model_not_exist", reply.body, documented=("createTask", "4XX", "model_not_exist"))


@pytest.mark.parity_documented(source="[SEED]: Beijing and Singapore keys are separate",
                               assumptions=["Wrong-region key"])
def test_a_key_is_refused_in_the_other_region(api, target):
    """The region's key sent to the other region's endpoint gets 401 InvalidApiKey."""
    reply = api.create(base_url=target.other_region_base_url)
    assert_error(reply, BAD_KEY)


@pytest.mark.parity_documented(source="[SEED]/[TASKS]: every task endpoint needs the key")
@pytest.mark.parametrize("call", ["query", "list", "cancel"])
def test_task_endpoints_need_a_key(api, call):
    """Query, list and cancel answer 401 without a key and with a bad one."""
    send = {"query": lambda key: api.query("0385dc79-5ff8-4d82-bcb6-000000000000", key=key),
            "list": lambda key: api._send("GET", "/tasks", key=key),
            "cancel": lambda key: api.cancel("0385dc79-5ff8-4d82-bcb6-000000000000", key=key)}[call]
    assert_error(send(None), NO_KEY)
    assert_error(send(INVALID_KEY), BAD_KEY)


@pytest.mark.parity_documented(source="[TASKS]: the list range must not exceed 24 hours",
                               assumptions=["List range over 24 h or bad time format"])
def test_list_range_over_24_hours(api):
    """A list window wider than 24 hours is refused with 400 InvalidParameter."""
    reply = api.list(start_time="20260101000000", end_time="20260102000001")
    assert reply.status == 400 and reply.body["code"] == "InvalidParameter", reply.body


@pytest.mark.parity_documented(source="[PY] the SDK turns error answers into status_code/code/message")
def test_sdk_reports_errors_as_documented(sdk, target):
    """The SDK hands a refused create back with the status, code and message of the answer."""
    from fixtures.frames import frame_data_url
    frames = dict(first_frame_url=frame_data_url(640, 480, seed=1, fmt="JPEG"),
                  last_frame_url=frame_data_url(640, 480, seed=2, fmt="JPEG"))
    rsp = sdk.VideoSynthesis.async_call(api_key=INVALID_KEY, model=target.model,
                                        prompt=DOC_PROMPT, **frames)
    assert (rsp.status_code, rsp.code, rsp.message) == BAD_KEY
    assert rsp.request_id
    rsp = sdk.VideoSynthesis.async_call(api_key=target.api_key, model="wan9.9-kf2v-none",
                                        prompt=DOC_PROMPT, **frames)
    assert (rsp.status_code, rsp.code, rsp.message) == NO_MODEL

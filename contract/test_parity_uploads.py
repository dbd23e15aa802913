"""The temporary-upload flow ([UPLOAD]): getPolicy, the OSS form POST, and using the oss:// URL.

Against the real service the one task created here is canceled at once (not billed if PENDING).
"""

from __future__ import annotations

import pytest
import requests

from contract.schema import load_contract
from fixtures.frames import frame_bytes


def upload(policy: dict, name: str, content: bytes, *, signature: str | None = None):
    """POST the form as the SDK does: the signed fields first, ``file`` last."""
    key = f"{policy['upload_dir']}/{name}"
    fields = [("OSSAccessKeyId", policy["oss_access_key_id"]), ("policy", policy["policy"]),
              ("Signature", signature or policy["signature"]), ("key", key),
              ("x-oss-object-acl", policy["x_oss_object_acl"]),
              ("x-oss-forbid-overwrite", policy["x_oss_forbid_overwrite"]),
              ("success_action_status", "200")]
    files = [(k, (None, v)) for k, v in fields] + [("file", (name, content, "image/jpeg"))]
    return requests.post(policy["upload_host"], files=files, timeout=60), f"oss://{key}"


@pytest.fixture
def policy(api, target, snap):
    reply = api.get_policy(target.model)
    assert reply.status == 200, reply.body
    snap.match("get_policy", reply.body, documented=("getUploadPolicy", "200", "documented"))
    return reply.body["data"]


@pytest.mark.parity_documented(source="[UPLOAD] steps 1-3 and its error table",
                               assumptions=["Uploaded objects"])
def test_upload_then_create_with_the_oss_url(api, policy):
    """An uploaded frame is usable as oss://, with X-DashScope-OssResourceResolve only."""
    first, first_url = upload(policy, "first.jpg", frame_bytes(640, 480, seed=7, fmt="JPEG"))
    last, last_url = upload(policy, "last.jpg", frame_bytes(640, 480, seed=8, fmt="JPEG"))
    assert (first.status_code, last.status_code) == (200, 200)
    assert first.content == b""
    body = api.body()
    body["input"].update(first_frame_url=first_url, last_frame_url=last_url)
    refused = api.create(body)
    assert refused.status == 400 and refused.body["code"] == "invalid_parameter_error", refused.body
    created = api.create(body, headers={"X-DashScope-OssResourceResolve": "enable"})
    assert created.status == 200 and created.body["output"]["task_status"] == "PENDING"
    api.cancel(created.body["output"]["task_id"])  # not billed if still PENDING


@pytest.mark.parity_documented(source="OSS PostObject: a bad signature is refused in XML",
                               assumptions=["Upload form errors"])
def test_upload_with_a_bad_signature_is_refused_in_oss_xml(policy):
    """A form whose signature does not match answers 403 with OSS's XML error."""
    answer, _ = upload(policy, "first.jpg", b"\xff\xd8", signature="bm90IGEgc2lnbmF0dXJl")
    assert answer.status_code == 403
    assert answer.headers["Content-Type"].startswith("application/xml")
    assert load_contract().xml_errors(403, answer.text) == []
    assert "<Code>SignatureDoesNotMatch</Code>" in answer.text


@pytest.mark.parity_documented(
    source="[UPLOAD]: a temporary URL is bound to the model it was requested for; getPolicy for "
           "qwen-vl-plus answered as recorded (R get-upload-policy)",
    assumptions=["`oss://` key that is unknown, expired, or from another account/model",
                 "getPolicy with no or unknown model"])
def test_an_upload_granted_for_another_model_is_refused_in_a_kf2v_create(api):
    """An upload through a qwen-vl-plus grant cannot be used as a kf2v frame (nothing is created)."""
    reply = api.get_policy("qwen-vl-plus")
    assert reply.status == 200, reply.body
    sent, url = upload(reply.body["data"], "first.jpg", frame_bytes(640, 480, seed=9, fmt="JPEG"))
    assert sent.status_code == 200
    body = api.body()
    body["input"].update(first_frame_url=url, last_frame_url=url)
    refused = api.create(body, headers={"X-DashScope-OssResourceResolve": "enable"})
    assert refused.status == 400, refused.body
    assert refused.body["code"] == "InvalidParameter.DataInspection"

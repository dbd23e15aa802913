"""Snapshots of normalised answers (syrupy does the storing and comparing).

Normalising replaces what differs on every call — request and task ids, times, links, signatures,
account ids, generated prompt text — with placeholders numbered in order of first appearance, so one
value keeps one placeholder across a test (the task id of the create answer is the task id of the
query answer).

Each stored snapshot is ``{"provenance": ..., "response": ...}``. Comparison looks at ``response``
only; ``provenance`` says where the stored one came from:

- ``documented: ...``: written from a documented example (contract/openapi.yaml's ``examples``) by an
  emulator run with ``--snapshot-update``, which also checks that the emulator's answer agrees;
- ``recorded: ...``: an answer of the real service, written by ``--target real --snapshot-update``.

A documented example may be amended with fields the real service was recorded sending that the
documentation's example lacks (``recorded={"output.task_metrics": (value, source)}``, from
contract/recordings.py); the provenance then names each amendment and its recording.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from syrupy.extensions.json import JSONSnapshotExtension

from contract.schema import load_contract

# key -> placeholder kind; values under these keys are replaced wherever they appear.
PLACEHOLDER_KEYS = {
    "request_id": "request_id", "task_id": "task_id",
    "submit_time": "time", "scheduled_time": "time", "end_time": "time",
    "gmt_create": "time", "start_time": "time",
    "video_url": "url", "upload_host": "url",
    "actual_prompt": "text",
    "policy": "secret", "signature": "secret", "oss_access_key_id": "secret",
    "upload_dir": "upload_dir",
    "api_key_id": "account", "caller_parent_id": "account", "caller_uid": "account",
    # OSS XML fields
    "RequestId": "request_id", "HostId": "host", "Expires": "time", "ServerTime": "time",
    "SignatureProvided": "secret",
}


class Placeholders:
    def __init__(self) -> None:
        self._seen: dict[tuple[str, Any], str] = {}
        self._counts: dict[str, int] = {}

    def of(self, kind: str, value: Any) -> str:
        if (kind, value) not in self._seen:
            self._counts[kind] = self._counts.get(kind, 0) + 1
            self._seen[(kind, value)] = f"<{kind}:{self._counts[kind]}>"
        return self._seen[(kind, value)]

    def normalise(self, data: Any, key: str | None = None) -> Any:
        if isinstance(data, dict):
            return {k: self.normalise(v, k) for k, v in data.items()}
        if isinstance(data, list):
            return [self.normalise(v, key) for v in data]
        if key in PLACEHOLDER_KEYS and data is not None:
            return self.of(PLACEHOLDER_KEYS[key], data)
        return data


def documented_shape(doc: Any, actual: Any, key: str | None = None) -> Any:
    """A documented example with placeholders in its variable fields. Documented examples are of
    unrelated calls, so their ids say nothing about identity: each variable field takes the
    placeholder the normalised ``actual`` answer has in the same place (``<kind:?>`` if none)."""
    if isinstance(doc, dict):
        other = actual if isinstance(actual, dict) else {}
        return {k: documented_shape(v, other.get(k), k) for k, v in doc.items()}
    if isinstance(doc, list):
        other = actual if isinstance(actual, list) else []
        return [documented_shape(v, other[i] if i < len(other) else None, key)
                for i, v in enumerate(doc)]
    if key in PLACEHOLDER_KEYS and doc is not None:
        kind = PLACEHOLDER_KEYS[key]
        if isinstance(actual, str) and actual.startswith(f"<{kind}:"):
            return actual
        return f"<{kind}:?>"
    return doc


def documented_example(operation_id: str, status: str, name: str) -> Any:
    """The value of a named example in contract/openapi.yaml (response ``status`` of the
    operation, following a ``$ref`` to a shared response)."""
    contract = load_contract()
    for item in contract.document["paths"].values():
        for op in item.values():
            if isinstance(op, dict) and op.get("operationId") == operation_id:
                response = op["responses"][status]
                if "$ref" in response:
                    response = contract.document["components"]["responses"][
                        response["$ref"].rsplit("/", 1)[1]]
                return response["content"]["application/json"]["examples"][name]["value"]
    raise KeyError(operation_id)


class ProvenanceJSONExtension(JSONSnapshotExtension):
    """syrupy's JSON files, compared on ``response`` alone (``provenance`` is information)."""

    def matches(self, *, serialized_data: Any, snapshot_data: Any) -> bool:
        try:
            return (json.loads(serialized_data)["response"]
                    == json.loads(snapshot_data)["response"])
        except (TypeError, ValueError, KeyError):
            return False


class Snapshots:
    """``snap.match(name, body, documented=(operation_id, status, example))`` in a test."""

    def __init__(self, snapshot, target, updating: bool):
        self.snapshot = snapshot.use_extension(ProvenanceJSONExtension)
        self.target = target
        self.updating = updating
        self.placeholders = Placeholders()

    def match(self, name: str, body: Any, *, documented: tuple[str, str, str] | None = None,
              recorded: dict[str, tuple[Any, str]] | None = None) -> None:
        actual = self.placeholders.normalise(body)
        today = date.today().isoformat()
        if self.updating and not self.target.is_emulator:
            provenance = (f"recorded: {self.target.base_url} ({self.target.region}), "
                          f"--target real --snapshot-update on {today}")
            assert self.snapshot(name=name) == {"provenance": provenance, "response": actual}
            return
        if self.updating:
            # Only documented examples may be written from an emulator run, and only when the
            # emulator agrees with them: the stored answer is the documentation's, not ours.
            assert documented is not None, (
                f"snapshot {name!r} has no documented example; record it from the real service "
                "(--target real --snapshot-update)")
            op, status, example = documented
            expected = documented_shape(documented_example(op, status, example), actual)
            provenance = (f"documented: contract/openapi.yaml {op} {status} example {example!r} "
                          f"(official kf2v API reference, edition of 2025-11-26 and its 2.2 "
                          f"update; see its summary for the page); derived {today}")
            for path, (value, source) in (recorded or {}).items():
                _set_path(expected, path, value)
                provenance += (f"; recorded: {path} as the real service sent it ({source}; "
                               f"shared/spec/real-recordings.md)")
            assert self.snapshot(name=name) == {"provenance": provenance, "response": expected}
            assert actual == expected, "the emulator disagrees with the documented example"
            return
        assert self.snapshot(name=name) == {"provenance": "(compared on response only)",
                                            "response": actual}


def _set_path(document: dict, path: str, value: Any) -> None:
    """``_set_path(d, "output.task_metrics", v)``: d["output"]["task_metrics"] = v."""
    *parents, last = path.split(".")
    for key in parents:
        document = document[key]
    document[last] = value

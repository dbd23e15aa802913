"""contract/openapi.yaml as a validator: which operation a request hit, and whether the JSON answer
is one the contract allows for that status. Used by tests/conftest.py (every emulator test) and by
the parity suite (whichever target it runs against). jsonschema + referencing do the validating;
this module only finds the right schema."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

CONTRACT_PATH = Path(__file__).with_name("openapi.yaml")
_BASE = "urn:kf2v-mock:contract"
# The OSS routes are templated on a bucket name; they never answer JSON, so only the DashScope API
# (under /api/v1) is matched for JSON validation.
_API_PREFIX = "/api/v1/"


@dataclass(frozen=True)
class Operation:
    method: str
    template: str
    operation_id: str
    spec: dict[str, Any]


class Contract:
    def __init__(self, document: dict[str, Any]):
        self.document = document
        resource = Resource.from_contents(document, default_specification=DRAFT202012)
        self._registry = Registry().with_resource(_BASE, resource)
        self._routes: list[tuple[re.Pattern[str], Operation]] = []
        for template, item in document["paths"].items():
            pattern = re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "/?$")
            for method, spec in item.items():
                if method in ("get", "post", "head", "put", "delete", "patch"):
                    self._routes.append((pattern, Operation(method.upper(), template,
                                                            spec["operationId"], spec)))
        # Literal paths before templated ones: /api/v1/tasks/x/cancel is not /tasks/{task_id}.
        self._routes.sort(key=lambda route: route[1].template.count("{"))

    def operation(self, method: str, path: str) -> Operation | None:
        for pattern, op in self._routes:
            if op.method == method.upper() and pattern.match(path):
                return op
        return None

    def response_pointer(self, op: Operation, status: int) -> str | None:
        """JSON pointer of the response object declared for ``status`` ("200", then "4XX")."""
        responses = op.spec.get("responses", {})
        for key in (str(status), f"{str(status)[0]}XX", "default"):
            if key in responses:
                escaped = op.template.replace("~", "~0").replace("/", "~1")
                return f"#/paths/{escaped}/{op.method.lower()}/responses/{key}"
        return None

    def _resolve(self, pointer: str) -> dict[str, Any]:
        node: Any = self.document
        for part in pointer.lstrip("#/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        while isinstance(node, dict) and "$ref" in node and len(node) == 1:
            node = self._resolve(node["$ref"])
        return node

    def validator(self, pointer: str) -> Draft202012Validator:
        return _validator(self, pointer)

    def json_errors(self, method: str, path: str, status: int, body: Any) -> list[str]:
        """Why ``body`` (a JSON answer to ``method path`` with ``status``) breaks the contract;
        [] when it is allowed. Paths outside the DashScope API are not checked."""
        if not path.startswith(_API_PREFIX):
            return []
        op = self.operation(method, path)
        if op is None:
            # Unknown paths and methods are not operations, but still answer the error envelope.
            if status >= 400:
                return [f"{method} {path} {status}: {e}" for e in self.schema_errors("Error", body)]
            return [f"{method} {path}: no operation in the contract"]
        pointer = self.response_pointer(op, status)
        if pointer is None:
            return [f"{op.operation_id}: status {status} is not a documented answer"]
        response = self._resolve(pointer)
        media = response.get("content", {}).get("application/json")
        if media is None:
            return [f"{op.operation_id}: status {status} is not declared as JSON"]
        # Point at the schema through the response object (it may itself be a $ref).
        ref = response_schema_ref(self, pointer)
        errors = sorted(self.validator(ref).iter_errors(body), key=lambda e: list(e.path))
        return [f"{op.operation_id} {status}: {_describe(e)}" for e in errors]

    def xml_errors(self, status: int, text: str) -> list[str]:
        """Why an OSS XML error body breaks the contract's OssError schema; [] when it is allowed."""
        try:
            root = ElementTree.fromstring(text)
        except ElementTree.ParseError as exc:
            return [f"OSS {status}: not XML ({exc})"]
        if root.tag != "Error":
            return [f"OSS {status}: root element <{root.tag}>, not <Error>"]
        fields = {child.tag: child.text or "" for child in root}
        return [f"OSS {status}: {e}" for e in self.schema_errors("OssError", fields)]

    def schema_errors(self, name: str, instance: Any) -> list[str]:
        """Validate ``instance`` against ``#/components/schemas/<name>``."""
        ref = f"{_BASE}#/components/schemas/{name}"
        return [_describe(e) for e in self.validator(ref).iter_errors(instance)]


def response_schema_ref(contract: Contract, pointer: str) -> str:
    node = contract.document
    parts = pointer.lstrip("#/").split("/")
    for part in parts:
        node = node[part.replace("~1", "/").replace("~0", "~")]
    if "$ref" in node:
        return response_schema_ref(contract, node["$ref"])
    return f"{_BASE}{pointer}/content/application~1json/schema"


@cache
def _validator(contract: Contract, ref: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": ref}, registry=contract._registry)


def _describe(error) -> str:
    where = "/".join(str(p) for p in error.absolute_path) or "<root>"
    if error.context:  # oneOf: name the deepest failure of the branch that came closest
        best = best_match(error.context)
        inner = "/".join(str(p) for p in best.absolute_path) or "<root>"
        return f"{where}: no schema matches; closest: {inner}: {best.message[:200]}"
    return f"{where}: {error.message[:300]}"


@cache
def load_contract(path: Path = CONTRACT_PATH) -> Contract:
    return Contract(yaml.safe_load(path.read_text(encoding="utf-8")))

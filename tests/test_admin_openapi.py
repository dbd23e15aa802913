"""docs/admin-openapi.yaml describes the admin API: a valid OpenAPI 3.1 document naming every
registered ``/_mock/`` route (and none that is gone), whose schemas the answers keep to. A route
added without its description fails here."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from mock_server.app import create_app
from tests.conftest import create
from tests.conftest import test_settings as settings_for

DOC_PATH = Path(__file__).resolve().parents[1] / "docs" / "admin-openapi.yaml"
METHODS = ("get", "post", "put", "delete", "patch")


@pytest.fixture(scope="module")
def document() -> dict:
    return yaml.safe_load(DOC_PATH.read_text(encoding="utf-8"))


def registered_admin_routes(tmp_path) -> set[tuple[str, str]]:
    app = create_app(settings_for(tmp_path))
    routes = set()
    for route in app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if path.startswith("/_mock") and route.method != "HEAD":  # add_get adds HEAD itself
            routes.add((route.method.lower(), path))
    return routes


def test_it_is_valid_openapi_3_1(document):
    validate(document)
    assert document["openapi"].startswith("3.1")


def test_every_admin_route_is_described_and_nothing_else(document, tmp_path):
    described = {(method, path) for path, item in document["paths"].items()
                 for method in item if method in METHODS}
    registered = registered_admin_routes(tmp_path)
    assert registered - described == set(), "add these /_mock/ routes to docs/admin-openapi.yaml"
    assert described - registered == set(), "docs/admin-openapi.yaml describes routes that are gone"


def _validator(document: dict, method: str, path: str, status: str) -> Draft202012Validator:
    base = "urn:kf2v-mock:admin"
    registry = Registry().with_resource(base, Resource.from_contents(
        document, default_specification=DRAFT202012))
    response = document["paths"][path][method]["responses"][status]
    if "$ref" in response:
        pointer = response["$ref"]
    else:
        escaped = path.replace("~", "~0").replace("/", "~1")
        pointer = f"#/paths/{escaped}/{method}/responses/{status}"
    return Draft202012Validator(
        {"$ref": f"{base}{pointer}/content/application~1json/schema"}, registry=registry)


async def test_the_answers_keep_to_the_schemas(document, client):
    status, created = await create(client)  # a task, and journal entries
    assert status == 200
    task_id, request_id = created["output"]["task_id"], created["request_id"]
    added = await client.post("/_mock/faults", json={"match": {"endpoint": "query"},
                                                      "error": {"code": "ModelUnavailable"}, "times": 1})
    calls = [("get", "/_mock/health", "/_mock/health"), ("get", "/_mock/clock", "/_mock/clock"),
             ("get", "/_mock/tasks", "/_mock/tasks"), ("get", "/_mock/faults", "/_mock/faults"),
             ("get", "/_mock/requests", "/_mock/requests"),
             ("get", "/_mock/scenarios", "/_mock/scenarios"), ("get", "/_mock/samples", "/_mock/samples"),
             ("get", "/_mock/faults/presets", "/_mock/faults/presets"),
             ("get", "/_mock/report", "/_mock/report"), ("get", "/_mock/chaos", "/_mock/chaos"),
             ("get", "/_mock/tasks/{task_id}", f"/_mock/tasks/{task_id}"),
             ("get", "/_mock/requests/{request_id}", f"/_mock/requests/{request_id}")]
    answers = [("post", "/_mock/faults", "200", await added.json())]
    for method, template, path in calls:
        response = await client.request(method.upper(), path)
        assert response.status == 200, path
        answers.append((method, template, "200", await response.json()))
    missing = await client.get("/_mock/samples/third.png")
    answers.append(("get", "/_mock/samples/{file}", "404", await missing.json()))
    for method, path, status, body in answers:
        errors = list(_validator(document, method, path, status).iter_errors(body))
        assert not errors, (path, [e.message for e in errors][:3])

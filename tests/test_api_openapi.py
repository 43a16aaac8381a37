"""The OpenAPI document: generated from the routes, complete, self-consistent, and true."""

from __future__ import annotations

import re

import pytest
from flask import jsonify

from casemgr.web.api.auth import token_required
from tests.credit_data import INTAKE

METHODS = {"get", "post", "put", "patch", "delete"}

# Every endpoint API.md promises, as METHOD path-template.
CONTRACT = [
    ("get", "/api/v1/case-types"),
    ("post", "/api/v1/cases"),
    ("get", "/api/v1/cases/{case_id}"),
    ("get", "/api/v1/tasks"),
    ("get", "/api/v1/tasks/{task_id}"),
    ("post", "/api/v1/tasks/{task_id}/claim"),
    ("post", "/api/v1/tasks/{task_id}/unclaim"),
    ("post", "/api/v1/tasks/{task_id}/assign"),
    ("post", "/api/v1/tasks/{task_id}/complete"),
    ("post", "/api/v1/tasks/bulk-complete"),
    ("post", "/api/v1/processes/validate"),
    ("post", "/api/v1/case-types/{key}/versions"),
    ("get", "/api/v1/case-types/{key}/versions"),
    ("get", "/api/v1/case-types/{key}/versions/{version}/bpmn"),
    ("post", "/api/v1/imports/{kind}"),
    ("get", "/api/v1/customers/{number}"),
    ("get", "/api/v1/reports/aging"),
    ("get", "/api/v1/reports/dso"),
    ("get", "/api/v1/openapi.json"),
]


def document(api) -> dict:
    resp = api.get("/api/v1/openapi.json")
    assert resp.status_code == 200
    assert resp.is_json
    return resp.get_json()


def operations(doc):
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                yield path, method, op


def refs(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def test_the_document_is_served_without_a_token(api):
    doc = document(api)
    assert doc["openapi"] == "3.1.0"
    assert doc["info"]["title"] and doc["info"]["version"]
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
    }


@pytest.mark.parametrize(("method", "path"), CONTRACT)
def test_every_contract_endpoint_is_documented(api, method, path):
    op = document(api)["paths"][path][method]
    assert op["summary"]
    assert op["responses"]


def test_every_api_route_of_the_app_is_in_the_document(api):
    doc = document(api)
    documented = {(m, p) for p, m, _ in operations(doc)}
    for rule in api.app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/"):
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (method.lower(), path) in documented


def test_a_new_route_appears_without_anyone_editing_the_document(api):
    @token_required
    def count_widgets(n: int):
        """Count the widgets of an order."""
        return jsonify({"n": n})

    api.app.add_url_rule("/api/v1/widgets/<int:n>", "widgets", count_widgets)
    op = document(api)["paths"]["/api/v1/widgets/{n}"]["get"]
    assert op["summary"] == "Count the widgets of an order."
    assert op["parameters"] == [
        {"name": "n", "in": "path", "required": True, "schema": {"type": "integer"}}
    ]
    assert op["security"] == [{"bearerAuth": []}]
    assert "401" in op["responses"]


def test_only_the_document_itself_is_open(api):
    for path, method, op in operations(document(api)):
        if path == "/api/v1/openapi.json":
            assert op["security"] == []
        else:
            assert op["security"] == [{"bearerAuth": []}], (method, path)
            assert "401" in op["responses"], (method, path)


def test_references_resolve_and_operation_ids_are_unique(api):
    doc = document(api)
    schemas = doc["components"]["schemas"]
    for target in refs(doc):
        assert target.startswith("#/components/schemas/")
        assert target.rsplit("/", 1)[-1] in schemas, target
    op_ids = [op["operationId"] for _, _, op in operations(doc)]
    assert len(op_ids) == len(set(op_ids))


def test_path_parameters_match_the_templates(api):
    for path, method, op in operations(document(api)):
        in_path = set(re.findall(r"{([^}]+)}", path))
        declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
        assert in_path == declared, (method, path)


def test_documented_status_codes_follow_the_contract(api):
    paths = document(api)["paths"]
    complete = paths["/api/v1/tasks/{task_id}/complete"]["post"]["responses"]
    assert {"200", "400", "401", "403", "404", "409", "413", "422"} <= set(complete)
    start = paths["/api/v1/cases"]["post"]
    assert {"201", "400", "401", "403", "422"} <= set(start["responses"])
    assert start["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/StartCase"
    }
    validate = paths["/api/v1/processes/validate"]["post"]
    assert "application/xml" in validate["requestBody"]["content"]
    assert {"200", "401", "403", "413"} == set(validate["responses"])
    bpmn = paths["/api/v1/case-types/{key}/versions/{version}/bpmn"]["get"]["responses"]["200"]
    assert "application/xml" in bpmn["content"]


def test_the_inbox_parameters_and_total_header_are_documented(api):
    inbox = document(api)["paths"]["/api/v1/tasks"]["get"]
    params = {p["name"]: p for p in inbox["parameters"]}
    assert set(params) == {"case_type", "role", "assignee", "overdue", "q", "sort", "limit",
                           "offset"}  # fmt: skip
    assert params["sort"]["schema"]["enum"] == ["due_at", "-created_at", "-amount"]
    assert params["limit"]["schema"]["default"] == 50
    assert "X-Total-Count" in inbox["responses"]["200"]["headers"]


def test_the_schemas_describe_what_the_api_answers(api):
    """The documented required keys are present in real answers, so the document is true."""
    schemas = document(api)["components"]["schemas"]
    resp = api.as_("spec").post(
        "/api/v1/cases", json={"case_type": "credit_application", "data": INTAKE}
    )
    case = resp.get_json()
    assert set(schemas["Case"]["required"]) <= set(case)
    assert set(case) <= set(schemas["Case"]["properties"])
    task = case["tasks"][0]
    assert set(schemas["TaskSummary"]["required"]) <= set(task)
    assert set(task) <= set(schemas["TaskSummary"]["properties"])
    assert set(schemas["CaseEvent"]["required"]) <= set(case["events"][0])
    detail = api.as_("spec").get(f"/api/v1/tasks/{task['id']}").get_json()
    field = detail["form"]["fields"][0]
    assert set(schemas["FormField"]["required"]) == set(field)
    case_type = api.as_("spec").get("/api/v1/case-types").get_json()[0]
    assert set(schemas["CaseType"]["required"]) == set(case_type)


def test_the_document_passes_an_openapi_validator_when_one_is_installed(api):
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(document(api))

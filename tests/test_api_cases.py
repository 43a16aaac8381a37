"""Starting and reading cases over the API (API.md, "HTTP"): shapes and every status code."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from casemgr.extensions import db
from casemgr.models import Case
from tests.credit_data import INTAKE

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|\+00:00)$")
XML = {"Content-Type": "application/xml"}

# A one-task case type no sales rep may start (the contract's credit hold release).
HOLD_BPMN = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="hold_defs"
    targetNamespace="https://casemgr.dev/test">
  <bpmn:process id="credit_hold_release" name="Credit hold release" isExecutable="true">
    <bpmn:laneSet id="lanes"><bpmn:lane id="lane_spec" name="ar_specialist">
      <bpmn:flowNodeRef>review_hold</bpmn:flowNodeRef></bpmn:lane></bpmn:laneSet>
    <bpmn:startEvent id="hold_placed"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="hold_placed" targetRef="review_hold" />
    <bpmn:userTask id="review_hold" name="Review the hold">
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:userTask>
    <bpmn:sequenceFlow id="f2" sourceRef="review_hold" targetRef="released" />
    <bpmn:endEvent id="released"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>
"""


def start(api, who="spec", data=None, case_type="credit_application"):
    body = {"case_type": case_type, "data": dict(INTAKE if data is None else data)}
    return api.as_(who).post("/api/v1/cases", json=body)


def case_count(app) -> int:
    with app.app_context():
        return db.session.execute(select(func.count()).select_from(Case)).scalar_one()


@pytest.fixture
def hold_type(api):
    resp = api.as_("owner").post(
        "/api/v1/case-types/credit_hold_release/versions", data=HOLD_BPMN, headers=XML
    )
    assert resp.status_code == 201, resp.get_json()
    return api


# --- case types -----------------------------------------------------------------------------


def test_case_types_lists_published_types_at_their_newest_version(api):
    resp = api.as_("rep").get("/api/v1/case-types")
    assert resp.status_code == 200
    types = {t["key"]: t for t in resp.get_json()}
    assert types["credit_application"] == {
        "key": "credit_application",
        "name": "New-customer credit application",
        "version": 1,
    }


def test_case_types_shows_a_newly_published_version(hold_type):
    again = hold_type.as_("owner").post(
        "/api/v1/case-types/credit_hold_release/versions",
        data=HOLD_BPMN.replace("Review the hold", "Review the hold again"),
        headers=XML,
    )
    assert again.status_code == 201
    newest = again.get_json()["version"]
    assert newest >= 2  # the fixture published one before it (a seed version may precede both)
    types = {t["key"]: t for t in hold_type.as_("spec").get("/api/v1/case-types").get_json()}
    assert types["credit_hold_release"]["version"] == newest


@pytest.mark.parametrize("header", [None, "Bearer not-a-token", "Basic c3BlYzpwdw==", "Bearer "])
def test_case_types_need_a_valid_token(api, header):
    headers = {"Authorization": header} if header else {}
    resp = api.get("/api/v1/case-types", headers=headers)
    assert resp.status_code == 401
    assert resp.get_json()["error"]


# --- starting a case ------------------------------------------------------------------------


def test_a_complete_intake_starts_a_case_waiting_for_the_specialist(api):
    resp = start(api, "rep")
    assert resp.status_code == 201
    case = resp.get_json()
    assert resp.headers["Location"].endswith(f"/api/v1/cases/{case['id']}")
    assert case["case_type"] == "credit_application"
    assert case["version"] == 1
    assert case["status"] == "open"
    assert case["data"]["legal_name"] == "Acme Widgets LLC"
    assert case["started_by"] == "rep"
    assert case["customer_name"] == "Acme Widgets LLC"
    assert case["amount"] == "25000.00"
    [task] = case["tasks"]
    assert {k: task[k] for k in ("name", "role", "assignee", "state", "case_id")} == {
        "name": "specialist_review",
        "role": "ar_specialist",
        "assignee": None,
        "state": "open",
        "case_id": case["id"],
    }
    assert ISO_UTC.match(task["due_at"])
    assert task["completed_by"] is None and task["completed_at"] is None
    assert [e["kind"] for e in case["events"]][:2] == ["case_started", "task_created"]
    assert set(case["events"][0]) >= {"at", "actor", "kind", "detail"}
    assert case["events"][0]["actor"] == "rep"


def test_an_incomplete_intake_is_asked_of_the_specialist_who_started_it(api):
    partial = {k: v for k, v in INTAKE.items() if k not in ("tax_id", "bank_reference")}
    case = start(api, "spec", partial).get_json()
    [task] = case["tasks"]
    assert (task["name"], task["assignee"]) == ("complete_intake", "spec")


def test_an_incomplete_intake_from_a_sales_rep_goes_to_the_specialists_queue(api):
    case = start(api, "rep", {"legal_name": "Acme Widgets LLC"}).get_json()
    [task] = case["tasks"]
    assert (task["name"], task["role"], task["assignee"]) == (
        "complete_intake",
        "ar_specialist",
        None,
    )


def test_data_is_optional(api):
    resp = api.as_("spec").post("/api/v1/cases", json={"case_type": "credit_application"})
    assert resp.status_code == 201
    assert resp.get_json()["tasks"][0]["name"] == "complete_intake"


def test_starting_needs_a_token_before_anything_else(api):
    assert api.post("/api/v1/cases", data="not json").status_code == 401
    assert api.post("/api/v1/cases", json={"case_type": "credit_application"}).status_code == 401
    assert case_count(api.app) == 0


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"case_type=credit_application", "application/x-www-form-urlencoded"),
        (b"{not json", "application/json"),
        (b'["credit_application"]', "application/json"),
        (b'"credit_application"', "application/json"),
        (b"", "application/json"),
        (b"\xff\xfe\x00", "application/octet-stream"),
    ],
)
def test_a_body_that_is_not_a_json_object_is_400(api, body, content_type):
    resp = api.as_("spec").post("/api/v1/cases", data=body, headers={"Content-Type": content_type})
    assert resp.status_code == 400
    assert resp.get_json()["error"]
    assert case_count(api.app) == 0


def test_an_unknown_case_type_is_422(api):
    resp = start(api, "spec", case_type="no_such_type")
    assert resp.status_code == 422
    assert "case_type" in resp.get_json()["errors"]


@pytest.mark.parametrize("body", [{}, {"case_type": 7}, {"case_type": ""}, {"data": INTAKE}])
def test_a_missing_case_type_is_422(api, body):
    resp = api.as_("spec").post("/api/v1/cases", json=body)
    assert resp.status_code == 422
    assert resp.get_json()["errors"]["case_type"]


@pytest.mark.parametrize("data", [[], "x", 5, True])
def test_data_that_is_not_an_object_is_422(api, data):
    resp = api.as_("spec").post(
        "/api/v1/cases", json={"case_type": "credit_application", "data": data}
    )
    assert resp.status_code == 422
    assert resp.get_json()["errors"]["data"]
    assert case_count(api.app) == 0


def test_wrong_values_are_422_by_field_and_nothing_is_started(api):
    resp = start(api, "spec", dict(INTAKE, tax_id="123", contact_email="nope"))
    assert resp.status_code == 422
    body = resp.get_json()
    assert set(body["errors"]) == {"tax_id", "contact_email"}
    assert all(isinstance(m, str) for msgs in body["errors"].values() for m in msgs)
    assert case_count(api.app) == 0


def test_a_sales_rep_may_not_start_a_credit_hold_release(hold_type):
    resp = start(hold_type, "rep", {}, case_type="credit_hold_release")
    assert resp.status_code == 403
    assert resp.get_json()["error"]
    assert case_count(hold_type.app) == 0
    assert start(hold_type, "spec", {}, case_type="credit_hold_release").status_code == 201


def test_forbidden_wins_over_invalid_data(hold_type):
    resp = hold_type.as_("rep").post(
        "/api/v1/cases", json={"case_type": "credit_hold_release", "data": ["x"]}
    )
    assert resp.status_code == 403


@pytest.mark.parametrize("who", ["owner"])
def test_roles_that_start_nothing_get_403(api, who):
    assert start(api, who).status_code == 403


def test_a_body_over_the_size_limit_is_413_json(api):
    api.app.config["MAX_CONTENT_LENGTH"] = 2000
    resp = start(api, "spec", dict(INTAKE, address="x" * 5000))
    assert resp.status_code == 413
    assert resp.is_json and resp.get_json()["error"]
    assert case_count(api.app) == 0


# --- reading a case -------------------------------------------------------------------------


def test_the_case_reads_back_as_it_was_answered(api):
    created = start(api, "spec").get_json()
    resp = api.as_("spec").get(f"/api/v1/cases/{created['id']}")
    assert resp.status_code == 200
    case = resp.get_json()
    assert case == created
    assert {"id", "case_type", "version", "status", "data", "tasks", "events"} <= set(case)
    assert ISO_UTC.match(case["created_at"])
    assert all(ISO_UTC.match(e["at"]) for e in case["events"])
    ids = [e["id"] for e in case["events"]]
    assert ids == sorted(ids)


def test_an_unknown_case_is_404(api):
    resp = api.as_("mgr").get("/api/v1/cases/999999")
    assert resp.status_code == 404
    assert resp.get_json()["error"]


def test_reading_a_case_needs_a_token(api):
    created = start(api, "spec").get_json()
    assert api.get(f"/api/v1/cases/{created['id']}").status_code == 401
    assert api.get("/api/v1/cases/999999").status_code == 401


@pytest.mark.parametrize(
    ("who", "status"),
    [("mgr", 200), ("ctrl", 200), ("admin", 200), ("spec2", 200), ("rep", 403), ("owner", 403)],
)
def test_who_may_read_someone_elses_case(api, who, status):
    not_reps = {k: v for k, v in INTAKE.items() if k != "sales_rep"}
    created = start(api, "spec", not_reps).get_json()
    resp = api.as_(who).get(f"/api/v1/cases/{created['id']}")
    assert resp.status_code == status
    if status == 403:
        assert "data" not in resp.get_json()


def test_a_sales_rep_reads_the_cases_of_their_own_customers(api):
    created = start(api, "spec").get_json()  # INTAKE names rep as the sales rep
    assert api.as_("rep").get(f"/api/v1/cases/{created['id']}").status_code == 200


# --- hostile input never gives a 500 --------------------------------------------------------


def test_an_id_beyond_any_integer_column_is_404_not_a_driver_error(api):
    huge = "9" * 25
    assert api.as_("mgr").get(f"/api/v1/cases/{huge}").status_code == 404
    assert api.as_("mgr").get(f"/api/v1/cases/{2**31}").status_code == 404
    assert api.get(f"/api/v1/cases/{huge}").status_code == 401


def test_an_odd_case_id_in_the_path_is_a_json_404(api):
    resp = api.as_("mgr").get("/api/v1/cases/abc")
    assert resp.status_code == 404
    assert resp.is_json


def test_a_deeply_nested_json_body_is_400(api):
    deep = b"[" * 100_000 + b"]" * 100_000
    resp = api.as_("spec").post(
        "/api/v1/cases", data=deep, headers={"Content-Type": "application/json"}
    )
    assert resp.status_code == 400


def test_an_absurd_amount_is_422_not_500(api):
    resp = start(api, "spec", {"legal_name": "Acme", "requested_limit": "1e400"})
    assert resp.status_code == 422
    assert resp.get_json()["errors"]["requested_limit"]

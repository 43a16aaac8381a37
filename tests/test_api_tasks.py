"""Tasks over the API: the inbox, one task, claim, unclaim, assign, complete, bulk-complete.

Each status code of the contract is checked where it applies, and every refusal is checked
to change nothing a user could see: the task stays open, unclaimed, and no data is kept.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from casemgr.accounts import find_user
from casemgr.engine import cases as engine
from casemgr.engine import clock
from casemgr.web.api import tasks as tasks_api
from tests.credit_data import INTAKE, review

XML = {"Content-Type": "application/xml"}
APPROVE = {"decision": "approve"}
SUMMARY_KEYS = {"id", "case_id", "case_type", "name", "title", "role", "assignee", "state",
                "due_at", "completed_by", "completed_at"}  # fmt: skip

NO_FORM_BPMN = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="chk_defs"
    targetNamespace="https://casemgr.dev/test">
  <bpmn:process id="quick_check" name="Quick check" isExecutable="true">
    <bpmn:laneSet id="lanes"><bpmn:lane id="lane_spec" name="ar_specialist">
      <bpmn:flowNodeRef>check_it</bpmn:flowNodeRef></bpmn:lane></bpmn:laneSet>
    <bpmn:startEvent id="begin"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="begin" targetRef="check_it" />
    <bpmn:userTask id="check_it" name="Check it">
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:userTask>
    <bpmn:sequenceFlow id="f2" sourceRef="check_it" targetRef="done" />
    <bpmn:endEvent id="done"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>
"""


# --- helpers --------------------------------------------------------------------------------


def start(api, who="rep", data=None, case_type="credit_application"):
    body = {"case_type": case_type, "data": dict(INTAKE if data is None else data)}
    resp = api.as_(who).post("/api/v1/cases", json=body)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def open_task(case, name):
    found = [t for t in case["tasks"] if t["state"] == "open" and t["name"] == name]
    assert len(found) == 1, [(t["name"], t["state"]) for t in case["tasks"]]
    return found[0]


def review_task(api, **data):
    return open_task(start(api, data=dict(INTAKE, **data)), "specialist_review")["id"]


def reviewed(api, who="spec", limit="20000.00", **data):
    """A case whose specialist (``who``) recommended ``limit``: it waits for a manager."""
    task_id = review_task(api, **data)
    resp = api.as_(who).post(f"/api/v1/tasks/{task_id}/complete", json={"data": review(limit)})
    assert resp.status_code == 200, resp.get_json()
    return open_task(resp.get_json(), "manager_approval")["id"]


def task(api, task_id, who="admin"):
    resp = api.as_(who).get(f"/api/v1/tasks/{task_id}")
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def case_of(api, task_id):
    return api.as_("admin").get(f"/api/v1/cases/{task(api, task_id)['case_id']}").get_json()


def post(api, who, task_id, action, **kw):
    return api.as_(who).post(f"/api/v1/tasks/{task_id}/{action}", **kw)


def inbox(api, who, query=""):
    resp = api.as_(who).get(f"/api/v1/tasks{query}")
    assert resp.status_code == 200, resp.get_json()
    return resp


def ids(resp):
    return [t["id"] for t in resp.get_json()]


def assert_untouched(api, task_id, data_key=None):
    """The refusal left the task open, unclaimed, and kept none of the sent data."""
    row = task(api, task_id)
    assert (row["state"], row["assignee"], row["completed_by"]) == ("open", None, None)
    if data_key:
        assert data_key not in case_of(api, task_id)["data"]


@pytest.fixture
def no_form_type(api):
    resp = api.as_("owner").post(
        "/api/v1/case-types/quick_check/versions", data=NO_FORM_BPMN, headers=XML
    )
    assert resp.status_code == 201, resp.get_json()
    return api


# --- one task -------------------------------------------------------------------------------


def test_a_task_shows_its_summary_and_its_form(api):
    task_id = review_task(api)
    resp = api.as_("spec").get(f"/api/v1/tasks/{task_id}")
    assert resp.status_code == 200
    body = resp.get_json()
    assert set(body) >= SUMMARY_KEYS
    assert (body["name"], body["role"], body["state"], body["assignee"]) == (
        "specialist_review", "ar_specialist", "open", None)  # fmt: skip
    assert body["customer_name"] == "Acme Widgets LLC"
    assert body["amount"] == "25000.00"
    assert body["form"]["key"] == "credit_review"
    fields = {f["name"]: f for f in body["form"]["fields"]}
    assert ["dnb", "Dun & Bradstreet"] in fields["bureau_source"]["choices"]
    assert fields["bureau_score"]["type"] == "integer"
    assert fields["bureau_score"]["required"] is True
    assert (fields["bureau_score"]["min"], fields["bureau_score"]["max"]) == (0, 1000)
    assert fields["review_notes"]["choices"] is None


def test_a_task_without_a_form_key_has_an_empty_form(no_form_type):
    case = start(no_form_type, "spec", {}, case_type="quick_check")
    body = task(no_form_type, open_task(case, "check_it")["id"], "spec")
    assert body["form"] == {"key": None, "fields": []}
    assert body["due_at"] is None


def test_an_unknown_task_is_404(api):
    assert api.as_("spec").get("/api/v1/tasks/424242").status_code == 404


def test_a_task_outside_your_roles_and_cases_is_403(api):
    resp = api.as_("owner").get(f"/api/v1/tasks/{review_task(api)}")
    assert resp.status_code == 403
    assert "form" not in resp.get_json()


def test_tasks_need_a_token(api):
    task_id = review_task(api)
    for path in ("/api/v1/tasks", f"/api/v1/tasks/{task_id}", "/api/v1/tasks/424242"):
        assert api.get(path).status_code == 401
    for action in ("claim", "unclaim", "assign", "complete"):
        assert api.post(f"/api/v1/tasks/{task_id}/{action}", json={}).status_code == 401
    assert api.post("/api/v1/tasks/bulk-complete", json={"tasks": [task_id]}).status_code == 401
    assert_untouched(api, task_id)


# --- claim ----------------------------------------------------------------------------------


def test_claiming_assigns_the_task_to_the_caller(api):
    task_id = review_task(api)
    resp = post(api, "spec", task_id, "claim")
    assert resp.status_code == 200
    assert resp.get_json()["assignee"] == "spec"
    assert resp.get_json()["form"]["key"] == "credit_review"
    assert post(api, "spec", task_id, "claim").status_code == 200  # claiming twice is harmless
    assert task_id not in ids(inbox(api, "spec2"))


def test_claiming_a_task_another_holds_is_409(api):
    task_id = review_task(api)
    post(api, "spec", task_id, "claim")
    resp = post(api, "spec2", task_id, "claim")
    assert resp.status_code == 409
    assert "claimed by" in resp.get_json()["error"]
    assert task(api, task_id)["assignee"] == "spec"


def test_claiming_without_the_tasks_role_is_403(api):
    task_id = review_task(api)
    assert post(api, "mgr", task_id, "claim").status_code == 403
    assert_untouched(api, task_id)


def test_claiming_against_the_four_eyes_rule_is_403(api):
    task_id = reviewed(api, who="dual")
    resp = post(api, "dual", task_id, "claim")
    assert resp.status_code == 403
    assert "four-eyes" in resp.get_json()["error"]
    assert_untouched(api, task_id)


def test_claiming_a_completed_task_is_409(api):
    task_id = review_task(api)
    post(api, "spec", task_id, "complete", json={"data": review()})
    resp = post(api, "spec2", task_id, "claim")
    assert resp.status_code == 409
    assert "already completed by" in resp.get_json()["error"]


def test_claiming_an_unknown_task_is_404(api):
    assert post(api, "spec", 424242, "claim").status_code == 404


def test_a_task_id_beyond_any_integer_column_is_404_not_a_driver_error(api):
    huge = "9" * 25
    assert api.as_("spec").get(f"/api/v1/tasks/{huge}").status_code == 404
    for action in ("claim", "unclaim", "assign", "complete"):
        assert post(api, "mgr", huge, action, json={"user": "spec"}).status_code == 404
    assert api.get(f"/api/v1/tasks/{huge}").status_code == 401


# --- unclaim --------------------------------------------------------------------------------


def test_the_assignee_gives_a_task_back_to_the_queue(api):
    task_id = review_task(api)
    post(api, "spec", task_id, "claim")
    resp = post(api, "spec", task_id, "unclaim", json={"reason": "on leave"})
    assert resp.status_code == 200
    assert resp.get_json()["assignee"] is None
    assert task_id in ids(inbox(api, "spec2"))
    last = case_of(api, task_id)["events"][-1]
    assert (last["kind"], last["detail"]["reason"]) == ("task_unclaimed", "on leave")


def test_unclaiming_needs_no_body(api):
    task_id = review_task(api)
    post(api, "spec", task_id, "claim")
    assert post(api, "spec", task_id, "unclaim").status_code == 200


def test_a_manager_may_unclaim_anyones_task(api):
    task_id = review_task(api)
    post(api, "spec", task_id, "claim")
    assert post(api, "mgr", task_id, "unclaim").status_code == 200
    assert task(api, task_id)["assignee"] is None


def test_another_specialist_may_not_unclaim_your_task(api):
    task_id = review_task(api)
    post(api, "spec", task_id, "claim")
    assert post(api, "spec2", task_id, "unclaim").status_code == 403
    assert task(api, task_id)["assignee"] == "spec"


def test_unclaiming_a_completed_task_is_409(api):
    task_id = review_task(api)
    post(api, "spec", task_id, "complete", json={"data": review()})
    assert post(api, "mgr", task_id, "unclaim").status_code == 409


def test_unclaim_status_codes_for_bad_requests(api):
    task_id = review_task(api)
    post(api, "spec", task_id, "claim")
    not_json = {"data": b"reason", "headers": {"Content-Type": "text/plain"}}
    assert post(api, "spec", task_id, "unclaim", **not_json).status_code == 400
    assert post(api, "spec", 424242, "unclaim").status_code == 404
    resp = post(api, "spec", task_id, "unclaim", json={"reason": ["x"]})
    assert resp.status_code == 422
    assert "reason" in resp.get_json()["errors"]
    assert task(api, task_id)["assignee"] == "spec"


# --- assign ---------------------------------------------------------------------------------


def test_a_manager_assigns_a_task_to_someone_holding_its_role(api):
    task_id = review_task(api)
    resp = post(api, "mgr", task_id, "assign", json={"user": "spec2"})
    assert resp.status_code == 200
    assert resp.get_json()["assignee"] == "spec2"
    assert task_id in ids(inbox(api, "spec2", "?assignee=me"))
    assert task_id not in ids(inbox(api, "spec"))


def test_only_managers_and_admins_assign(api):
    task_id = review_task(api)
    assert post(api, "spec", task_id, "assign", json={"user": "spec2"}).status_code == 403
    assert post(api, "admin", task_id, "assign", json={"user": "spec2"}).status_code == 200


@pytest.mark.parametrize("name", ["rep", "no_such_user"])
def test_assigning_to_someone_without_the_role_or_unknown_is_422(api, name):
    task_id = review_task(api)
    resp = post(api, "mgr", task_id, "assign", json={"user": name})
    assert resp.status_code == 422
    assert resp.get_json()["errors"]["user"]
    assert_untouched(api, task_id)


def test_assigning_to_someone_the_four_eyes_rule_excludes_is_422(api):
    task_id = reviewed(api, who="dual")
    resp = post(api, "admin", task_id, "assign", json={"user": "dual"})
    assert resp.status_code == 422
    assert_untouched(api, task_id)


@pytest.mark.parametrize("body", [{}, {"user": None}, {"user": 7}, {"user": ""}, {"user": ["a"]}])
def test_assign_without_a_user_name_is_422(api, body):
    task_id = review_task(api)
    resp = post(api, "mgr", task_id, "assign", json=body)
    assert resp.status_code == 422
    assert resp.get_json()["errors"]["user"]
    assert_untouched(api, task_id)


def test_assign_precedence_400_404_403_409_before_422(api):
    task_id = review_task(api)
    not_json = {"data": b"user=spec2", "headers": {"Content-Type": "text/plain"}}
    assert post(api, "mgr", task_id, "assign", **not_json).status_code == 400
    assert post(api, "mgr", 424242, "assign", json={}).status_code == 404
    assert post(api, "spec", task_id, "assign", json={}).status_code == 403
    post(api, "spec", task_id, "complete", json={"data": review()})
    assert post(api, "mgr", task_id, "assign", json={}).status_code == 409


# --- complete -------------------------------------------------------------------------------


def test_completing_an_unclaimed_task_claims_it_and_moves_the_case_on(api):
    task_id = review_task(api)
    resp = post(api, "spec", task_id, "complete", json={"data": review()})
    assert resp.status_code == 200
    case = resp.get_json()
    done = next(t for t in case["tasks"] if t["id"] == task_id)
    assert (done["state"], done["assignee"], done["completed_by"]) == ("completed", "spec", "spec")
    assert done["completed_at"].endswith(("Z", "+00:00"))
    assert case["data"]["bureau_score"] == 720
    assert open_task(case, "manager_approval")["role"] == "credit_manager"


def test_the_manager_approves_and_the_case_completes(api):
    task_id = reviewed(api)
    resp = post(api, "mgr", task_id, "complete", json={"data": APPROVE})
    assert resp.status_code == 200
    case = resp.get_json()
    assert (case["status"], case["outcome"]) == ("completed", "approved")
    assert [e["kind"] for e in case["events"]][-1] == "case_completed"


def test_a_task_without_a_form_completes_without_a_body(no_form_type):
    case = start(no_form_type, "spec", {}, case_type="quick_check")
    resp = post(no_form_type, "spec", open_task(case, "check_it")["id"], "complete")
    assert resp.status_code == 200
    assert resp.get_json()["status"] == "completed"


def test_invalid_data_is_422_by_field_and_leaves_the_task_as_it_was(api):
    task_id = reviewed(api)
    resp = post(api, "mgr", task_id, "complete", json={"data": {"decision": "decline"}})
    assert resp.status_code == 422
    body = resp.get_json()
    assert body["errors"]["comment"]
    assert all(isinstance(m, str) for m in body["errors"]["comment"])
    assert_untouched(api, task_id, data_key="decision")
    assert task_id in ids(inbox(api, "mgr2"))


def test_reducing_without_a_limit_is_422(api):
    task_id = reviewed(api)
    data = {"decision": "reduce", "comment": "too risky"}
    resp = post(api, "mgr", task_id, "complete", json={"data": data})
    assert resp.status_code == 422
    assert resp.get_json()["errors"]["approved_limit"]


def test_missing_required_fields_are_named(api):
    task_id = review_task(api)
    resp = post(api, "spec", task_id, "complete", json={"data": {}})
    assert resp.status_code == 422
    assert {"bureau_source", "bureau_score", "bureau_report_date"} <= set(resp.get_json()["errors"])
    assert_untouched(api, task_id, data_key="bureau_source")


def test_completing_without_the_tasks_role_is_403_and_changes_nothing(api):
    task_id = review_task(api)
    resp = post(api, "mgr", task_id, "complete", json={"data": review()})
    assert resp.status_code == 403
    assert_untouched(api, task_id, data_key="bureau_score")


def test_the_specialist_who_recommended_cannot_approve(api):
    task_id = reviewed(api, who="dual")
    resp = post(api, "dual", task_id, "complete", json={"data": APPROVE})
    assert resp.status_code == 403
    assert "four-eyes" in resp.get_json()["error"]
    assert_untouched(api, task_id, data_key="decision")
    assert case_of(api, task_id)["status"] == "open"
    assert post(api, "mgr", task_id, "complete", json={"data": APPROVE}).status_code == 200


def test_completing_a_completed_task_is_409_naming_who_did_it(api):
    task_id = review_task(api)
    assert post(api, "spec", task_id, "complete", json={"data": review()}).status_code == 200
    resp = post(api, "spec2", task_id, "complete", json={"data": review("5000.00")})
    assert resp.status_code == 409
    assert "already completed by Spec" in resp.get_json()["error"]
    assert case_of(api, task_id)["data"]["recommended_limit"] == "20000.00"


def test_completing_a_task_claimed_by_another_is_409(api):
    task_id = review_task(api)
    post(api, "spec", task_id, "claim")
    resp = post(api, "spec2", task_id, "complete", json={"data": review()})
    assert resp.status_code == 409
    assert "claimed by" in resp.get_json()["error"]
    row = task(api, task_id)
    assert (row["state"], row["assignee"]) == ("open", "spec")


def test_complete_status_codes_for_bad_requests(api):
    task_id = review_task(api)
    not_json = {"data": b"decision=approve", "headers": {"Content-Type": "text/plain"}}
    assert post(api, "spec", task_id, "complete", **not_json).status_code == 400
    assert post(api, "spec", task_id, "complete", json=[review()]).status_code == 400
    assert post(api, "spec", 424242, "complete", json={"data": review()}).status_code == 404
    resp = post(api, "spec", task_id, "complete", json={"data": [review()]})
    assert resp.status_code == 422
    assert resp.get_json()["errors"]["data"]
    assert_untouched(api, task_id)


def test_complete_precedence_404_403_409_before_a_malformed_data_422(api):
    task_id = review_task(api)
    bad = {"json": {"data": "approve"}}
    assert post(api, "spec", 424242, "complete", **bad).status_code == 404
    assert post(api, "mgr", task_id, "complete", **bad).status_code == 403
    post(api, "spec", task_id, "claim")
    assert post(api, "spec2", task_id, "complete", **bad).status_code == 409


def test_a_completion_over_the_size_limit_is_413_and_changes_nothing(api):
    task_id = review_task(api)
    api.app.config["MAX_CONTENT_LENGTH"] = 4000
    big = dict(review(), review_notes="n" * 5000)
    resp = post(api, "spec", task_id, "complete", json={"data": big})
    assert resp.status_code == 413
    assert resp.is_json and resp.get_json()["error"]
    assert_untouched(api, task_id, data_key="bureau_score")


def test_two_people_completing_the_same_task_at_once_one_wins(api, monkeypatch):
    """Both pass the checks before either writes; the case's version decides who wins."""
    task_id = review_task(api)
    both_checked = threading.Barrier(2, timeout=10)
    advance = engine._advance

    def advance_together(*args, **kwargs):
        both_checked.wait()
        return advance(*args, **kwargs)

    monkeypatch.setattr(engine, "_advance", advance_together)
    answers: dict[str, object] = {}

    def complete(who: str, limit: str) -> None:
        resp = post(api, who, task_id, "complete", json={"data": review(limit)})
        answers[who] = resp

    threads = [threading.Thread(target=complete, args=("spec", "20000.00")),
               threading.Thread(target=complete, args=("spec2", "15000.00"))]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    statuses = sorted(r.status_code for r in answers.values())
    assert statuses == [200, 409], {w: (r.status_code, r.get_json()) for w, r in answers.items()}
    winner = next(w for w, r in answers.items() if r.status_code == 200)
    loser = next(r for r in answers.values() if r.status_code == 409)
    assert "already completed by" in loser.get_json()["error"]
    row = task(api, task_id)
    assert (row["state"], row["completed_by"]) == ("completed", winner)
    case = case_of(api, task_id)
    assert case["data"]["recommended_limit"] == {"spec": "20000.00", "spec2": "15000.00"}[winner]
    assert len([t for t in case["tasks"] if t["name"] == "manager_approval"]) == 1


# --- bulk complete --------------------------------------------------------------------------


def test_bulk_complete_answers_each_task_as_if_alone(api):
    mine = [reviewed(api, who="spec"), reviewed(api, who="spec2")]
    own_recommendation = reviewed(api, who="dual")
    resp = api.as_("dual").post(
        "/api/v1/tasks/bulk-complete",
        json={"tasks": [*mine, own_recommendation, 424242, "x1"], "data": APPROVE},
    )
    assert resp.status_code == 200
    results = resp.get_json()["results"]
    assert {k: v["status"] for k, v in results.items()} == {
        str(mine[0]): 200,
        str(mine[1]): 200,
        str(own_recommendation): 403,
        "424242": 404,
        "x1": 404,
    }
    assert "four-eyes" in results[str(own_recommendation)]["error"]
    assert "error" not in results[str(mine[0])]
    for task_id in mine:
        assert task(api, task_id)["completed_by"] == "dual"
    assert_untouched(api, own_recommendation, data_key="decision")


def test_bulk_complete_reports_field_errors_per_task(api):
    task_id = reviewed(api)
    resp = api.as_("mgr").post(
        "/api/v1/tasks/bulk-complete", json={"tasks": [task_id], "data": {"decision": "reduce"}}
    )
    result = resp.get_json()["results"][str(task_id)]
    assert result["status"] == 422
    assert result["errors"]["comment"]
    assert_untouched(api, task_id, data_key="decision")


@pytest.mark.parametrize(
    "body",
    [{}, {"tasks": 5}, {"tasks": "1,2"}, {"tasks": {"1": 1}}, {"tasks": [1], "data": [1]}],
)
def test_bulk_complete_needs_a_list_of_tasks_and_object_data(api, body):
    resp = api.as_("mgr").post("/api/v1/tasks/bulk-complete", json=body)
    assert resp.status_code == 422
    assert set(resp.get_json()["errors"]) <= {"tasks", "data"}


def test_bulk_complete_refuses_a_body_that_is_not_json(api):
    resp = api.as_("mgr").post(
        "/api/v1/tasks/bulk-complete", data=b"1,2", headers={"Content-Type": "text/csv"}
    )
    assert resp.status_code == 400


def test_bulk_complete_of_nothing_is_an_empty_answer(api):
    resp = api.as_("mgr").post("/api/v1/tasks/bulk-complete", json={"tasks": []})
    assert (resp.status_code, resp.get_json()) == (200, {"results": {}})


@pytest.mark.parametrize("odd", ["9" * 25, "\u00b2"])
def test_bulk_complete_answers_404_for_ids_that_name_no_task(api, odd):
    task_id = reviewed(api)
    resp = api.as_("mgr").post(
        "/api/v1/tasks/bulk-complete", json={"tasks": [task_id, odd], "data": APPROVE}
    )
    assert resp.status_code == 200
    results = resp.get_json()["results"]
    assert (results[str(task_id)]["status"], results[odd]["status"]) == (200, 404)


# --- the inbox ------------------------------------------------------------------------------


def test_the_inbox_holds_my_tasks_and_my_roles_unclaimed_ones(api):
    queued = review_task(api)
    mine = review_task(api)
    theirs = review_task(api)
    manager_task = reviewed(api)
    post(api, "spec", mine, "claim")
    post(api, "spec2", theirs, "claim")
    resp = inbox(api, "spec")
    got = ids(resp)
    assert queued in got and mine in got
    assert theirs not in got and manager_task not in got
    assert resp.headers["X-Total-Count"] == str(len(got))
    assert all(set(t) >= SUMMARY_KEYS for t in resp.get_json())
    assert all(t["state"] == "open" for t in resp.get_json())
    assert ids(inbox(api, "mgr")) == [manager_task]
    assert ids(inbox(api, "owner")) == []


def test_the_inbox_leaves_out_completed_tasks(api):
    task_id = review_task(api)
    post(api, "spec", task_id, "complete", json={"data": review()})
    assert task_id not in ids(inbox(api, "spec"))


def test_a_user_with_two_roles_sees_both_queues_and_can_narrow_by_role(api):
    review_id = review_task(api)
    approval_id = reviewed(api)
    assert set(ids(inbox(api, "dual"))) == {review_id, approval_id}
    assert ids(inbox(api, "dual", "?role=credit_manager")) == [approval_id]
    assert ids(inbox(api, "dual", "?role=ar_specialist")) == [review_id]
    assert ids(inbox(api, "dual", "?role=controller")) == []


def test_assignee_filters_me_none_and_a_name(api):
    queued = review_task(api)
    mine = review_task(api)
    theirs = review_task(api)
    post(api, "spec", mine, "claim")
    post(api, "spec2", theirs, "claim")
    assert ids(inbox(api, "spec", "?assignee=me")) == [mine]
    assert ids(inbox(api, "spec", "?assignee=spec")) == [mine]
    assert ids(inbox(api, "spec", "?assignee=none")) == [queued]
    # Only a manager or admin may list another user's tasks; others get only their own.
    assert ids(inbox(api, "mgr", "?assignee=spec2")) == [theirs]
    assert ids(inbox(api, "admin", "?assignee=spec")) == [mine]
    assert ids(inbox(api, "spec", "?assignee=spec2")) == []
    assert inbox(api, "spec", "?assignee=spec2").headers["X-Total-Count"] == "0"


def test_case_type_filter(no_form_type):
    api = no_form_type
    credit = review_task(api)
    check = open_task(start(api, "spec", {}, case_type="quick_check"), "check_it")["id"]
    assert ids(inbox(api, "spec", "?case_type=quick_check")) == [check]
    assert ids(inbox(api, "spec", "?case_type=credit_application")) == [credit]


def test_overdue_shows_only_tasks_past_due(api):
    fresh = review_task(api)
    with api.app.app_context():
        with clock.as_of(datetime.now(UTC) - timedelta(days=10)):
            old = engine.start_case("credit_application", dict(INTAKE), find_user("rep"))
        old_id = old.tasks[0].id
    assert set(ids(inbox(api, "spec"))) == {fresh, old_id}
    resp = inbox(api, "spec", "?overdue=1")
    assert ids(resp) == [old_id]
    assert resp.headers["X-Total-Count"] == "1"
    assert set(ids(inbox(api, "spec", "?overdue=0"))) == {fresh, old_id}


def test_q_finds_customer_number_name_case_title_and_case_id(api):
    acme = review_task(api)
    globex = review_task(api, legal_name="Globex Corporation")
    with api.app.app_context():
        erp = engine.start_case(
            "credit_application", dict(INTAKE, customer_number="C-7788", legal_name="Initech"),
            find_user("spec"))  # fmt: skip
        erp_id, erp_case = erp.tasks[0].id, erp.id
    globex_case = task(api, globex)["case_id"]
    assert ids(inbox(api, "spec", "?q=globex")) == [globex]
    assert ids(inbox(api, "spec", "?q=ACME%20widgets")) == [acme]
    assert ids(inbox(api, "spec", "?q=C-7788")) == [erp_id]
    assert ids(inbox(api, "spec", "?q=credit%20application:%20Initech")) == [erp_id]
    assert globex in ids(inbox(api, "spec", f"?q={globex_case}"))
    assert ids(inbox(api, "spec", f"?q=%23{erp_case}")) == [erp_id]
    assert ids(inbox(api, "spec", "?q=nobody%25")) == []
    assert ids(inbox(api, "spec", "?q=_")) == []
    assert ids(inbox(api, "spec", "?q=%C2%B2")) == []


def test_sorting_by_due_date_amount_and_newest(no_form_type):
    api = no_form_type
    undated = open_task(start(api, "spec", {}, case_type="quick_check"), "check_it")["id"]
    small = review_task(api, requested_limit="1000.00")
    large = review_task(api, requested_limit="90000.00")
    with api.app.app_context(), clock.as_of(datetime.now(UTC) - timedelta(days=1)):
        earlier = (
            engine.start_case(
                "credit_application", dict(INTAKE, requested_limit="5000.00"), find_user("rep")
            )
            .tasks[0]
            .id
        )
    assert ids(inbox(api, "spec")) == [earlier, small, large, undated]
    assert ids(inbox(api, "spec", "?sort=due_at")) == [earlier, small, large, undated]
    assert ids(inbox(api, "spec", "?sort=-amount")) == [large, earlier, small, undated]
    assert ids(inbox(api, "spec", "?sort=-created_at")) == [large, small, undated, earlier]


def test_paging_with_limit_offset_and_the_total(api):
    made = [review_task(api) for _ in range(5)]
    page = inbox(api, "spec", "?limit=2&offset=1")
    assert ids(page) == made[1:3]
    assert page.headers["X-Total-Count"] == "5"
    assert ids(inbox(api, "spec", "?limit=2&offset=4")) == made[4:]
    assert ids(inbox(api, "spec", "?offset=9")) == []
    assert ids(inbox(api, "spec", "?limit=0")) == []
    assert ids(inbox(api, "spec", f"?offset={'9' * 25}")) == []
    assert inbox(api, "spec", "?limit=0").headers["X-Total-Count"] == "5"


def test_limit_defaults_to_50_and_is_capped(api, monkeypatch):
    made = [review_task(api) for _ in range(4)]
    monkeypatch.setattr(tasks_api, "DEFAULT_LIMIT", 2)
    assert ids(inbox(api, "spec")) == made[:2]
    monkeypatch.setattr(tasks_api, "MAX_LIMIT", 3)
    resp = inbox(api, "spec", "?limit=100000")
    assert ids(resp) == made[:3]
    assert resp.headers["X-Total-Count"] == "4"


def test_the_real_page_size_limits(api):
    assert (tasks_api.DEFAULT_LIMIT, tasks_api.MAX_LIMIT) == (50, 500)
    assert inbox(api, "spec", "?limit=501").status_code == 200


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?sort=amount", "sort"),
        ("?sort=due", "sort"),
        ("?role=boss", "role"),
        ("?limit=-1", "limit"),
        ("?limit=ten", "limit"),
        ("?limit=1.5", "limit"),
        ("?offset=-3", "offset"),
        ("?offset=x", "offset"),
        ("?limit=%C2%B2", "limit"),
        ("?case_type=nope", "case_type"),
        ("?overdue=yes", "overdue"),
        ("?assignee=nobody", "assignee"),
    ],
)
def test_invalid_inbox_parameters_are_422_naming_the_parameter(api, query, field):
    resp = api.as_("spec").get(f"/api/v1/tasks{query}")
    assert resp.status_code == 422
    assert field in resp.get_json()["errors"]

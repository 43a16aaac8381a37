"""Work management over the API: assign, unclaim and bulk-complete as a manager uses them, the
inbox parameters (the contract's and the added filters), follow-up dates, priority,
delegation, reassign-all, saved views and the approval inbox; status codes in the contract's
order (401, 400, 404, 403, 409, 413, 422) and refusals that change nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from casemgr.accounts import find_user
from casemgr.engine import cases as engine
from casemgr.engine import clock
from casemgr.extensions import db
from casemgr.models import Notification, TaskRecord
from tests.credit_data import INTAKE, review

# --- helpers ----------------------------------------------------------------------------------


def start(api, who="rep", **data):
    resp = api.as_(who).post(
        "/api/v1/cases", json={"case_type": "credit_application", "data": dict(INTAKE, **data)}
    )
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def open_id(case, name=None):
    found = [t for t in case["tasks"] if t["state"] == "open" and name in (None, t["name"])]
    assert len(found) == 1
    return found[0]["id"]


def review_task(api, **data):
    return open_id(start(api, **data), "specialist_review")


def approval(api, who="spec", limit="20000.00", **data):
    resp = api.as_(who).post(
        f"/api/v1/tasks/{review_task(api, **data)}/complete", json={"data": review(limit)}
    )
    assert resp.status_code == 200, resp.get_json()
    return open_id(resp.get_json())


def post(api, who, path, **kw):
    return api.as_(who).post(f"/api/v1{path}", **kw)


def get(api, who, path):
    return api.as_(who).get(f"/api/v1{path}")


def ids(resp):
    assert resp.status_code == 200, resp.get_json()
    return [t["id"] for t in resp.get_json()]


def the_task(api, task_id):
    return get(api, "admin", f"/tasks/{task_id}").get_json()


def timeline(api, task_id):
    case_id = the_task(api, task_id)["case_id"]
    return get(api, "admin", f"/cases/{case_id}").get_json()["events"]


# --- assign, unclaim, bulk-complete: a manager's day --------------------------------------------


def test_a_manager_assigns_and_reassigns_with_the_reason_on_the_timeline(api):
    task_id = review_task(api)
    resp = post(api, "mgr", f"/tasks/{task_id}/assign", json={"user": "spec", "reason": "C-100"})
    assert resp.status_code == 200 and resp.get_json()["assignee"] == "spec"
    resp = post(api, "mgr", f"/tasks/{task_id}/assign", json={"user": "spec2", "reason": "load"})
    assert resp.get_json()["assignee"] == "spec2"
    assigned = [e for e in timeline(api, task_id) if e["kind"] == "task_assigned"]
    seen = [(e["actor"], e["detail"]["from"], e["detail"]["to"], e["detail"]["reason"])
            for e in assigned]  # fmt: skip
    assert seen == [("mgr", None, "spec", "C-100"), ("mgr", "spec", "spec2", "load")]
    assert ids(get(api, "spec2", "/tasks?assignee=me")) == [task_id]


@pytest.mark.parametrize(
    ("who", "body", "status"),
    [
        ("spec", {"user": "spec2"}, 403),
        ("mgr", {"user": "mgr2"}, 422),
        ("mgr", {"user": "ghost"}, 422),
        ("mgr", {}, 422),
        ("mgr", {"user": "spec", "reason": 5}, 422),
    ],
)
def test_assign_refusals_change_nothing(api, who, body, status):
    task_id = review_task(api)
    assert post(api, who, f"/tasks/{task_id}/assign", json=body).status_code == status
    assert the_task(api, task_id)["assignee"] is None


def test_unclaim_by_the_assignee_or_a_manager_with_a_reason(api):
    task_id = review_task(api)
    post(api, "spec", f"/tasks/{task_id}/claim")
    assert post(api, "spec2", f"/tasks/{task_id}/unclaim").status_code == 403
    resp = post(api, "mgr", f"/tasks/{task_id}/unclaim", json={"reason": "spec is out"})
    assert resp.status_code == 200 and resp.get_json()["assignee"] is None
    (event,) = [e for e in timeline(api, task_id) if e["kind"] == "task_unclaimed"]
    assert (event["actor"], event["detail"]["from"], event["detail"]["reason"]) == (
        "mgr", "spec", "spec is out")  # fmt: skip
    assert task_id in ids(get(api, "spec2", "/tasks?assignee=none"))


def test_bulk_complete_with_one_refused_by_four_eyes(api):
    good = [approval(api) for _ in range(3)]
    blocked = approval(api, who="dual")
    resp = post(api, "dual", "/tasks/bulk-complete",
                json={"tasks": [*good, blocked], "data": {"decision": "approve"}})  # fmt: skip
    results = resp.get_json()["results"]
    assert resp.status_code == 200
    assert all(results[str(t)] == {"status": 200} for t in good)
    assert results[str(blocked)]["status"] == 403 and "four-eyes" in results[str(blocked)]["error"]
    untouched = the_task(api, blocked)
    assert (untouched["state"], untouched["assignee"]) == ("open", None)


# --- the inbox parameters ---------------------------------------------------------------------


def set_due(task_id, moment):
    row = db.session.get(TaskRecord, task_id)
    row.due_at = moment
    db.session.commit()


def test_the_added_filters_on_the_work_queue_and_on_tasks(api):
    small = review_task(api, requested_limit="1000.00")
    large = review_task(api, requested_limit="90000.00")
    erp = review_task(api, customer_number="C-4711", legal_name="Initech")
    now = datetime.now(UTC)
    with api.app.app_context():
        set_due(small, now.replace(hour=23, minute=59))
        set_due(large, now - timedelta(days=2))
        set_due(erp, now + timedelta(days=5))
    for path in ("/work-queue", "/tasks"):
        assert ids(get(api, "spec", f"{path}?amount_min=50000")) == [large]
        assert ids(get(api, "spec", f"{path}?amount_max=5000")) == [small]
        assert ids(get(api, "spec", f"{path}?amount_min=900&amount_max=26000&sort=-amount")) == [
            erp, small]  # fmt: skip
        assert ids(get(api, "spec", f"{path}?customer=C-4711")) == [erp]
        assert ids(get(api, "spec", f"{path}?priority=high")) == [large]
        assert ids(get(api, "spec", f"{path}?due=overdue")) == [large]
    today = get(api, "spec", "/work-queue?due=today")
    expected = [small] if now.replace(hour=23, minute=59) > now else []
    assert ids(today) == expected and today.headers["X-Total-Count"] == str(len(expected))
    assert ids(get(api, "spec", "/work-queue?sort=-priority"))[0] == large
    body = get(api, "spec", "/work-queue").get_json()[0]
    assert {"priority", "priority_label", "follow_up_at", "delegated_from"} <= set(body)


def test_follow_up_hides_from_the_work_queue_but_tasks_keeps_the_contract(api):
    task_id = review_task(api)
    other = review_task(api)
    until = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
    resp = post(api, "spec", f"/tasks/{task_id}/follow-up",
                json={"until": until, "reason": "call back Thursday"})  # fmt: skip
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["follow_up_at"] == f"{until}T00:00:00Z" and body["assignee"] == "spec"
    assert body["form"]["key"] == "credit_review"
    assert ids(get(api, "spec", "/work-queue")) == [other]
    assert ids(get(api, "spec", "/work-queue?follow_up=only")) == [task_id]
    assert set(ids(get(api, "spec", "/tasks"))) == {task_id, other}
    assert ids(get(api, "spec", "/tasks?follow_up=hide")) == [other]
    event = [e for e in timeline(api, task_id) if e["kind"] == "follow_up_set"][0]
    assert (event["actor"], event["detail"]["reason"]) == ("spec", "call back Thursday")
    cleared = post(api, "spec", f"/tasks/{task_id}/follow-up", json={"until": None})
    assert cleared.get_json()["follow_up_at"] is None
    assert set(ids(get(api, "spec", "/work-queue"))) == {task_id, other}


@pytest.mark.parametrize(
    ("query", "field"),
    [("?amount_min=lots", "amount_min"), ("?amount_min=9&amount_max=1", "amount_max"),
     ("?due=soon", "due"), ("?priority=9", "priority"), ("?follow_up=x", "follow_up"),
     ("?sort=amount", "sort"), ("?assignee=ghost", "assignee"), ("?delegated=2", "delegated")],
)  # fmt: skip
def test_wrong_added_parameters_are_422_naming_them(api, query, field):
    for path in ("/work-queue", "/tasks", "/approvals"):
        resp = get(api, "mgr", f"{path}{query}")
        assert resp.status_code == 422, (path, query)
        assert field in resp.get_json()["errors"]


def test_the_work_queue_pages_with_a_total(api):
    made = [review_task(api) for _ in range(5)]
    page = get(api, "spec", "/work-queue?limit=2&offset=2")
    assert ids(page) == made[2:4] and page.headers["X-Total-Count"] == "5"


def test_the_work_queue_needs_a_token(api):
    assert api.get("/api/v1/work-queue").status_code == 401


# --- follow-up, priority, delegation, take-back: status codes ------------------------------------


@pytest.mark.parametrize(
    ("who", "task", "body", "status"),
    [("spec", "unknown", {"until": "2027-01-01"}, 404),
     ("rep", "open", {"until": "x"}, 403),
     ("spec", "claimed", {"until": "x"}, 409),
     ("spec", "open", {"until": "x"}, 422),
     ("spec", "open", {}, 422),
     ("spec", "open", {"until": "2020-01-01"}, 422),
     ("spec", "open", {"until": "2027-01-01", "reason": []}, 422)],
)  # fmt: skip
def test_follow_up_status_codes_in_the_contracts_order(api, who, task, body, status):
    task_id = review_task(api)
    if task == "claimed":
        post(api, "spec2", f"/tasks/{task_id}/claim")
    target = 99999 if task == "unknown" else task_id
    resp = post(api, who, f"/tasks/{target}/follow-up", json=body)
    assert resp.status_code == status, resp.get_json()
    assert the_task(api, task_id)["assignee"] in (None, "spec2")


def test_follow_up_needs_a_json_body(api):
    task_id = review_task(api)
    resp = post(api, "spec", f"/tasks/{task_id}/follow-up", data="x",
                headers={"Content-Type": "application/json"})  # fmt: skip
    assert resp.status_code == 400


def test_priority_over_the_api(api):
    task_id = review_task(api)
    assert post(api, "spec", f"/tasks/{task_id}/priority", json={"priority": 4}).status_code == 403
    resp = post(api, "mgr", f"/tasks/{task_id}/priority", json={"priority": "urgent"})
    assert resp.status_code == 200 and resp.get_json()["priority"] == 4
    for bad in ({"priority": 9}, {"priority": True}, {}, {"priority": [1]}):
        assert post(api, "mgr", f"/tasks/{task_id}/priority", json=bad).status_code == 422
    assert get(api, "spec", "/work-queue?priority=urgent").get_json()[0]["id"] == task_id


def test_delegation_over_the_api_keeps_the_owner_informed(api):
    task_id = review_task(api)
    post(api, "spec", f"/tasks/{task_id}/claim")
    resp = post(api, "spec", f"/tasks/{task_id}/delegate", json={"user": "spec2", "reason": "PTO"})
    assert resp.status_code == 200, resp.get_json()
    assert (resp.get_json()["assignee"], resp.get_json()["delegated_from"]) == ("spec2", "spec")
    assert ids(get(api, "spec", "/work-queue?delegated=1")) == [task_id]
    done = post(api, "spec2", f"/tasks/{task_id}/complete", json={"data": review()})
    assert done.status_code == 200
    with api.app.app_context():
        spec = find_user("spec")
        messages = db.session.execute(
            db.select(Notification.message).where(Notification.user_id == spec.id)
        ).scalars()
        assert any("which you delegated" in m for m in messages)


@pytest.mark.parametrize(
    ("who", "body", "status"),
    [("spec2", {"user": "dual"}, 403), ("spec", {"user": "mgr"}, 422), ("spec", {}, 422),
     ("spec", {"user": 7}, 422), ("spec", {"user": "ghost"}, 422)],
)  # fmt: skip
def test_delegation_refusals(api, who, body, status):
    task_id = review_task(api)
    post(api, "spec", f"/tasks/{task_id}/claim")
    assert post(api, who, f"/tasks/{task_id}/delegate", json=body).status_code == status
    assert the_task(api, task_id)["assignee"] == "spec"


def test_take_back(api):
    task_id = review_task(api)
    post(api, "spec", f"/tasks/{task_id}/claim")
    assert post(api, "spec", f"/tasks/{task_id}/take-back").status_code == 409  # not delegated
    post(api, "spec", f"/tasks/{task_id}/delegate", json={"user": "spec2"})
    assert post(api, "spec2", f"/tasks/{task_id}/take-back").status_code == 403
    resp = post(api, "spec", f"/tasks/{task_id}/take-back")
    assert resp.status_code == 200 and resp.get_json()["assignee"] == "spec"
    assert post(api, "spec", "/tasks/99999/take-back").status_code == 404


# --- reassign everything of a person ------------------------------------------------------------


def test_reassign_all_over_the_api(api):
    held = [review_task(api) for _ in range(3)]
    for task_id in held:
        post(api, "spec", f"/tasks/{task_id}/claim")
    assert post(api, "spec2", "/users/spec/reassign-all", json={"to": "spec2"}).status_code == 403
    assert post(api, "mgr", "/users/ghost/reassign-all", json={}).status_code == 404
    assert post(api, "mgr", "/users/spec/reassign-all", json={"to": "ghost"}).status_code == 422
    assert post(api, "mgr", "/users/spec/reassign-all", json={"to": 5}).status_code == 422
    resp = post(api, "mgr", "/users/spec/reassign-all", json={"to": "spec2", "reason": "sick"})
    body = resp.get_json()
    assert resp.status_code == 200
    assert (body["from"], body["to"], body["moved"], body["queued"]) == ("spec", "spec2", 3, 0)
    assert set(ids(get(api, "spec2", "/tasks?assignee=me"))) == set(held)
    resp = post(api, "mgr", "/users/spec2/reassign-all")  # no body: back to the queues
    assert resp.status_code == 200 and resp.get_json()["queued"] == 3


# --- saved views ------------------------------------------------------------------------------


def test_saved_views_over_the_api(api):
    resp = post(api, "spec", "/views", json={"name": "Big", "params": {"amount_min": "5000"}})
    assert resp.status_code == 201
    own = resp.get_json()
    assert own["params"] == {"amount_min": "5000"} and own["shared_with"] is None
    shared = post(api, "mgr", "/views", json={"name": "Today", "params": {"due": "today"},
                                              "role": "ar_specialist"}).get_json()  # fmt: skip
    assert [v["name"] for v in get(api, "spec", "/views").get_json()] == ["Big", "Today"]
    assert [v["name"] for v in get(api, "spec2", "/views").get_json()] == ["Today"]
    assert post(api, "spec", "/views", json={"name": "X", "params": {"sort": "amount"}}
                ).status_code == 422  # fmt: skip
    assert post(api, "spec", "/views", json={"name": "X", "params": {}, "role": "controller"}
                ).status_code == 403  # fmt: skip
    assert post(api, "spec", "/views", json={"name": "X", "params": {}, "role": 3}
                ).status_code == 422  # fmt: skip
    assert (
        api.as_("spec2")
        .client.delete(f"/api/v1/views/{own['id']}", headers=api.as_("spec2")._headers(None))
        .status_code
        == 404
    )
    delete = api.as_("spec").client.delete(
        f"/api/v1/views/{shared['id']}", headers=api.as_("spec")._headers(None)
    )
    assert delete.status_code == 403
    delete = api.as_("spec").client.delete(
        f"/api/v1/views/{own['id']}", headers=api.as_("spec")._headers(None)
    )
    assert delete.status_code == 204


# --- the approval inbox -----------------------------------------------------------------------


def test_the_approval_inbox_shows_what_the_decision_needs(api):
    first = approval(api)
    review_task(api)  # a review, not an approval
    resp = get(api, "mgr", "/approvals")
    assert resp.status_code == 200 and resp.headers["X-Total-Count"] == "1"
    (item,) = resp.get_json()
    assert item["id"] == first and item["case_title"].endswith("Acme Widgets LLC")
    facts = item["approval"]
    assert facts["recommendation"]["by"] == "Spec"
    assert facts["recommendation"]["data"]["recommended_limit"] == "20000.00"
    assert facts["requested"] == "25000.00" and facts["authority"] == "Credit Manager"
    assert facts["actions"] == ["approve", "reject", "send_back"] and facts["blocked"] is None
    assert get(api, "spec", "/approvals").get_json() == []


def test_the_all_scope_shows_approvals_above_my_authority(api):
    high = approval(api, limit="60000.00", requested_limit="60000.00")
    assert ids(get(api, "mgr", "/approvals")) == []
    (item,) = get(api, "mgr", "/approvals?scope=all").get_json()
    assert item["id"] == high
    assert item["approval"]["blocked"] == (
        "outside your authority: this approval needs the Controller role"
    )
    assert get(api, "mgr", "/approvals?scope=mine").status_code == 200
    assert get(api, "mgr", "/approvals?scope=every").status_code == 422


def test_deciding_many_approvals_in_one_call_with_results_per_item(api):
    good = [approval(api) for _ in range(4)]
    blocked = approval(api, who="dual")
    resp = post(api, "dual", "/approvals/decide",
                json={"tasks": [*good, blocked, "nope"], "action": "approve"})  # fmt: skip
    results = resp.get_json()["results"]
    assert resp.status_code == 200
    assert [results[str(t)]["status"] for t in good] == [200] * 4
    assert results[str(blocked)]["status"] == 403
    assert results["nope"]["status"] == 404
    assert the_task(api, blocked)["state"] == "open"
    left = ids(get(api, "mgr", "/approvals"))
    assert left == [blocked]
    resp = post(api, "mgr", "/approvals/decide",
                json={"tasks": [blocked], "action": "send_back",
                      "comments": {str(blocked): "Need the bank reference"}})  # fmt: skip
    assert resp.get_json()["results"][str(blocked)]["status"] == 200


@pytest.mark.parametrize(
    "body",
    [{"tasks": 5, "action": "approve"}, {"tasks": [1], "action": "maybe"}, {"tasks": [1]},
     {"tasks": [1], "action": "approve", "comment": 3},
     {"tasks": [1], "action": "approve", "comments": []}, {"tasks": list(range(501)),
                                                            "action": "approve"}],
)  # fmt: skip
def test_a_malformed_decision_is_422(api, body):
    assert post(api, "mgr", "/approvals/decide", json=body).status_code == 422


def test_the_new_endpoints_are_in_the_openapi_document(api):
    paths = api.get("/api/v1/openapi.json").get_json()["paths"]
    wanted = [
        ("/api/v1/work-queue", "get"),
        ("/api/v1/tasks/{task_id}/follow-up", "post"),
        ("/api/v1/tasks/{task_id}/delegate", "post"),
        ("/api/v1/tasks/{task_id}/take-back", "post"),
        ("/api/v1/tasks/{task_id}/priority", "post"),
        ("/api/v1/users/{name}/reassign-all", "post"),
        ("/api/v1/views", "get"),
        ("/api/v1/views", "post"),
        ("/api/v1/views/{view_id}", "delete"),
        ("/api/v1/approvals", "get"),
        ("/api/v1/approvals/decide", "post"),
    ]
    for path, method in wanted:
        op = paths[path][method]
        assert op["summary"] and op["security"] == [{"bearerAuth": []}], path
    params = {p["name"] for p in paths["/api/v1/work-queue"]["get"]["parameters"]}
    assert {"amount_min", "amount_max", "due", "customer", "priority", "follow_up"} <= params


def test_an_overdue_task_started_long_ago_is_in_the_overdue_queue(api):
    with api.app.app_context(), clock.as_of(datetime.now(UTC) - timedelta(days=10)):
        old = engine.start_case("credit_application", dict(INTAKE), find_user("rep"))
        old_id = old.tasks[0].id
    review_task(api)
    assert ids(get(api, "spec", "/work-queue?due=overdue")) == [old_id]

"""The case timeline is an audit trail: nothing changes or deletes an event, and every change
of a case leaves one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, update

from casemgr.extensions import db
from casemgr.models import Case, CaseEvent
from casemgr.models.audit_guard import AuditTrailError
from tests.credit_data import INTAKE, review

# The only routes answering PUT, PATCH or DELETE, none of them about cases or their events.
NON_CASE_WRITES = {"api.put_draft", "api.delete_draft", "api.delete_view"}


def start_case(api) -> int:
    response = api.as_("rep").post(
        "/api/v1/cases", json={"case_type": "credit_application", "data": dict(INTAKE)}
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def test_the_orm_refuses_to_change_or_delete_an_event(api, app):
    case_id = start_case(api)
    with app.app_context():
        event = db.session.execute(db.select(CaseEvent).filter_by(case_id=case_id)).scalars()
        event = next(iter(event))
        event.kind = "nothing_happened"
        with pytest.raises(AuditTrailError):
            db.session.flush()
        db.session.rollback()

        db.session.delete(db.session.get(CaseEvent, event.id))
        with pytest.raises(AuditTrailError):
            db.session.flush()
        db.session.rollback()

        with pytest.raises(AuditTrailError):
            db.session.execute(update(CaseEvent).values(actor="someone else"))
        db.session.rollback()
        with pytest.raises(AuditTrailError):
            db.session.execute(delete(CaseEvent).where(CaseEvent.case_id == case_id))
        db.session.rollback()

        # Deleting the case would take its timeline with it: refused too.
        db.session.delete(db.session.get(Case, case_id))
        with pytest.raises(AuditTrailError):
            db.session.flush()
        db.session.rollback()

        kinds = [e.kind for e in db.session.get(Case, case_id).events]
        assert kinds[0] == "case_started" and "nothing_happened" not in kinds


def test_no_route_offers_to_change_or_delete_events_or_cases(app, api):
    writes = {
        rule.endpoint
        for rule in app.url_map.iter_rules()
        if rule.methods & {"PUT", "PATCH", "DELETE"}
    }
    assert writes == NON_CASE_WRITES
    assert not [r.rule for r in app.url_map.iter_rules() if "event" in r.rule]

    case_id = start_case(api)
    before = api.as_("admin").get(f"/api/v1/cases/{case_id}").get_json()["events"]
    client = api.as_("admin").client
    headers = {"Authorization": f"Bearer {api.tokens['admin']}"}
    for method in ("DELETE", "PUT", "PATCH"):
        response = client.open(f"/api/v1/cases/{case_id}", method=method, headers=headers)
        assert response.status_code == 405
    after = api.as_("admin").get(f"/api/v1/cases/{case_id}").get_json()["events"]
    assert after == before


# --- every change has its event -----------------------------------------------------------


def snapshot(app, case_id: int):
    """What a person would call the state of the case: its status and every task's state."""
    with app.app_context():
        case = db.session.get(Case, case_id)
        tasks = tuple(
            (
                t.id,
                t.state,
                t.assignee_id,
                t.delegated_from_id,
                t.priority,
                t.follow_up_at,
                t.completed_by_id,
            )
            for t in case.tasks
        )
        kinds = [e.kind for e in case.events]
        return (case.status, case.outcome, tasks), kinds


class Trail:
    """Runs one action and checks that it changed the case and left the expected events."""

    def __init__(self, app, case_id: int):
        self.app, self.case_id = app, case_id
        self.state, self.kinds = snapshot(app, case_id)

    def check(self, response, *expected: str) -> None:
        if response is not None:
            assert response.status_code in (200, 201), response.get_data(as_text=True)
        state, kinds = snapshot(self.app, self.case_id)
        assert state != self.state, "the action changed nothing"
        new = kinds[len(self.kinds) :]
        assert kinds[: len(self.kinds)] == self.kinds, "earlier events changed"
        for kind in expected:
            assert kind in new, f"no {kind} event; new events: {new}"
        self.state, self.kinds = state, kinds


def open_task(api, case_id: int) -> int:
    tasks = api.as_("admin").get(f"/api/v1/cases/{case_id}").get_json()["tasks"]
    return next(t["id"] for t in tasks if t["state"] == "open")


def run_timers(app, days: int) -> None:
    moment = (datetime.now(UTC) + timedelta(days=days)).isoformat()
    result = app.test_cli_runner().invoke(args=["timers", "run", "--as-of", moment])
    assert "advanced 1 case(s)" in result.output, result.output


def test_every_change_of_a_case_leaves_an_event(app, api):
    started = snapshot(app, (case_id := start_case(api)))[1]
    assert started[:2] == ["case_started", "task_created"]
    trail = Trail(app, case_id)
    task = open_task(api, case_id)
    spec, mgr = api.as_("spec"), api.as_("mgr")

    trail.check(spec.post(f"/api/v1/tasks/{task}/claim"), "task_claimed")
    trail.check(spec.post(f"/api/v1/tasks/{task}/unclaim", json={}), "task_unclaimed")
    trail.check(mgr.post(f"/api/v1/tasks/{task}/assign", json={"user": "spec"}), "task_assigned")
    trail.check(spec.post(f"/api/v1/tasks/{task}/priority", json={"priority": 4}), "task_priority")
    soon = (datetime.now(UTC) + timedelta(days=3)).date().isoformat()
    trail.check(spec.post(f"/api/v1/tasks/{task}/follow-up", json={"until": soon}), "follow_up_set")
    trail.check(
        spec.post(f"/api/v1/tasks/{task}/follow-up", json={"until": None}), "follow_up_cleared"
    )
    trail.check(
        spec.post(f"/api/v1/tasks/{task}/delegate", json={"user": "spec2"}), "task_delegated"
    )
    trail.check(spec.post(f"/api/v1/tasks/{task}/take-back", json={}), "delegation_ended")
    trail.check(
        spec.post(f"/api/v1/tasks/{task}/complete", json={"data": review(action="request_info")}),
        "task_completed",
        "task_created",
    )

    run_timers(app, days=11)
    trail.check(None, "timer_fired", "task_created")  # the reminder task

    run_timers(app, days=31)
    trail.check(None, "timer_fired", "task_cancelled", "case_completed")
    assert trail.state[:2] == ("completed", "withdrawn")

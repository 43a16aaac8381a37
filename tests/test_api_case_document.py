"""The case document (API.md, GET /cases/{id} and the answer to start and complete).

The database builds the tasks and the timeline as JSON text (casemgr.web.api.json_sql);
these tests hold that text to the Python serializers' shape value for value, and check the
``Prefer: return=minimal`` answer a client driving a case step by step can ask for.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from casemgr.extensions import db
from casemgr.models import Case, CaseEvent, TaskRecord, User
from casemgr.models.task_json import money
from casemgr.web.api.serializers import iso, task_summary
from tests.credit_data import INTAKE, review

MINIMAL = {"Prefer": "return=minimal"}


def _case_in_review(api) -> dict:
    """A credit application past the specialist's review: one task done, one open."""
    case = api.as_("spec").post(
        "/api/v1/cases", json={"case_type": "credit_application", "data": INTAKE}
    )
    assert case.status_code == 201, case.get_json()
    [task] = case.get_json()["tasks"]
    done = api.as_("spec").post(f"/api/v1/tasks/{task['id']}/complete", json={"data": review()})
    assert done.status_code == 200, done.get_json()
    return done.get_json()


def _python_document(app, case_id: int) -> dict:
    """The same document built in Python from the ORM rows, with the shared serializers."""
    with app.app_context():
        case = db.session.get(Case, case_id)
        events = [
            {"id": e.id, "at": iso(e.at), "actor": e.actor, "kind": e.kind, "detail": e.detail}
            for e in case.events
        ]
        document = {
            "id": case.id,
            "case_type": case.case_type.key,
            "case_type_name": case.case_type.name,
            "version": case.process_version.version,
            "status": case.status,
            "outcome": case.outcome,
            "title": case.title,
            "customer_number": case.customer_number,
            "customer_name": case.customer_name,
            "amount": money(case.amount),
            "started_by": case.started_by.username if case.started_by else None,
            "created_at": iso(case.created_at),
            "updated_at": iso(case.updated_at),
            "completed_at": iso(case.completed_at),
            "broken": case.broken,
            "data": case.data or {},
            "tasks": [task_summary(t) for t in case.tasks],
            "events": events,
        }
        return json.loads(json.dumps(document))


def test_the_database_built_document_equals_the_python_one(app, api):
    body = _case_in_review(api)
    with app.app_context():
        # Awkward values the SQL must render exactly like the serializers: a whole second
        # (isoformat drops the fraction), quotes and non-ASCII text, nested JSON detail.
        task = db.session.get(TaskRecord, body["tasks"][0]["id"])
        task.title = 'Review "Acme" – Zürich'
        task.completed_at = datetime(2026, 11, 2, 9, 30, 0, tzinfo=UTC)
        db.session.add(
            CaseEvent(
                case_id=body["id"],
                at=datetime(2026, 11, 3, 8, 0, 0, 250000, tzinfo=UTC),
                actor="spec",
                kind="comment_added",
                detail={"text": "Line 1\nLine 2 \\ \u00e9", "nested": {"n": [1, 2.5, None]}},
            )
        )
        db.session.commit()
    served = api.as_("spec").get(f"/api/v1/cases/{body['id']}").get_json()
    assert served == _python_document(app, body["id"])
    assert served["tasks"][0]["title"] == 'Review "Acme" – Zürich'
    assert served["tasks"][0]["completed_at"] == "2026-11-02T09:30:00Z"
    assert served["tasks"][0]["amount"] == "25000.00"
    assert served["events"][-1]["at"] == "2026-11-03T08:00:00.250000Z"
    assert served["events"][-1]["detail"]["nested"] == {"n": [1, 2.5, None]}


def test_rows_that_never_change_keep_their_json_and_older_rows_are_built(app, api):
    """Events and closed tasks are served from the JSON stored when they were written;
    rows written before that column existed (NULL) are built by the database, alike."""
    body = _case_in_review(api)
    case_id = body["id"]
    with app.app_context():
        closed = db.session.get(TaskRecord, body["tasks"][0]["id"])
        assert closed.state == "completed" and json.loads(closed.closed_json) == task_summary(
            closed
        )
        assert db.session.get(TaskRecord, body["tasks"][1]["id"]).closed_json is None  # open
        first = (
            db.session.execute(
                db.select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.id)
            )
            .scalars()
            .first()
        )
        assert json.loads(f'{{"id":{first.id}{first.timeline_json}') == body["events"][0]
    stored = api.as_("spec").get(f"/api/v1/cases/{case_id}").get_json()
    with app.app_context(), db.engine.begin() as connection:  # as an older release wrote them
        connection.execute(
            TaskRecord.__table__.update()
            .where(TaskRecord.__table__.c.case_id == case_id)
            .values(closed_json=None)
        )
        connection.execute(
            CaseEvent.__table__.update()
            .where(CaseEvent.__table__.c.case_id == case_id)
            .values(timeline_json=None)
        )
    built = api.as_("spec").get(f"/api/v1/cases/{case_id}").get_json()
    assert built == stored == _python_document(app, case_id)


def test_a_closed_task_written_again_keeps_its_json_true(app, api):
    body = _case_in_review(api)
    with app.app_context():
        closed = db.session.get(TaskRecord, body["tasks"][0]["id"])
        closed.title = "Renamed by an admin"
        db.session.commit()
        assert json.loads(closed.closed_json)["title"] == "Renamed by an admin"
    served = api.as_("spec").get(f"/api/v1/cases/{body['id']}").get_json()
    assert served["tasks"][0]["title"] == "Renamed by an admin"


def test_a_closed_tasks_json_names_who_its_ids_name(app, api):
    """The ids are the truth: a relationship read before they changed is stale."""
    body = _case_in_review(api)
    open_id = body["tasks"][1]["id"]
    with app.app_context():
        row = db.session.get(TaskRecord, open_id)
        assert row.assignee is None and row.completed_by is None  # loaded, then stale
        # Not loaded into the session: the name is read by the flush hook's own query.
        manager_id = db.session.execute(db.select(User.id).filter_by(username="mgr")).scalar()
        row.assignee_id = row.completed_by_id = manager_id
        row.state, row.completed_at = "completed", datetime.now(UTC)
        db.session.commit()
        stored = json.loads(row.closed_json)
    assert (stored["assignee"], stored["completed_by"]) == ("mgr", "mgr")
    served = api.as_("spec").get(f"/api/v1/cases/{body['id']}").get_json()
    assert served["tasks"][1]["completed_by"] == "mgr"


def test_the_timeline_and_tasks_come_oldest_first(api):
    body = _case_in_review(api)
    assert [t["id"] for t in body["tasks"]] == sorted(t["id"] for t in body["tasks"])
    assert [e["id"] for e in body["events"]] == sorted(e["id"] for e in body["events"])
    assert body["events"][0]["kind"] == "case_started"
    assert [t["state"] for t in body["tasks"]] == ["completed", "open"]


def test_minimal_answers_leave_out_the_timeline_and_done_tasks(api):
    body = _case_in_review(api)
    resp = api.as_("spec").get(f"/api/v1/cases/{body['id']}", headers=MINIMAL)
    assert resp.status_code == 200
    assert resp.headers["Preference-Applied"] == "return=minimal"
    minimal = resp.get_json()
    assert "events" not in minimal
    assert [t["state"] for t in minimal["tasks"]] == ["open"]
    assert minimal["tasks"][0] == body["tasks"][1]
    assert {k: v for k, v in body.items() if k not in ("tasks", "events")} == {
        k: v for k, v in minimal.items() if k != "tasks"
    }


def test_a_minimal_completion_still_completes_and_says_what_is_next(api):
    case = api.as_("spec").post(
        "/api/v1/cases", json={"case_type": "credit_application", "data": INTAKE}, headers=MINIMAL
    )
    assert case.status_code == 201
    assert "events" not in case.get_json()
    [task] = case.get_json()["tasks"]
    resp = api.as_("spec").post(
        f"/api/v1/tasks/{task['id']}/complete", json={"data": review()}, headers=MINIMAL
    )
    assert resp.status_code == 200
    [next_task] = resp.get_json()["tasks"]
    assert next_task["role"] == "credit_manager" and next_task["state"] == "open"
    full = api.as_("spec").get(f"/api/v1/cases/{case.get_json()['id']}").get_json()
    assert [e["kind"] for e in full["events"]].count("task_completed") == 1


def test_without_the_preference_the_answer_is_the_whole_case(api):
    resp = api.as_("spec").post(
        "/api/v1/cases",
        json={"case_type": "credit_application", "data": INTAKE},
        headers={"Prefer": "respond-async, return=representation"},
    )
    assert resp.status_code == 201
    assert "Preference-Applied" not in resp.headers
    assert resp.get_json()["events"]

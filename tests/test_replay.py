"""Replay before publishing: the recorded data of completed cases runs through a draft, and
the process owner sees which cases would now take another path or fail, with nothing saved."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from casemgr.accounts import find_user
from casemgr.engine import clock, drafts
from casemgr.engine.cases import complete_task, start_case, wake_case
from casemgr.extensions import db
from casemgr.models import Case, CaseEvent, Customer, Notification
from tests.credit_data import INTAKE, review

ROOT = Path(__file__).resolve().parent.parent
CREDIT = (ROOT / "workflows" / "bpmn" / "credit_application.bpmn").read_text()
XML = {"Content-Type": "application/xml"}


def open_task(case: Case):
    return next(t for t in case.tasks if t.state == "open")


def completed_case(limit: str = "20000.00", decision: str = "approve") -> int:
    """A credit application the specialist reviewed and a manager decided (up to 50,000)."""
    case = start_case("credit_application", dict(INTAKE), find_user("rep"))
    case = complete_task(open_task(case).id, review(limit), find_user("spec"))
    decided = {"decision": decision}
    if decision != "approve":
        decided["comment"] = "Bureau score too low for the amount."
    case = complete_task(open_task(case).id, decided, find_user("mgr"))
    assert case.status == "completed"
    return case.id


def withdrawn_case() -> int:
    """A case where the customer never answered: the 30-day timer withdrew it."""
    case = start_case("credit_application", dict(INTAKE), find_user("rep"))
    case = complete_task(open_task(case).id, review(action="request_info"), find_user("spec"))
    wake_case(case.id, case.next_wake_at + timedelta(seconds=1))  # the 10-day reminder
    case = db.session.get(Case, case.id)
    wake_case(case.id, case.next_wake_at + timedelta(seconds=1))  # the 30-day withdrawal
    case = db.session.get(Case, case.id)
    assert (case.status, case.outcome) == ("completed", "withdrawn")
    return case.id


def by_case(results) -> dict:
    return {r.case_id: r for r in results}


def test_an_unchanged_draft_takes_every_recorded_path(ctx):
    approved, declined = completed_case(), completed_case(decision="decline")
    withdrawn = withdrawn_case()
    results = by_case(drafts.replay_draft("credit_application", CREDIT))
    assert {k: r.status for k, r in results.items()} == {
        approved: "same",
        declined: "same",
        withdrawn: "same",
    }
    assert results[approved].original_path == ["specialist_review", "manager_approval"]
    assert results[approved].replayed_path == ["specialist_review", "manager_approval"]


def test_a_changed_route_is_detected(ctx):
    """The draft sends what the manager approved to the controller instead."""
    approved = completed_case()
    draft = CREDIT.replace('route == "credit_manager"', 'route == "nobody"')
    result = by_case(drafts.replay_draft("credit_application", draft))[approved]
    assert result.status == "different"
    assert result.element == "manager_approval"
    assert result.message == (
        "the case went on with 'Approve the credit limit (credit manager)'; the draft asks "
        "for 'Approve the credit limit (controller)'"
    )
    assert result.replayed_path == ["specialist_review"]


def test_a_changed_outcome_is_detected(ctx):
    approved = completed_case()
    draft = CREDIT.replace(
        'outcome = "approved" if not cash_in_advance else "cash_in_advance"',
        'outcome = "accepted"',
    )
    result = by_case(drafts.replay_draft("credit_application", draft))[approved]
    assert (result.status, result.message) == (
        "different",
        "ends with outcome 'accepted' instead of 'approved'",
    )


def test_a_script_that_now_fails_is_reported_with_its_element(ctx):
    approved = completed_case()
    draft = CREDIT.replace("len(fraud_flags or [])", "len(fraud_flagz)")
    result = by_case(drafts.replay_draft("credit_application", draft))[approved]
    assert (result.status, result.element) == ("failed", "specialist_review")
    assert "fraud_flagz" in result.message


def test_a_form_that_refuses_the_recorded_values_is_reported(ctx):
    approved = completed_case()
    draft = CREDIT.replace('value="credit_approval"', 'value="credit_intake"', 1)
    result = by_case(drafts.replay_draft("credit_application", draft))[approved]
    assert result.status == "different"
    assert "refuses the recorded values" in result.message


def test_replay_changes_nothing(ctx):
    completed_case()
    before = (
        db.session.execute(db.select(db.func.count(Customer.id))).scalar(),
        db.session.execute(db.select(db.func.count(Notification.id))).scalar(),
        db.session.execute(db.select(db.func.count(Case.id))).scalar(),
        db.session.execute(db.select(db.func.count(CaseEvent.id))).scalar(),
    )
    with clock.as_of(clock.now() + timedelta(days=400)):
        drafts.replay_draft("credit_application", CREDIT)
    db.session.commit()
    after = (
        db.session.execute(db.select(db.func.count(Customer.id))).scalar(),
        db.session.execute(db.select(db.func.count(Notification.id))).scalar(),
        db.session.execute(db.select(db.func.count(Case.id))).scalar(),
        db.session.execute(db.select(db.func.count(CaseEvent.id))).scalar(),
    )
    assert after == before


def test_a_draft_that_does_not_parse_is_refused(ctx):
    from casemgr.engine.errors import Invalid

    with pytest.raises(Invalid, match="the draft cannot be run"):
        drafts.replay_draft(
            "credit_application", CREDIT.replace('isExecutable="true"', 'isExecutable="false"')
        )


def test_replay_over_the_api_and_the_page(api, app):
    with app.app_context():
        approved = completed_case()
    headers = {**XML, "Authorization": f"Bearer {api.tokens['owner']}"}
    draft = CREDIT.replace('route == "credit_manager"', 'route == "nobody"')
    api.client.put("/api/v1/case-types/credit_application/draft", data=draft, headers=headers)
    resp = api.client.post(
        "/api/v1/case-types/credit_application/draft/replay?limit=5", headers=headers
    )
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["summary"] == {"same": 0, "different": 1, "failed": 0}
    assert body["cases"][0]["case_id"] == approved
    web = app.test_client()
    web.post("/login", data={"username": "owner", "password": "correct-horse-1"})
    page = web.get("/processes/credit_application/replay?run=1&limit=5").get_data(as_text=True)
    assert 'data-status="different"' in page
    assert "0</strong> the same path" in page

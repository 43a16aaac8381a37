"""Replay before publishing: the recorded data of completed cases runs through a draft, and
the process owner sees which cases would now take another path or fail, with nothing saved."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from casemgr.accounts import find_user
from casemgr.engine import clock, drafts, replay
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
    assert (result.status, result.difference) == ("different", "waits_elsewhere")
    assert result.element == "manager_approval"
    assert result.message == (
        "the case went on with 'Approve the credit limit (credit manager)'; the draft asks "
        "for 'Approve the credit limit (controller)' instead"
    )
    assert (result.expected, result.waiting_at) == ("manager_approval", ["controller_approval"])
    assert result.replayed_path == ["specialist_review"]
    assert result.data_changes == []  # the decision table answered as it did


def test_a_gateway_where_no_condition_holds_fails_with_its_element(ctx):
    """The draft drops the default flow and routes only "controller" and "auto" cases: a
    case the table routed to the credit manager has nowhere to go."""
    approved = completed_case()
    draft = (
        CREDIT.replace(' default="flow_route_controller"', "")
        .replace('route == "credit_manager"', 'route == "nobody"')
        .replace(
            'targetRef="controller_approval" />',
            'targetRef="controller_approval"><bpmn:conditionExpression>route == "controller"'
            "</bpmn:conditionExpression></bpmn:sequenceFlow>",
        )
    )
    assert draft.count('route == "controller"') == 1
    result = by_case(drafts.replay_draft("credit_application", draft))[approved]
    assert (result.status, result.element) == ("failed", "gw_route")
    assert result.message == (
        "fails at 'Who decides?': none of its conditions holds for this case and it has no "
        "default flow"
    )


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
    assert result.message.startswith("fails at 'Review credit and recommend a limit':")
    assert "fraud_flagz" in result.message


def test_a_changed_decision_shows_what_the_table_now_answers(ctx):
    """The draft counts two more fraud flags than the specialist recorded: the credit
    decision table now answers cash in advance, which ends the case without the manager."""
    approved = completed_case()
    draft = CREDIT.replace("len(fraud_flags or [])", "len(fraud_flags or []) + 2")
    result = by_case(drafts.replay_draft("credit_application", draft))[approved]
    assert (result.status, result.difference) == ("different", "ends_early")
    assert result.message == (
        "the case went on with 'Approve the credit limit (credit manager)'; the draft has "
        "already ended"
    )
    assert [c.as_json() for c in result.data_changes] == [
        {
            "field": "route",
            "recorded": "credit_manager",
            "replayed": "cash_in_advance",
            "decision": True,
        }
    ]


def test_other_end_values_on_the_same_path_are_reported(ctx):
    """The manager's approval now grants 15 more days than recommended: same path, same
    outcome, but the case would end with other terms."""
    approved, declined = completed_case(), completed_case(decision="decline")
    start = CREDIT.index('<bpmn:userTask id="manager_approval"')
    end = CREDIT.index("</bpmn:userTask>", start)
    draft = (
        CREDIT[:start]
        + CREDIT[start:end].replace(
            "approved_terms_days = recommended_terms_days",
            "approved_terms_days = recommended_terms_days + 15",
        )
        + CREDIT[end:]
    )
    assert draft != CREDIT
    results = by_case(drafts.replay_draft("credit_application", draft))
    result = results[approved]
    assert (result.status, result.difference) == ("different", "data")
    assert result.replayed_path == result.original_path
    assert [c.as_json() for c in result.data_changes] == [
        {"field": "approved_terms_days", "recorded": 30, "replayed": 45, "decision": False}
    ]
    assert result.message == (
        "takes the same path but ends with other values: approved_terms_days: 30 → 45"
    )
    # Declined, the terms were set all the same: the draft changes that case too.
    assert results[declined].difference == "data"


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
    [case] = body["cases"]
    assert case["case_id"] == approved
    assert (case["difference"], case["expected"], case["waiting_at"]) == (
        "waits_elsewhere",
        "manager_approval",
        ["controller_approval"],
    )
    web = app.test_client()
    web.post("/login", data={"username": "owner", "password": "correct-horse-1"})
    page = web.get("/processes/credit_application/replay?run=1&limit=5").get_data(as_text=True)
    assert 'data-status="different" data-difference="waits_elsewhere"' in page
    assert "The draft would wait at: <code>controller_approval</code>" in page
    assert "0</strong> the same path and results" in page


def test_changed_decisions_over_the_api_and_the_page(api, app):
    with app.app_context():
        approved = completed_case()
    headers = {**XML, "Authorization": f"Bearer {api.tokens['owner']}"}
    draft = CREDIT.replace("len(fraud_flags or [])", "len(fraud_flags or []) + 2")
    api.client.put("/api/v1/case-types/credit_application/draft", data=draft, headers=headers)
    body = api.client.post(
        "/api/v1/case-types/credit_application/draft/replay", headers=headers
    ).get_json()
    [case] = body["cases"]
    assert (case["case_id"], case["difference"]) == (approved, "ends_early")
    assert case["data_changes"] == [
        {
            "field": "route",
            "recorded": "credit_manager",
            "replayed": "cash_in_advance",
            "decision": True,
        }
    ]
    web = app.test_client()
    web.post("/login", data={"username": "owner", "password": "correct-horse-1"})
    page = web.get("/processes/credit_application/replay?run=1").get_data(as_text=True)
    assert (
        '<li data-field="route"><span class="badge badge-amber">decision table</span> '
        "<code>route</code>: credit_manager → <strong>cash_in_advance</strong></li>"
    ) in page


# --- a decision table draft, through the case types that call it ---------------------------

CREDIT_DMN = (ROOT / "workflows" / "dmn" / "credit_decision.dmn").read_text()
# The credit manager decides up to 15,000 instead of 50,000; above that, the controller.
STRICTER = CREDIT_DMN.replace("&lt;= 50000", "&lt;= 15000").replace("&gt; 50000", "&gt; 15000")


def test_a_decision_table_draft_replays_through_its_callers(ctx):
    at_20000, at_12000 = completed_case("20000.00"), completed_case("12000.00")
    [credit] = replay.replay_table_draft("credit_decision", STRICTER)
    assert (credit.key, credit.version) == ("credit_application", 1)
    results = by_case(credit.results)
    assert results[at_12000].status == "same"
    moved = results[at_20000]
    assert (moved.status, moved.difference, moved.waiting_at) == (
        "different",
        "waits_elsewhere",
        ["controller_approval"],
    )
    assert [c.as_json() for c in moved.data_changes] == [
        {"field": "route", "recorded": "credit_manager", "replayed": "controller", "decision": True}
    ]
    # Nothing was published: the credit application still runs on the table it had.
    assert drafts.case_type("credit_application").latest().dmn_xml == [CREDIT_DMN]


def test_a_decision_table_draft_replays_over_the_api_and_the_page(api, app):
    with app.app_context():
        at_20000 = completed_case("20000.00")
    headers = {**XML, "Authorization": f"Bearer {api.tokens['owner']}"}
    api.client.put("/api/v1/decision-tables/credit_decision/draft", data=STRICTER, headers=headers)
    resp = api.client.post("/api/v1/decision-tables/credit_decision/draft/replay", headers=headers)
    assert resp.status_code == 200
    [credit] = resp.get_json()["case_types"]
    assert (credit["key"], credit["summary"]) == (
        "credit_application",
        {"same": 0, "different": 1, "failed": 0},
    )
    assert credit["cases"][0]["case_id"] == at_20000
    web = app.test_client()
    web.post("/login", data={"username": "owner", "password": "correct-horse-1"})
    assert 'data-testid="replay-link"' in web.get("/decision-tables/credit_decision/").get_data(
        as_text=True
    )
    page = web.get("/decision-tables/credit_decision/replay?run=1").get_data(as_text=True)
    assert 'data-case-type="credit_application"' in page
    assert f'data-difference="waits_elsewhere" data-case="{at_20000}"' in page
    assert "<code>route</code>: credit_manager → <strong>controller</strong>" in page

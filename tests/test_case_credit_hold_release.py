"""Order credit hold release (DOMAIN.md §4): the ERP's call, the automatic check, the
specialist's review, the manager's approval and the 4-business-hour escalation."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from casemgr.accounts import find_user
from casemgr.engine import cases as engine
from casemgr.engine import clock
from casemgr.engine.errors import Forbidden, Invalid
from casemgr.engine.validation import validate_bpmn
from casemgr.extensions import db
from casemgr.models import (
    AccountNote,
    Case,
    Customer,
    Invoice,
    Notification,
    Order,
    PromiseToPay,
)
from tests.case_steps import open_task, run_timers

DIAGRAM = Path(__file__).parent.parent / "workflows" / "bpmn" / "credit_hold_release.bpmn"
ORDER = {
    "order_number": "SO-1001",
    "customer_number": "C-100",
    "amount": "12500.00",
    "reason": "over_limit",
}


def user(name):
    return find_user(name)


def today() -> date:
    return clock.now().date()


def add_customer(number="C-100", limit="20000.00", on_hold=False, cash_in_advance=False):
    customer = Customer(
        number=number,
        name="Globex Corporation",
        credit_limit=Decimal(limit),
        terms_days=30,
        sales_rep="rep",
        on_hold=on_hold,
        cash_in_advance=cash_in_advance,
    )
    db.session.add(customer)
    db.session.flush()
    return customer


def add_invoice(customer, number, amount, days_past_due=-10):
    """An open invoice due `days_past_due` days ago (negative: not yet due)."""
    due = today() - timedelta(days=days_past_due)
    db.session.add(
        Invoice(
            customer=customer,
            number=number,
            invoice_date=due - timedelta(days=30),
            due_date=due,
            amount=Decimal(amount),
        )
    )


def ledger(open_ar="5000.00", days_past_due=-10, limit="20000.00", **flags):
    customer = add_customer(limit=limit, **flags)
    add_invoice(customer, "INV-1", open_ar, days_past_due)
    db.session.commit()
    return customer


def start(data=None, who="spec"):
    data = dict(ORDER if data is None else data)
    return engine.start_case("credit_hold_release", data, user(who))


def order(number="SO-1001"):
    return db.session.execute(db.select(Order).filter_by(number=number)).scalar_one()


def notes_for(username):
    who = user(username)
    return [n for n in db.session.execute(db.select(Notification)).scalars() if n.user_id == who.id]


def test_the_diagram_validates(ctx):
    assert validate_bpmn(DIAGRAM.read_text(), _dmn()) == []


def _dmn():
    from casemgr.engine.processes import dmn_for

    return dmn_for(DIAGRAM.read_text())


# --- the ERP's call (API.md, "Cases started by other systems") ------------------------------


def test_the_erp_call_within_limit_releases_without_a_person(api):
    with api.app.app_context():
        ledger(open_ar="5000.00")
    resp = api.as_("spec").post(
        "/api/v1/cases", json={"case_type": "credit_hold_release", "data": dict(ORDER)}
    )
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert body["status"] == "completed"
    assert body["tasks"] == []
    data = body["data"]
    assert data["outcome"] == "auto_released"
    assert (data["credit_limit"], data["exposure"], data["exposure_after"]) == (
        "20000.00",
        "5000.00",
        "17500.00",
    )
    assert data["over_limit_pct"] == "-12.50"
    assert data["oldest_past_due_days"] == 0
    assert data["shipping"]["instruction"] == "ship"
    with api.app.app_context():
        held = order()
        assert (held.status, held.amount) == ("released", Decimal("12500.00"))
        [note] = notes_for("rep")
        assert note.kind == "decision" and "SO-1001" in note.message
        case = db.session.get(Case, body["id"])
        assert case.outcome == "auto_released" and case.customer_number == "C-100"
        kinds = [e.kind for e in case.events]
        assert "order_held" in [e.detail.get("action") for e in case.events if e.kind == "ledger"]
        assert kinds[-1] == "case_completed"


def test_the_erp_call_for_an_unknown_customer_is_422_and_creates_nothing(api):
    resp = api.as_("spec").post(
        "/api/v1/cases",
        json={"case_type": "credit_hold_release", "data": dict(ORDER, customer_number="C-404")},
    )
    assert resp.status_code == 422
    body = resp.get_json()
    assert "C-404" in body["errors"]["customer_number"][0]
    with api.app.app_context():
        assert db.session.execute(db.select(db.func.count(Case.id))).scalar() == 0
        assert db.session.execute(db.select(db.func.count(Order.id))).scalar() == 0


def test_a_sales_rep_may_not_start_a_hold_release(api):
    with api.app.app_context():
        ledger()
    resp = api.as_("rep").post(
        "/api/v1/cases", json={"case_type": "credit_hold_release", "data": dict(ORDER)}
    )
    assert resp.status_code == 403
    with api.app.app_context():
        assert db.session.execute(db.select(db.func.count(Case.id))).scalar() == 0


def test_wrong_values_from_the_erp_are_422_by_field(api):
    with api.app.app_context():
        ledger()
    resp = api.as_("spec").post(
        "/api/v1/cases",
        json={
            "case_type": "credit_hold_release",
            "data": dict(ORDER, amount="-5", reason="because"),
        },
    )
    assert resp.status_code == 422
    assert set(resp.get_json()["errors"]) == {"amount", "reason"}


def test_an_order_number_of_another_customer_is_refused(ctx):
    ledger()
    other = add_customer("C-200")
    db.session.add(Order(customer=other, number="SO-1001", order_date=today(), amount=1))
    db.session.commit()
    with pytest.raises(Invalid) as err:
        start()
    assert "another customer" in err.value.errors["order_number"][0]


def test_a_person_starting_without_the_details_is_asked_for_them(ctx):
    ledger()
    case = start({"customer_number": "C-100"})
    task = open_task(case, "complete_hold_intake")
    assert (task.role, task.assignee.username) == ("ar_specialist", "spec")
    assert db.session.execute(db.select(db.func.count(Order.id))).scalar() == 0
    case = engine.complete_task(task.id, ORDER, user("spec"))
    assert case.outcome == "auto_released"
    assert order().status == "released"


def test_an_order_already_in_the_ledger_is_not_counted_twice(ctx):
    customer = ledger(open_ar="5000.00")
    db.session.add(Order(customer=customer, number="SO-1001", order_date=today(), amount=12500))
    db.session.commit()
    case = start()
    assert case.data["exposure_after"] == "17500.00"
    assert case.outcome == "auto_released"


# --- the specialist's review ----------------------------------------------------------------


def reviewed(action: dict, who="spec", **ledger_kw):
    ledger(**ledger_kw)
    case = start()
    task = open_task(case, "specialist_review")
    return engine.complete_task(task.id, action, user(who))


def test_the_review_shows_the_figures_the_specialist_needs(ctx):
    ledger(open_ar="8500.00")  # 8,500 + 12,500 = 21,000: 5% over 20,000
    case = start()
    task = open_task(case, "specialist_review")
    assert task.role == "ar_specialist" and task.amount == Decimal("12500.00")
    data = case.data
    assert (data["exposure"], data["exposure_after"], data["credit_limit"]) == (
        "8500.00",
        "21000.00",
        "20000.00",
    )
    assert data["over_limit_pct"] == "5.00" and data["oldest_past_due_days"] == 0
    assert order().status == "held"


def test_a_release_within_authority_needs_no_manager(ctx):
    case = reviewed({"review_action": "release"}, open_ar="8500.00")
    assert (case.status, case.outcome) == ("completed", "released")
    assert order().status == "released"
    assert case.data["shipping"] == {
        "order_number": "SO-1001",
        "instruction": "ship",
        "amount": "12500.00",
        "message": "Order SO-1001: released in full (12500.00).",
    }
    [note] = notes_for("rep")
    assert "released in full" in note.message
    account_note = db.session.execute(db.select(AccountNote)).scalar_one()
    assert "decided by the specialist" in account_note.text


def test_a_partial_release_ships_part_and_keeps_the_rest_on_hold(ctx):
    # 10,000 + 12,500 is 12.5% over the limit; releasing 6,000 keeps exposure within it.
    case = reviewed(
        {"review_action": "partial_release", "released_amount": "6000.00"}, open_ar="10000.00"
    )
    assert case.outcome == "partially_released"
    assert case.data["shipping"]["instruction"] == "ship_partial"
    assert case.data["shipping"]["amount"] == "6000.00"
    assert case.data["release_over_limit_pct"] == "-20.00"
    assert order().status == "held"


def test_a_partial_release_must_be_less_than_the_order(ctx):
    ledger(open_ar="8500.00")
    case = start()
    task = open_task(case, "specialist_review")
    with pytest.raises(Invalid) as err:
        engine.complete_task(
            task.id,
            {"review_action": "partial_release", "released_amount": "12500.00"},
            user("spec"),
        )
    assert "less than the order amount" in err.value.errors["released_amount"][0]
    with pytest.raises(Invalid) as err:
        engine.complete_task(task.id, {"review_action": "partial_release"}, user("spec"))
    assert set(err.value.errors) == {"released_amount"}


def test_hold_pending_payment_records_the_promise_and_keeps_the_order_held(ctx):
    promised = today() + timedelta(days=7)
    case = reviewed(
        {
            "review_action": "hold_pending_payment",
            "customer_contact": "Hank Scorpio, AP, 555-0100",
            "promise_amount": "4000.00",
            "promise_date": promised.isoformat(),
        },
        open_ar="8500.00",
    )
    assert case.outcome == "held_pending_payment"
    promise = db.session.execute(db.select(PromiseToPay)).scalar_one()
    assert (promise.amount, promise.promised_date, promise.status, promise.case_id) == (
        Decimal("4000.00"),
        promised,
        "open",
        case.id,
    )
    assert order().status == "held"
    assert case.data["shipping"]["instruction"] == "do_not_ship"
    [note] = notes_for("rep")
    assert "4000.00" in note.message and promised.isoformat() in note.message


def test_a_promise_dated_in_the_past_is_refused_and_the_task_stays_open(ctx):
    ledger(open_ar="8500.00")
    case = start()
    task = open_task(case, "specialist_review")
    yesterday = today() - timedelta(days=1)
    with pytest.raises(Invalid) as err:
        engine.complete_task(
            task.id,
            {
                "review_action": "hold_pending_payment",
                "customer_contact": "Hank Scorpio",
                "promise_amount": "4000.00",
                "promise_date": yesterday.isoformat(),
            },
            user("spec"),
        )
    message = err.value.errors["promise_date"][0]
    assert yesterday.isoformat() in message and "in the past" in message
    db.session.refresh(task)
    assert (task.state, task.assignee) == ("open", None)
    assert db.session.get(Case, case.id).broken is None
    assert db.session.execute(db.select(db.func.count(PromiseToPay.id))).scalar() == 0


def test_a_promise_for_more_than_the_customer_owes_is_refused(ctx):
    ledger(open_ar="8500.00")
    case = start()
    task = open_task(case, "specialist_review")
    with pytest.raises(Invalid) as err:
        engine.complete_task(
            task.id,
            {
                "review_action": "hold_pending_payment",
                "promise_amount": "9000.00",
                "promise_date": (today() + timedelta(days=3)).isoformat(),
            },
            user("spec"),
        )
    assert set(err.value.errors) == {"promise_amount", "customer_contact"}
    assert "8500.00" in err.value.errors["promise_amount"][0]


def test_cash_in_advance_keeps_the_order_held_and_tells_the_rep_why(ctx):
    case = reviewed(
        {"review_action": "cash_in_advance", "review_notes": "new owners, no history"},
        open_ar="8500.00",
    )
    assert case.outcome == "cash_in_advance_required"
    assert order().status == "held"
    [note] = notes_for("rep")
    assert "cash in advance" in note.message and "new owners" in note.message


# --- the manager's approval -----------------------------------------------------------------


def test_a_release_more_than_10_percent_over_the_limit_needs_the_manager(ctx):
    case = reviewed({"review_action": "release"}, open_ar="10000.00")  # 12.5% over
    task = open_task(case, "manager_approval")
    assert task.role == "credit_manager" and task.four_eyes == ["specialist_review"]
    assert task.due_at is not None
    assert case.data["approval_reasons"] == ["exposure 12.5% over the limit"]
    assert order().status == "held"
    case = engine.complete_task(task.id, {"manager_decision": "release"}, user("mgr"))
    assert (case.outcome, order().status) == ("released", "released")
    assert case.data["decided_by"] == "credit manager"


def test_a_partial_release_over_the_limit_is_released_in_part_once_approved(ctx):
    # 14,000 open + 9,000 released = 23,000: 15% over the 20,000 limit.
    case = reviewed(
        {"review_action": "partial_release", "released_amount": "9000.00"}, open_ar="14000.00"
    )
    assert case.data["approval_reasons"] == ["exposure 15.0% over the limit"]
    task = open_task(case, "manager_approval")
    case = engine.complete_task(task.id, {"manager_decision": "release"}, user("mgr"))
    assert case.outcome == "partially_released"
    assert case.data["shipping"]["amount"] == "9000.00"
    assert case.data["shipping"]["instruction"] == "ship_partial"
    assert order().status == "held"


def test_exactly_10_percent_over_the_limit_is_within_the_specialists_authority(ctx):
    case = reviewed({"review_action": "release"}, open_ar="9500.00")  # 22,000: 10.0% over
    assert case.outcome == "released"


def test_a_customer_over_60_days_past_due_needs_the_manager_who_may_refuse(ctx):
    case = reviewed({"review_action": "release"}, open_ar="2000.00", days_past_due=75)
    assert case.data["oldest_past_due_days"] == 75
    task = open_task(case, "manager_approval")
    assert case.data["approval_reasons"] == ["75 days past due"]
    with pytest.raises(Invalid) as err:
        engine.complete_task(task.id, {"manager_decision": "refuse"}, user("mgr"))
    assert set(err.value.errors) == {"manager_comment"}
    case = engine.complete_task(
        task.id,
        {"manager_decision": "refuse", "manager_comment": "collect the 75-day invoice first"},
        user("mgr"),
    )
    assert case.outcome == "refused"
    assert order().status == "held"
    assert case.data["shipping"]["instruction"] == "do_not_ship"
    [note] = notes_for("rep")
    assert "collect the 75-day invoice first" in note.message


def test_45_days_past_due_goes_to_review_but_not_to_the_manager(ctx):
    case = reviewed({"review_action": "release"}, open_ar="2000.00", days_past_due=45)
    assert case.data["auto_release"] is False
    assert case.outcome == "released"


def test_an_escalation_by_the_specialist_goes_to_the_manager(ctx):
    case = reviewed(
        {"review_action": "escalate", "review_notes": "largest customer, ask the manager"},
        open_ar="8500.00",
    )
    task = open_task(case, "manager_approval")
    case = engine.complete_task(task.id, {"manager_decision": "release"}, user("mgr2"))
    assert case.outcome == "released"


def test_an_account_on_hold_is_never_released_automatically(ctx):
    ledger(open_ar="1000.00", on_hold=True)
    case = start(dict(ORDER, reason="account_hold"))
    task = open_task(case, "specialist_review")
    case = engine.complete_task(task.id, {"review_action": "release"}, user("spec"))
    reasons = case.data["approval_reasons"]
    assert reasons == ["account on hold or cash in advance: a hold override"]
    open_task(case, "manager_approval")


def test_the_reviewer_may_not_approve_their_own_release(ctx):
    case = reviewed({"review_action": "release"}, who="dual", open_ar="10000.00")
    task = open_task(case, "manager_approval")
    with pytest.raises(Forbidden, match="four-eyes"):
        engine.complete_task(task.id, {"manager_decision": "release"}, user("dual"))
    with pytest.raises(Forbidden, match="four-eyes"):
        engine.claim_task(task.id, user("dual"))
    db.session.refresh(task)
    assert (task.state, task.assignee) == ("open", None)
    assert order().status == "held"
    case = engine.complete_task(task.id, {"manager_decision": "release"}, user("mgr"))
    assert case.outcome == "released"


# --- orders must not sit: 4 business hours ---------------------------------------------------


def test_an_unhandled_review_escalates_to_the_manager_after_4_business_hours(ctx):
    ledger(open_ar="8500.00")
    case = start()
    review = open_task(case, "specialist_review")
    assert review.due_at == datetime.fromisoformat(case.data["escalate_at"])
    assert "advanced 0 case(s)" in run_timers(ctx, clock.now() + timedelta(minutes=1))
    # Three days on always crosses 4 business hours, weekend or not.
    assert "advanced 1 case(s)" in run_timers(ctx, clock.now() + timedelta(days=3))
    case = db.session.get(Case, case.id)
    db.session.refresh(case)
    states = {t.name: t.state for t in case.tasks}
    assert states["specialist_review"] == "cancelled"
    task = open_task(case, "escalated_decision")
    assert task.role == "credit_manager"
    assert case.data["escalated"] is True
    for name in ("mgr", "mgr2", "dual"):
        assert [n.kind for n in notes_for(name)] == ["escalation"]
    assert notes_for("spec") == []
    case = engine.complete_task(task.id, {"manager_decision": "release"}, user("mgr"))
    assert (case.outcome, order().status) == ("released", "released")


def _next_friday_afternoon() -> datetime:
    now = clock.now()
    days = (4 - now.weekday()) % 7 or 7
    friday = (now + timedelta(days=days)).date()
    return datetime(friday.year, friday.month, friday.day, 15, 0, tzinfo=UTC)


def test_business_hours_skip_the_weekend(ctx):
    ledger(open_ar="8500.00")
    friday = _next_friday_afternoon()
    with clock.as_of(friday):
        case = start(dict(ORDER, reason="account_hold"))
    monday_11 = friday + timedelta(days=3, hours=-4)  # 2 hours on Friday, 2 on Monday
    review = open_task(case, "specialist_review")
    assert review.due_at == monday_11
    assert "advanced 0 case(s)" in run_timers(ctx, monday_11 - timedelta(minutes=1))
    assert "advanced 1 case(s)" in run_timers(ctx, monday_11 + timedelta(minutes=1))
    case = db.session.get(Case, case.id)
    db.session.refresh(case)
    open_task(case, "escalated_decision")


def test_a_review_done_in_time_cancels_the_escalation(ctx):
    case = reviewed({"review_action": "release"}, open_ar="8500.00")
    assert case.status == "completed" and case.next_wake_at is None
    assert "advanced 0 case(s)" in run_timers(ctx, clock.now() + timedelta(days=3))

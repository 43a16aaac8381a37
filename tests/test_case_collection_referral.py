"""Collection agency referral (DOMAIN.md §5): final demand, the 10-day wait that a payment in
full ends, the sales rep's 5 days to object, the manager's approval, the hold, the agency's
recoveries and the bad-debt write-off by the authority matrix."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from casemgr.accounts import find_user
from casemgr.engine import cases as engine
from casemgr.engine import clock, payments
from casemgr.engine.errors import Forbidden, Invalid
from casemgr.engine.processes import dmn_for
from casemgr.engine.validation import validate_bpmn
from casemgr.extensions import db
from casemgr.ledger import operations
from casemgr.ledger.metrics import customer_summary
from casemgr.models import AccountNote, Case, Customer, Invoice, Notification, WriteOff
from tests.case_steps import run_timers

DIAGRAM = Path(__file__).parent.parent / "workflows" / "bpmn" / "collection_referral.bpmn"
# Two invoices 100 and 95 days past due: 4,000.00 owed.
SMALL = (("INV-A", "3000.00", 100), ("INV-B", "1000.00", 95))
# 12,000.00 owed: a remainder above 5,000 is the controller's to write off.
LARGE = (("INV-A", "7000.00", 130), ("INV-B", "5000.00", 100))


def user(name):
    return find_user(name)


def today():
    return clock.now().date()


def add_customer(invoices=SMALL, number="C-300"):
    customer = Customer(
        number=number, name="Initech LLC", credit_limit=Decimal("10000.00"), sales_rep="rep"
    )
    db.session.add(customer)
    db.session.flush()
    for invoice_number, amount, days_past_due in invoices:
        due = today() - timedelta(days=days_past_due)
        db.session.add(
            Invoice(
                customer=customer,
                number=invoice_number,
                invoice_date=due - timedelta(days=30),
                due_date=due,
                amount=Decimal(amount),
            )
        )
    db.session.commit()
    return customer


def customer(number="C-300"):
    row = db.session.execute(db.select(Customer).filter_by(number=number)).scalar_one()
    db.session.refresh(row)
    return row


def start(data=None, who="spec"):
    data = {"customer_number": "C-300", "trigger": "over_90_days"} if data is None else data
    return engine.start_case("collection_referral", dict(data), user(who))


def reload(case):
    case = db.session.get(Case, case.id)
    db.session.refresh(case)
    return case


def open_task(case, name=None):
    case = reload(case)
    tasks = [t for t in case.tasks if t.state == "open" and (name is None or t.name == name)]
    assert len(tasks) == 1, [(t.name, t.state) for t in case.tasks]
    return tasks[0]


def complete(case, name, data, who):
    return engine.complete_task(open_task(case, name).id, data, user(who))


def notes_for(username):
    who = user(username)
    return list(db.session.execute(db.select(Notification).filter_by(user_id=who.id)).scalars())


DEMAND = {"letter_sent_on": None, "letter_channel": "registered_mail"}


def demand_sent(invoices=SMALL, who="spec"):
    add_customer(invoices)
    case = start()
    return complete(case, "final_demand", dict(DEMAND, letter_sent_on=today().isoformat()), who)


def waited(app, invoices=SMALL, demand_by="spec"):
    """The final demand sent and ten days passed without payment; returns (case, moment)."""
    case = demand_sent(invoices, demand_by)
    moment = clock.now() + timedelta(days=10, minutes=5)
    assert "advanced 1 case(s)" in run_timers(app, moment)
    return reload(case), moment


def at_manager(app, invoices=SMALL, demand_by="spec"):
    case, _moment = waited(app, invoices, demand_by)
    return complete(case, "sales_rep_objection", {"objection": "no_objection"}, "rep")


def handed_off(app, invoices=SMALL, fee="25.00"):
    case = at_manager(app, invoices)
    case = complete(case, "manager_referral_approval", {"referral_decision": "approve"}, "mgr")
    return complete(
        case,
        "agency_handoff",
        {
            "agency": "atradius",
            "packet_sent_on": today().isoformat(),
            "packet_contents": ["invoices", "statement", "contact_log"],
            "contingency_fee_pct": fee,
        },
        "spec",
    )


def recovery(gross, status="final"):
    return {
        "recovered_gross": gross,
        "recovered_on": today().isoformat(),
        "agency_status": status,
    }


# --- start and final demand -----------------------------------------------------------------


def test_the_diagram_validates(ctx):
    text = DIAGRAM.read_text()
    assert validate_bpmn(text, dmn_for(text)) == []


def test_the_balance_and_days_past_due_default_from_the_ledger(ctx):
    add_customer()
    case = start()
    task = open_task(case, "final_demand")
    assert (task.role, task.amount) == ("ar_specialist", Decimal("4000.00"))
    data = reload(case).data
    assert (data["balance"], data["referred_balance"], data["oldest_past_due_days"]) == (
        "4000.00",
        "4000.00",
        100,
    )
    assert data["past_due"] == "4000.00"


def test_a_balance_given_at_start_is_kept(ctx):
    add_customer()
    case = start({"customer_number": "C-300", "trigger": "specialist_decision", "balance": "3000"})
    assert reload(case).data["referred_balance"] == "3000.00"


def test_an_unknown_customer_or_a_balance_above_what_is_owed_is_refused(ctx):
    add_customer()
    with pytest.raises(Invalid) as err:
        start({"customer_number": "C-404", "trigger": "over_90_days"})
    assert "C-404" in err.value.errors["customer_number"][0]
    with pytest.raises(Invalid) as err:
        start({"customer_number": "C-300", "trigger": "over_90_days", "balance": "4000.01"})
    assert "4000.00" in err.value.errors["balance"][0]
    with pytest.raises(Invalid) as err:
        start({"customer_number": "C-300", "trigger": "because"})
    assert set(err.value.errors) == {"trigger"}
    assert db.session.execute(db.select(db.func.count(Case.id))).scalar() == 0


def test_a_start_without_a_trigger_asks_the_starter(ctx):
    add_customer()
    case = start({"customer_number": "C-300"})
    task = open_task(case, "complete_referral_intake")
    assert task.assignee.username == "spec"
    case = engine.complete_task(
        task.id, {"customer_number": "C-300", "trigger": "broken_promises"}, user("spec")
    )
    open_task(case, "final_demand")


def test_an_account_that_owes_nothing_is_not_referred(ctx):
    add_customer(invoices=())
    case = start()
    assert (case.status, case.outcome) == ("completed", "nothing_owed")


def test_after_the_final_demand_the_case_waits_for_payment_or_ten_days(ctx):
    case = demand_sent()
    assert [t.name for t in case.tasks if t.state == "open"] == []
    assert case.awaiting == ",payment_received,"
    delta = case.next_wake_at - clock.now()
    assert timedelta(days=9, hours=23) < delta <= timedelta(days=10)


# --- payment in full during the wait ---------------------------------------------------------


def test_a_payment_in_full_posted_through_the_engine_ends_the_case(ctx):
    case = demand_sent()
    cleared, ended = payments.post_payment("C-300", "4000.00", user("spec"))
    assert cleared and ended == [case.id]
    case = reload(case)
    assert (case.status, case.outcome) == ("completed", "paid_in_full")


def pay(amount, **kw):
    """What payments.post_payment does, in one transaction: the payment, then the message."""
    cleared = operations.post_payment("C-300", amount, **kw)
    ended = payments.deliver_payment_messages(user("spec")) if cleared else []
    db.session.commit()
    return cleared, ended


def test_a_payment_in_full_during_the_wait_ends_the_case_with_no_referral(ctx):
    case = demand_sent()
    cleared, ended = pay("4000.00", reference="CHK-5521")
    assert cleared and ended == [case.id]
    case = reload(case)
    assert (case.status, case.outcome) == ("completed", "paid_in_full")
    assert case.data["payment"] == {"paid_in_full": True, "balance": "0.00"}
    assert case.awaiting is None and case.next_wake_at is None
    assert [t.name for t in case.tasks] == ["final_demand"]
    account = customer()
    assert (account.on_hold, account.cash_in_advance) == (False, False)
    assert notes_for("rep") == []
    assert "advanced 0 case(s)" in run_timers(ctx, clock.now() + timedelta(days=30))


def test_a_partial_payment_does_not_end_the_wait(ctx):
    case = demand_sent()
    assert pay("1000.00", invoice_number="INV-B") == (False, [])
    case = reload(case)
    assert case.status == "open" and case.awaiting == ",payment_received,"


def test_a_payment_in_full_before_the_wait_is_noticed_when_the_ten_days_end(ctx):
    add_customer()
    case = start()
    assert pay("4000.00") == (True, [])  # the case is not waiting yet: no message
    case = complete(case, "final_demand", dict(DEMAND, letter_sent_on=today().isoformat()), "spec")
    assert case.status == "open"
    run_timers(ctx, clock.now() + timedelta(days=10, minutes=5))
    case = reload(case)
    assert (case.status, case.outcome) == ("completed", "paid_in_full")


# --- the sales rep's objection ----------------------------------------------------------------


def test_ten_days_without_payment_ask_the_sales_rep_with_a_five_day_deadline(ctx):
    case, moment = waited(ctx)
    task = open_task(case, "sales_rep_objection")
    assert task.role == "sales_rep"
    assert abs(task.due_at - (moment + timedelta(days=5))) < timedelta(seconds=1)
    assert case.awaiting is None
    [note] = notes_for("rep")
    assert note.kind == "consultation" and "C-300" in note.message


def test_no_answer_in_five_days_is_no_objection(ctx):
    case, moment = waited(ctx)
    assert "advanced 0 case(s)" in run_timers(ctx, moment + timedelta(days=4))
    assert "advanced 1 case(s)" in run_timers(ctx, moment + timedelta(days=5, minutes=1))
    case = reload(case)
    assert {t.name: t.state for t in case.tasks}["sales_rep_objection"] == "cancelled"
    task = open_task(case, "manager_referral_approval")
    assert task.role == "credit_manager"
    assert (case.data["objection"], case.data["sales_rep_objected"]) == ("no_answer", False)


def test_an_objection_needs_a_reason_and_the_manager_must_answer_it(ctx):
    case, _moment = waited(ctx)
    with pytest.raises(Invalid) as err:
        complete(case, "sales_rep_objection", {"objection": "object"}, "rep")
    assert set(err.value.errors) == {"objection_reason"}
    reason = "They are renegotiating a large contract with us"
    case = complete(
        case, "sales_rep_objection", {"objection": "object", "objection_reason": reason}, "rep"
    )
    assert case.data["objection_reason"] == reason
    with pytest.raises(Invalid) as err:
        complete(case, "manager_referral_approval", {"referral_decision": "approve"}, "mgr")
    assert "objected" in err.value.errors["referral_comment"][0]
    case = complete(
        case,
        "manager_referral_approval",
        {"referral_decision": "approve", "referral_comment": "the contract does not cover this"},
        "mgr",
    )
    open_task(case, "agency_handoff")


# --- the manager's approval and the hold -----------------------------------------------------


def test_the_specialist_who_sent_the_final_demand_may_not_approve_the_referral(ctx):
    case = at_manager(ctx, demand_by="dual")
    task = open_task(case, "manager_referral_approval")
    assert task.four_eyes == ["complete_referral_intake", "final_demand"]
    with pytest.raises(Forbidden, match="four-eyes"):
        engine.complete_task(task.id, {"referral_decision": "approve"}, user("dual"))
    db.session.refresh(task)
    assert (task.state, task.assignee) == ("open", None)
    assert customer().on_hold is False
    engine.complete_task(task.id, {"referral_decision": "approve"}, user("mgr2"))


def test_a_rejected_referral_ends_the_case_without_a_hold(ctx):
    case = at_manager(ctx)
    with pytest.raises(Invalid):
        complete(case, "manager_referral_approval", {"referral_decision": "reject"}, "mgr")
    case = complete(
        case,
        "manager_referral_approval",
        {"referral_decision": "reject", "referral_comment": "give them until month end"},
        "mgr",
    )
    assert (case.status, case.outcome) == ("completed", "referral_rejected")
    account = customer()
    assert (account.on_hold, account.cash_in_advance) == (False, False)
    assert "give them until month end" in notes_for("rep")[-1].message


def test_an_approved_referral_puts_the_account_on_hold_and_cash_in_advance(ctx):
    case = at_manager(ctx)
    case = complete(case, "manager_referral_approval", {"referral_decision": "approve"}, "mgr")
    account = customer()
    assert (account.on_hold, account.cash_in_advance) == (True, True)
    assert "collection agency" in account.hold_reason
    assert "on hold" in notes_for("rep")[-1].message
    task = open_task(case, "agency_handoff")
    assert task.role == "ar_specialist"


def test_the_hand_off_checks_the_agency_packet_and_fee(ctx):
    case = at_manager(ctx)
    case = complete(case, "manager_referral_approval", {"referral_decision": "approve"}, "mgr")
    bad = {
        "agency": "someone",
        "packet_sent_on": (today() + timedelta(days=1)).isoformat(),
        "packet_contents": ["invoices"],
        "contingency_fee_pct": "50.01",
    }
    with pytest.raises(Invalid) as err:
        complete(case, "agency_handoff", bad, "spec")
    assert set(err.value.errors) == {
        "agency",
        "packet_sent_on",
        "packet_contents",
        "contingency_fee_pct",
    }
    assert "contact log" in err.value.errors["packet_contents"][0]


# --- recoveries and the bad-debt write-off --------------------------------------------------


def recovered(app, invoices=SMALL, fee="25.00", who="spec"):
    """Handed off; the agency recovered 1,000.00 and then 333.33 (final report)."""
    case = handed_off(app, invoices, fee)
    case = complete(case, "record_recovery", recovery("1000.00", "more_expected"), who)
    return complete(case, "record_recovery", recovery("333.33"), who)


def test_recoveries_are_recorded_net_of_the_fee_and_the_rest_goes_to_the_manager(ctx):
    case = handed_off(ctx, fee="25.00")
    notes = [n.text for n in db.session.execute(db.select(AccountNote)).scalars()]
    assert any("Referred to atradius" in text and "25.00%" in text for text in notes)
    case = complete(case, "record_recovery", recovery("1000.00", "more_expected"), "spec")
    open_task(case, "record_recovery")
    case = complete(case, "record_recovery", recovery("333.33"), "spec")
    data = case.data
    assert [(r["gross"], r["fee"], r["net"]) for r in data["recoveries"]] == [
        ("1000.00", "250.00", "750.00"),
        ("333.33", "83.33", "250.00"),
    ]
    assert (
        data["total_recovered_gross"],
        data["total_agency_fees"],
        data["total_recovered_net"],
    ) == ("1333.33", "333.33", "1000.00")
    notes = [n.text for n in db.session.execute(db.select(AccountNote)).scalars()]
    assert sum("recovered" in text for text in notes) == 2
    assert (data["write_off_amount"], data["authority_kind"]) == ("2666.67", "bad_debt_write_off")
    assert data["approver_role"] == "credit_manager"
    task = open_task(case, "manager_write_off_approval")
    assert (task.role, task.four_eyes) == ("credit_manager", ["record_recovery"])
    assert db.session.execute(db.select(db.func.count(WriteOff.id))).scalar() == 0


def test_the_manager_writes_off_the_remainder_as_bad_debt_to_the_cent(ctx):
    case = recovered(ctx)
    task = open_task(case, "manager_write_off_approval")
    case = engine.complete_task(task.id, {"write_off_decision": "approve"}, user("mgr"))
    assert (case.status, case.outcome) == ("completed", "written_off")
    assert case.data["bad_debt_written_off"] == "2666.67"
    rows = db.session.execute(db.select(WriteOff).order_by(WriteOff.id)).scalars().all()
    assert [(r.invoice.number, r.amount, r.kind, r.case_id) for r in rows] == [
        ("INV-A", Decimal("2666.67"), "bad_debt", case.id)
    ]
    # The recoveries are not posted by the case (no payment operation): 1,333.33 stays open
    # until cash application posts the agency's remittance.
    assert customer_summary("C-300").open_balance == Decimal("1333.33")


def test_a_remainder_above_5000_is_the_controllers_to_approve(ctx):
    case = handed_off(ctx, invoices=LARGE, fee="30.00")
    case = complete(case, "record_recovery", recovery("2000.00"), "spec")
    assert case.data["recoveries"][0]["net"] == "1400.00"
    assert (case.data["write_off_amount"], case.data["approver_role"]) == ("10000.00", "controller")
    task = open_task(case, "controller_write_off_approval")
    assert (task.role, task.four_eyes) == ("controller", ["record_recovery"])
    with pytest.raises(Forbidden):
        engine.complete_task(task.id, {"write_off_decision": "approve"}, user("mgr"))
    db.session.refresh(task)
    assert task.state == "open"


def test_the_controller_writes_off_above_5000_oldest_invoice_first(ctx):
    case = handed_off(ctx, invoices=LARGE, fee="30.00")
    case = complete(case, "record_recovery", recovery("2000.00"), "spec")
    task = open_task(case, "controller_write_off_approval")
    case = engine.complete_task(task.id, {"write_off_decision": "approve"}, user("ctrl"))
    assert case.outcome == "written_off"
    rows = db.session.execute(db.select(WriteOff).order_by(WriteOff.id)).scalars().all()
    assert [(r.invoice.number, r.amount) for r in rows] == [
        ("INV-A", Decimal("7000.00")),
        ("INV-B", Decimal("3000.00")),
    ]
    assert customer_summary("C-300").open_balance == Decimal("2000.00")


def test_exactly_5000_is_within_the_managers_authority(ctx):
    case = handed_off(ctx, invoices=LARGE)
    case = complete(case, "record_recovery", recovery("7000.00"), "spec")
    assert case.data["write_off_amount"] == "5000.00"
    open_task(case, "manager_write_off_approval")


def test_whoever_recorded_the_recoveries_may_not_approve_the_write_off(ctx):
    case = recovered(ctx, who="dual")
    task = open_task(case, "manager_write_off_approval")
    with pytest.raises(Forbidden, match="four-eyes"):
        engine.complete_task(task.id, {"write_off_decision": "approve"}, user("dual"))
    with pytest.raises(Forbidden, match="four-eyes"):
        engine.claim_task(task.id, user("dual"))
    db.session.refresh(task)
    assert (task.state, task.assignee) == ("open", None)
    assert db.session.execute(db.select(db.func.count(WriteOff.id))).scalar() == 0


def test_a_recovery_cannot_exceed_what_is_still_unrecovered(ctx):
    case = handed_off(ctx)
    case = complete(case, "record_recovery", recovery("3000.00", "more_expected"), "spec")
    with pytest.raises(Invalid) as err:
        complete(case, "record_recovery", recovery("1000.01"), "spec")
    assert "1000.00" in err.value.errors["recovered_gross"][0]


def test_an_account_recovered_in_full_needs_no_write_off(ctx):
    case = handed_off(ctx)
    case = complete(case, "record_recovery", recovery("4000.00", "more_expected"), "spec")
    assert (case.status, case.outcome) == ("completed", "recovered_in_full")
    assert db.session.execute(db.select(db.func.count(WriteOff.id))).scalar() == 0


def test_a_refused_write_off_leaves_the_balance_open(ctx):
    case = handed_off(ctx)
    case = complete(case, "record_recovery", recovery("0.00"), "spec")
    task = open_task(case, "manager_write_off_approval")
    case = engine.complete_task(
        task.id,
        {"write_off_decision": "reject", "write_off_comment": "sue instead"},
        user("mgr"),
    )
    assert case.outcome == "write_off_refused"
    assert db.session.execute(db.select(db.func.count(WriteOff.id))).scalar() == 0
    assert customer_summary("C-300").open_balance == Decimal("4000.00")


# --- replay -----------------------------------------------------------------------------------


def test_an_unchanged_diagram_replays_every_referral_as_it_ran(ctx):
    """ledger.credit_check is called at the start and again after the ten days, with other
    answers each time (days past due grew): replay answers each call as it was answered."""
    from casemgr.engine import replay
    from casemgr.models import CaseType

    written_off = recovered(ctx)
    engine.complete_task(
        open_task(written_off, "manager_write_off_approval").id,
        {"write_off_decision": "approve"},
        user("mgr"),
    )
    checks = [
        e.detail["result"]
        for e in reload(written_off).events
        if e.kind == "service_called" and e.detail["operation"] == "ledger.credit_check"
    ]
    assert len(checks) >= 2 and checks[0] != checks[-1]
    latest = (
        db.session.execute(db.select(CaseType).filter_by(key="collection_referral"))
        .scalar_one()
        .latest()
    )
    results = replay.replay_draft("collection_referral", latest.bpmn_xml)
    assert [(r.case_id, r.status) for r in results] == [(written_off.id, "same")], [
        r.message for r in results
    ]

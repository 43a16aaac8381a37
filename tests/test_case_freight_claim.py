"""Freight claims through the engine: documents, filing within the Carmack nine months, the
carrier's 30-day acknowledgment and 120-day decision, and the settlement on the ledger.

Settlement of a linked customer deduction (the invoice the customer short-paid): what the
carrier paid clears that much of the deduction by credit memo (the customer's deduction is
accepted; it is not a loss), and what it did not pay is written off as ``freight_remainder``
after approval by the authority matrix, read with the small-balance write-off limits
(specialist up to 50, manager up to 5,000, controller above), four-eyes against whoever
recorded the carrier's decision. Both entries post in one step, after the approval.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from casemgr.accounts import find_user
from casemgr.engine import cases as engine
from casemgr.engine import clock
from casemgr.engine.errors import Forbidden, Invalid
from casemgr.extensions import db
from casemgr.ledger.operations import invoice_open_balance
from casemgr.models import (
    AccountNote,
    Case,
    CreditMemo,
    Customer,
    Invoice,
    Notification,
    Payment,
    WriteOff,
)
from tests.case_steps import count, open_names, open_task, run_timers

TODAY = date.today()
CUSTOMER = "C-30001"
INVOICE = "INV-8001"
DOCUMENTS = {
    "has_bill_of_lading": True,
    "has_delivery_receipt": True,
    "has_commercial_invoice": True,
    "has_photos_or_inspection": True,
    "document_references": "BOL-4471902.pdf\nDR-4471902-exceptions.pdf\nINV-8001.pdf",
}
FILING = {
    "filed_date": TODAY.isoformat(),
    "carrier_claim_number": "CLM-99001",
    "filed_via": "portal",
}
ACKNOWLEDGED = {"acknowledged_date": TODAY.isoformat()}


def user(name):
    return find_user(name)


def add_ledger(invoice_amount="5000.00", paid="3800.00"):
    """A customer who short-paid an invoice: the open balance is the deduction."""
    customer = Customer(number=CUSTOMER, name="Acme Hardware", sales_rep="rep")
    other = Customer(number="C-30002", name="Umbrella Supply")
    invoice = Invoice(
        customer=customer,
        number=INVOICE,
        invoice_date=TODAY - timedelta(days=30),
        due_date=TODAY,
        amount=Decimal(invoice_amount),
    )
    foreign = Invoice(
        customer=other,
        number="INV-8002",
        invoice_date=TODAY - timedelta(days=30),
        due_date=TODAY,
        amount=Decimal("100.00"),
    )
    payment = Payment(
        customer=customer,
        reference="LBX-5001",
        received_date=TODAY - timedelta(days=2),
        amount=Decimal(paid),
        method="lockbox",
        invoice=invoice,
    )
    db.session.add_all([customer, other, invoice, foreign, payment])
    db.session.commit()


def claim(**changes):
    data = {
        "customer_number": CUSTOMER,
        "carrier": "Old Dominion",
        "pro_number": "PRO-4471902",
        "ship_date": (TODAY - timedelta(days=20)).isoformat(),
        "delivery_date": (TODAY - timedelta(days=15)).isoformat(),
        "exception_type": "noted_on_receipt",
        "claimed_amount": "1200.00",
        "deduction_invoice_number": INVOICE,
        "deduction_amount": "1200.00",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def outcome(decision, recovered, reason="Carrier says the pallet was packed badly."):
    data = {
        "carrier_decision": decision,
        "decision_date": TODAY.isoformat(),
        "amount_recovered": recovered,
    }
    if decision != "declined":
        data["payment_reference"] = "ODFL-CHK-5521"
    if decision != "paid":
        data["decline_reason"] = reason
    return data


def balance():
    invoice = db.session.execute(db.select(Invoice).filter_by(number=INVOICE)).scalar_one()
    return invoice_open_balance(invoice)


def disputed() -> bool:
    invoice = db.session.execute(db.select(Invoice).filter_by(number=INVOICE)).scalar_one()
    db.session.refresh(invoice)
    return invoice.disputed


def rows(model):
    return list(db.session.execute(db.select(model)).scalars())


def complete(case, name, data, who="spec"):
    return engine.complete_task(open_task(case, name).id, data, user(who))


def start(data=None, who="spec"):
    return engine.start_case("freight_claim", claim() if data is None else data, user(who))


def filed(data=None):
    case = start(data)
    case = complete(case, "gather_documents", DOCUMENTS)
    return complete(case, "file_claim", FILING)


def at(day: date, hour: int = 9) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def nine_months_after(day: date) -> date:
    month = day.month + 9
    year, month = day.year + (month - 1) // 12, (month - 1) % 12 + 1
    for last in (31, 30, 29, 28):
        try:
            return date(year, month, min(day.day, last))
        except ValueError:
            continue
    raise AssertionError(day)


# --- starting ---------------------------------------------------------------------------


def test_a_direct_claim_starts_with_the_documents_and_a_filing_deadline(ctx):
    add_ledger()
    case = start(claim(pro_number="odfl-4471902"))
    task = open_task(case)
    assert (task.name, task.role) == ("gather_documents", "ar_specialist")
    deadline = nine_months_after(TODAY - timedelta(days=15))
    assert case.data["filing_deadline"] == deadline.isoformat()
    assert case.data["filing_warning_at"] == (at(deadline) - timedelta(days=30)).isoformat()
    assert case.data["pro_number"] == "ODFL-4471902"
    assert case.amount == Decimal("1200.00") and case.customer_number == CUSTOMER
    assert case.next_wake_at == at(deadline) - timedelta(days=30)
    assert not {"months", "year", "month", "month_end"} & set(case.data)


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"customer_number": "C-404"}, "customer_number", "no customer C-404"),
        ({"deduction_invoice_number": "INV-8002"}, "deduction_invoice_number", "C-30002"),
        ({"deduction_invoice_number": "INV-0"}, "deduction_invoice_number", "no invoice INV-0"),
        ({"deduction_amount": "1200.01"}, "deduction_amount", "open balance of 1200.00"),
        ({"pro_number": "12"}, "pro_number", "e.g. PRO-4471902"),
        ({"pro_number": "PRO 4471902"}, "pro_number", "6 to 20 letters"),
        (
            {"delivery_date": (TODAY - timedelta(days=21)).isoformat()},
            "delivery_date",
            "before the ship date",
        ),
        (
            {"delivery_date": (TODAY + timedelta(days=1)).isoformat()},
            "delivery_date",
            "cannot be in the future",
        ),
        (
            {"exception_type": "concealed_damage", "concealed_reported_date": ""},
            "concealed_reported_date",
            "reported to the carrier",
        ),
        ({"claimed_amount": "0.00"}, "claimed_amount", "Enter an amount"),
    ],
)
def test_bad_start_data_is_refused_and_nothing_is_created(ctx, changes, field, message):
    add_ledger()
    with pytest.raises(Invalid) as err:
        start(claim(**changes))
    assert set(err.value.errors) == {field}
    assert message in " ".join(err.value.errors[field])
    assert count(Case) == 0


def test_missing_details_go_to_an_intake_task_that_enforces_the_rules(ctx):
    add_ledger()
    case = start(claim(exception_type="concealed_damage", deduction_amount=None))
    task = open_task(case, "complete_intake")
    assert task.assignee.username == "spec"
    with pytest.raises(Invalid) as err:
        engine.complete_task(task.id, claim(exception_type="concealed_damage"), user("spec"))
    assert set(err.value.errors) == {"concealed_reported_date"}
    reported = (TODAY - timedelta(days=10)).isoformat()
    data = claim(exception_type="concealed_damage", concealed_reported_date=reported)
    case = engine.complete_task(task.id, data, user("spec"))
    assert open_names(case) == ["gather_documents"]
    assert case.data["filing_deadline"] == nine_months_after(TODAY - timedelta(days=15)).isoformat()


# --- documents and filing ---------------------------------------------------------------


def test_the_documents_checklist_follows_the_kind_of_damage(ctx):
    add_ledger()
    case = start(
        claim(
            exception_type="concealed_damage",
            concealed_reported_date=(TODAY - timedelta(days=12)).isoformat(),
        )
    )
    task = open_task(case, "gather_documents")
    missing = dict(DOCUMENTS, has_bill_of_lading=False, has_photos_or_inspection=False)
    with pytest.raises(Invalid) as err:
        engine.complete_task(task.id, missing, user("spec"))
    assert set(err.value.errors) == {"has_bill_of_lading", "has_photos_or_inspection"}
    # A concealed damage needs no receipt with exceptions: there were none to note.
    case = engine.complete_task(task.id, dict(DOCUMENTS, has_delivery_receipt=False), user("spec"))
    assert case.data["document_references"].splitlines()[0] == "BOL-4471902.pdf"
    assert open_names(case) == ["file_claim"]


def test_filing_records_the_claim_and_starts_the_carrier_clocks(ctx):
    add_ledger()
    case = start()
    case = complete(case, "gather_documents", DOCUMENTS)
    task = open_task(case, "file_claim")
    early = dict(FILING, filed_date=(TODAY - timedelta(days=16)).isoformat())
    with pytest.raises(Invalid, match="some values"):
        engine.complete_task(task.id, early, user("spec"))
    case = engine.complete_task(task.id, FILING, user("spec"))
    assert open_names(case) == ["record_acknowledgment", "record_outcome"]
    assert case.data["acknowledgment_due_at"] == (at(TODAY) + timedelta(days=30)).isoformat()
    assert case.data["disposition_due_at"] == (at(TODAY) + timedelta(days=120)).isoformat()
    assert case.data["filed_late"] is False
    assert case.next_wake_at == at(TODAY) + timedelta(days=30)
    ack = open_task(case, "record_acknowledgment")
    assert ack.due_at == at(TODAY) + timedelta(days=30)


# --- outcomes ---------------------------------------------------------------------------


def test_paid_in_full_clears_the_deduction_by_credit_memo_once_both_answers_are_in(ctx):
    add_ledger()
    case = filed()
    case = complete(case, "record_outcome", outcome("paid", "1200.00"))
    assert case.status == "open" and open_names(case) == ["record_acknowledgment"]
    assert rows(CreditMemo) == []
    case = complete(case, "record_acknowledgment", ACKNOWLEDGED)
    assert (case.status, case.outcome) == ("completed", "paid")
    assert case.data["acknowledged_date"] == TODAY.isoformat()  # both branches' data kept
    assert case.data["carrier_decision"] == "paid" and case.data["filed_via"] == "portal"
    [memo] = rows(CreditMemo)
    assert (memo.amount, memo.invoice.number, memo.case_id) == (
        Decimal("1200.00"),
        INVOICE,
        case.id,
    )
    assert memo.reason.startswith("Freight claim CLM-99001 with Old Dominion (PRO PRO-4471902)")
    assert rows(WriteOff) == [] and balance() == Decimal("0.00")
    note = rows(AccountNote)[0].text
    assert "paid, 1200.00 of 1200.00 recovered" in note
    assert "1200.00 credited, 0.00 written off" in note
    message = rows(Notification)[0]
    assert message.user_id == user("spec").id and "paid, 1200.00 of 1200.00" in message.message


def test_a_partial_payment_writes_off_the_rest_once_the_manager_approves(ctx):
    add_ledger()
    case = filed()
    case = complete(case, "record_acknowledgment", ACKNOWLEDGED)
    case = complete(case, "record_outcome", outcome("partially_paid", "700.00"), who="dual")
    task = open_task(case, "manager_approval")
    assert case.data["write_off_amount"] == "500.00"
    assert case.data["deduction_credit_amount"] == "700.00"
    assert rows(CreditMemo) == [] and rows(WriteOff) == []
    with pytest.raises(Forbidden, match="four-eyes"):
        engine.complete_task(task.id, {"decision": "approve"}, user("dual"))
    case = engine.complete_task(task.id, {"decision": "approve"}, user("mgr"))
    assert (case.status, case.outcome) == ("completed", "partially_paid")
    [write_off] = rows(WriteOff)
    assert (write_off.amount, write_off.kind, write_off.invoice.number) == (
        Decimal("500.00"),
        "freight_remainder",
        INVOICE,
    )
    assert [m.amount for m in rows(CreditMemo)] == [Decimal("700.00")]
    assert balance() == Decimal("0.00")


def test_a_declined_claim_writes_off_the_whole_deduction(ctx):
    add_ledger()
    case = filed()
    case = complete(case, "record_acknowledgment", ACKNOWLEDGED)
    case = complete(case, "record_outcome", outcome("declined", "0.00"))
    case = complete(case, "manager_approval", {"decision": "approve"}, who="mgr2")
    assert case.outcome == "declined"
    assert [(w.amount, w.kind) for w in rows(WriteOff)] == [
        (Decimal("1200.00"), "freight_remainder")
    ]
    assert rows(CreditMemo) == [] and balance() == Decimal("0.00")


@pytest.mark.parametrize(
    ("recovered", "write_off", "approval", "approver"),
    [
        ("9950.00", "50.00", "specialist_approval", "spec2"),
        ("9949.99", "50.01", "manager_approval", "mgr"),
        ("5000.00", "5000.00", "manager_approval", "mgr"),
        ("4999.99", "5000.01", "controller_approval", "ctrl"),
    ],
)
def test_the_write_off_goes_to_the_approver_of_its_size(
    ctx, recovered, write_off, approval, approver
):
    add_ledger("25000.00", paid="15000.00")
    amounts = {"claimed_amount": "10000.00", "deduction_amount": "10000.00"}
    case = filed(claim(**amounts))
    case = complete(case, "record_acknowledgment", ACKNOWLEDGED)
    case = complete(case, "record_outcome", outcome("partially_paid", recovered))
    task = open_task(case)
    assert task.name == approval
    with pytest.raises(Forbidden):
        engine.complete_task(task.id, {"decision": "approve"}, user("spec"))
    complete(case, approval, {"decision": "approve"}, who=approver)
    assert [w.amount for w in rows(WriteOff)] == [Decimal(write_off)]
    assert [m.amount for m in rows(CreditMemo)] == [Decimal(recovered)]
    assert balance() == Decimal("0.00")


def test_a_sent_back_write_off_is_revised_and_approved_again(ctx):
    add_ledger()
    case = filed()
    case = complete(case, "record_acknowledgment", ACKNOWLEDGED)
    case = complete(case, "record_outcome", outcome("partially_paid", "700.00"))
    case = complete(
        case,
        "manager_approval",
        {"decision": "send_back", "comment": "Appeal: the receipt notes the damage."},
        who="mgr",
    )
    task = open_task(case, "revise_outcome")
    assert case.data["comment"] == "Appeal: the receipt notes the damage."
    case = engine.complete_task(task.id, outcome("partially_paid", "1190.00"), user("spec2"))
    task = open_task(case, "specialist_approval")
    # Whoever recorded either version of the decision proposed the amount.
    for proposer in ("spec", "spec2"):
        with pytest.raises(Forbidden, match="four-eyes"):
            engine.complete_task(task.id, {"decision": "approve"}, user(proposer))
    case = engine.complete_task(task.id, {"decision": "approve"}, user("dual"))
    assert case.outcome == "partially_paid"
    assert [w.amount for w in rows(WriteOff)] == [Decimal("10.00")]
    assert [m.amount for m in rows(CreditMemo)] == [Decimal("1190.00")]


def test_without_a_customer_deduction_nothing_is_posted_and_the_loss_is_noted(ctx):
    add_ledger()
    case = filed(claim(deduction_invoice_number=None, deduction_amount=None))
    case = complete(case, "record_acknowledgment", ACKNOWLEDGED)
    case = complete(case, "record_outcome", outcome("partially_paid", "900.00"))
    assert (case.status, case.outcome) == ("completed", "partially_paid")
    assert case.data["unrecovered_amount"] == "300.00"
    assert rows(CreditMemo) == [] and rows(WriteOff) == [] and balance() == Decimal("1200.00")
    assert (
        "No customer deduction; 300.00 unrecovered is a freight loss." in rows(AccountNote)[0].text
    )


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        (outcome("paid", "1000.00"), "amount_recovered", "otherwise choose paid in part"),
        (outcome("partially_paid", "1300.00"), "amount_recovered", "More than the 1200.00"),
        (outcome("partially_paid", "0.00"), "amount_recovered", "more than 0"),
        (outcome("declined", "10.00"), "amount_recovered", "recovers 0.00"),
        (dict(outcome("partially_paid", "700.00"), decline_reason=""), "decline_reason", "reason"),
        (dict(outcome("paid", "1200.00"), payment_reference=""), "payment_reference", "payment"),
    ],
)
def test_the_carrier_decision_must_add_up(ctx, data, field, message):
    add_ledger()
    task = open_task(filed(), "record_outcome")
    with pytest.raises(Invalid) as err:
        engine.complete_task(task.id, data, user("spec"))
    assert set(err.value.errors) == {field}
    assert message in err.value.errors[field][0]


def test_a_deduction_paid_meanwhile_stops_the_settlement_with_a_clear_message(ctx):
    add_ledger()
    case = filed()
    case = complete(case, "record_acknowledgment", ACKNOWLEDGED)
    invoice = db.session.execute(db.select(Invoice).filter_by(number=INVOICE)).scalar_one()
    db.session.add(
        Payment(
            customer=invoice.customer,
            reference="LBX-5002",
            received_date=TODAY,
            amount=Decimal("200.00"),
            method="check",
            invoice=invoice,
        )
    )
    db.session.commit()
    task = open_task(case, "record_outcome")
    with pytest.raises(Invalid) as err:
        engine.complete_task(task.id, outcome("paid", "1200.00"), user("spec"))
    assert err.value.errors["carrier_decision"][0].startswith(
        "Invoice INV-8001 now has only 1000.00 open, less than the 1200.00 deduction"
    )
    db.session.refresh(case)
    assert case.broken is None and rows(CreditMemo) == [] and open_task(case).id == task.id


# --- timers -----------------------------------------------------------------------------


def test_30_days_before_the_filing_deadline_the_specialist_is_warned(ctx):
    add_ledger()
    case = start()
    warning = at(nine_months_after(TODAY - timedelta(days=15))) - timedelta(days=30)
    assert "advanced 0 case(s)" in run_timers(ctx, warning - timedelta(hours=1))
    assert "advanced 1 case(s)" in run_timers(ctx, warning + timedelta(hours=1))
    case = db.session.get(Case, case.id)
    assert open_names(case) == ["filing_deadline_warning", "gather_documents"]
    task = open_task(case, "filing_deadline_warning")
    assert task.role == "ar_specialist"
    case = complete(case, "filing_deadline_warning", {"warning_action": "filing_now"})
    assert open_names(case) == ["gather_documents"]


def test_a_claim_logged_late_warns_at_once(ctx):
    add_ledger()
    ship = (TODAY - timedelta(days=255)).isoformat()
    case = start(claim(ship_date=ship, delivery_date=(TODAY - timedelta(days=250)).isoformat()))
    assert open_names(case) == ["filing_deadline_warning", "gather_documents"]


def test_a_claim_filed_in_time_raises_no_filing_warning(ctx):
    add_ledger()
    case = filed()
    warning = at(nine_months_after(TODAY - timedelta(days=15))) - timedelta(days=30)
    case = complete(case, "record_acknowledgment", ACKNOWLEDGED)
    run_timers(ctx, warning + timedelta(days=1))
    case = db.session.get(Case, case.id)
    assert "filing_deadline_warning" not in open_names(case)


def test_no_acknowledgment_in_30_days_raises_a_follow_up(ctx):
    add_ledger()
    case = filed()
    assert "advanced 0 case(s)" in run_timers(ctx, at(TODAY) + timedelta(days=29))
    assert "advanced 1 case(s)" in run_timers(ctx, at(TODAY) + timedelta(days=30, hours=1))
    case = db.session.get(Case, case.id)
    assert open_names(case) == [
        "acknowledgment_follow_up",
        "record_acknowledgment",
        "record_outcome",
    ]
    case = complete(
        case,
        "acknowledgment_follow_up",
        {"contacted_on": TODAY.isoformat(), "follow_up_note": "Claims desk will confirm."},
    )
    case = complete(case, "record_acknowledgment", ACKNOWLEDGED)
    assert open_names(case) == ["record_outcome"]


def test_an_acknowledgment_in_time_raises_no_follow_up(ctx):
    add_ledger()
    case = complete(filed(), "record_acknowledgment", ACKNOWLEDGED)
    assert case.next_wake_at == at(TODAY) + timedelta(days=120)
    run_timers(ctx, at(TODAY) + timedelta(days=31))
    assert open_names(db.session.get(Case, case.id)) == ["record_outcome"]


def test_no_decision_in_120_days_raises_a_follow_up_closed_by_the_settlement(ctx):
    add_ledger()
    case = complete(filed(), "record_acknowledgment", ACKNOWLEDGED)
    assert "advanced 0 case(s)" in run_timers(ctx, at(TODAY) + timedelta(days=119))
    assert "advanced 1 case(s)" in run_timers(ctx, at(TODAY) + timedelta(days=120, hours=1))
    case = db.session.get(Case, case.id)
    assert open_names(case) == ["disposition_follow_up", "record_outcome"]
    follow_up = open_task(case, "disposition_follow_up")
    case = complete(case, "record_outcome", outcome("paid", "1200.00"))
    assert case.outcome == "paid"
    db.session.refresh(follow_up)
    assert follow_up.state == "cancelled"


def test_timers_before_filing_wait_for_the_filing(ctx):
    add_ledger()
    case = start()
    # Neither carrier clock runs before the claim is filed.
    assert case.next_wake_at == at(nine_months_after(TODAY - timedelta(days=15))) - timedelta(
        days=30
    )
    run_timers(ctx, clock.now() + timedelta(days=121))
    assert open_names(db.session.get(Case, case.id)) == ["gather_documents"]


# --- from a dispute ---------------------------------------------------------------------


def test_a_claim_opened_by_a_dispute_clears_that_deduction_when_the_carrier_pays(ctx):
    add_ledger()
    dispute = engine.start_case(
        "dispute_resolution",
        {
            "customer_number": CUSTOMER,
            "invoice_number": INVOICE,
            "disputed_amount": "1200.00",
            "reason_code": "damaged",
            "source": "deduction",
            "description": "Two cartons arrived crushed.",
        },
        user("spec"),
    )
    dispute = complete(dispute, "research_dispute", {"research_notes": "Receipt notes damage."})
    resolution = {
        "resolution": "freight_claim",
        "carrier": "Old Dominion",
        "pro_number": "PRO-4471902",
        "ship_date": (TODAY - timedelta(days=20)).isoformat(),
        "delivery_date": (TODAY - timedelta(days=15)).isoformat(),
        "exception_type": "noted_on_receipt",
    }
    dispute = complete(dispute, "resolve_dispute", resolution)
    assert dispute.outcome == "freight_claim_opened" and balance() == Decimal("1200.00")
    assert disputed()  # the deduction is still in dispute, now with the carrier
    case = db.session.get(Case, dispute.data["freight_claim_case_id"])
    case = complete(case, "gather_documents", DOCUMENTS, who="spec2")
    case = complete(case, "file_claim", FILING, who="spec2")
    case = complete(case, "record_acknowledgment", ACKNOWLEDGED, who="spec2")
    case = complete(case, "record_outcome", outcome("paid", "1200.00"), who="spec2")
    assert (case.status, case.outcome) == ("completed", "paid")
    [memo] = rows(CreditMemo)
    assert (memo.amount, memo.case_id) == (Decimal("1200.00"), case.id)
    assert balance() == Decimal("0.00")
    assert not disputed()  # settled: statements and reports no longer show it in dispute
    # The specialist who opened the claim from the dispute hears of the outcome.
    assert [n.user_id for n in rows(Notification) if n.case_id == case.id] == [user("spec").id]

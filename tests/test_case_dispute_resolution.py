"""Dispute resolution through the engine: research, the pricing check, the three resolutions,
credit memo approval by the authority matrix with four-eyes, the day-20 escalation.

Damaged or short-in-transit goods: the dispute does not credit the customer itself. It opens a
freight claim linked both ways, notes on the account that the deduction is not to be
collected, and ends with the outcome ``freight_claim_opened``; the freight claim clears the
customer's deduction when the carrier settles (see test_case_freight_claim.py), so the
deduction is never cleared twice.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
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
    CaseLink,
    CreditMemo,
    Customer,
    Invoice,
    Notification,
    Payment,
)
from tests.case_steps import count, open_names, open_task, run_timers

TODAY = date.today()
CUSTOMER = "C-20001"
INVOICE = "INV-7001"


def user(name):
    return find_user(name)


def add_ledger(invoice_amount="30000.00", paid=None):
    """A customer of the sales rep "rep" with one invoice, short-paid when `paid` is given."""
    customer = Customer(number=CUSTOMER, name="Globex Retail", sales_rep="rep")
    other = Customer(number="C-20002", name="Initech Stores", sales_rep="rep")
    invoice = Invoice(
        customer=customer,
        number=INVOICE,
        invoice_date=TODAY - timedelta(days=40),
        due_date=TODAY - timedelta(days=10),
        amount=Decimal(invoice_amount),
    )
    db.session.add_all(
        [
            customer,
            other,
            invoice,
            Invoice(
                customer=other,
                number="INV-9001",
                invoice_date=TODAY - timedelta(days=20),
                due_date=TODAY + timedelta(days=10),
                amount=Decimal("500.00"),
            ),
        ]
    )
    if paid:
        pay(paid, "LBX-0001")
    db.session.commit()
    return invoice


def pay(amount, reference):
    invoice = db.session.execute(db.select(Invoice).filter_by(number=INVOICE)).scalar_one()
    db.session.add(
        Payment(
            customer=invoice.customer,
            reference=reference,
            received_date=TODAY,
            amount=Decimal(amount),
            method="lockbox",
            invoice=invoice,
        )
    )
    db.session.commit()


def disputed() -> bool:
    invoice = db.session.execute(db.select(Invoice).filter_by(number=INVOICE)).scalar_one()
    db.session.refresh(invoice)
    return invoice.disputed


def balance():
    invoice = db.session.execute(db.select(Invoice).filter_by(number=INVOICE)).scalar_one()
    return invoice_open_balance(invoice)


def memos():
    return list(db.session.execute(db.select(CreditMemo)).scalars())


def dispute(**changes):
    data = {
        "customer_number": CUSTOMER,
        "invoice_number": INVOICE,
        "disputed_amount": "800.00",
        "reason_code": "duplicate_billing",
        "source": "short_payment",
        "description": "Line 3 was billed twice.",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


RESEARCH = {"pod_found": True, "allowance_on_file": False, "research_notes": "Checked the POD."}

FREIGHT = {
    "carrier": "Old Dominion",
    "pro_number": "odfl-4471902",
    "ship_date": (TODAY - timedelta(days=12)).isoformat(),
    "delivery_date": (TODAY - timedelta(days=8)).isoformat(),
    "exception_type": "noted_on_receipt",
}


def credit(amount, notes="Duplicate line confirmed."):
    return {"resolution": "credit_memo", "credit_memo_amount": amount, "resolution_notes": notes}


DENY = {
    "resolution": "deny",
    "denial_reason": "The POD shows every line delivered and billed once.",
    "collection_action": "collect",
    "customer_notified_by": "email",
}


def start(data=None, who="spec"):
    return engine.start_case("dispute_resolution", dispute() if data is None else data, user(who))


def researched(data=None, who="spec"):
    case = start(data, who)
    return engine.complete_task(open_task(case, "research_dispute").id, RESEARCH, user(who))


def resolved(amount, who="spec", data=None):
    case = researched(data, who)
    return engine.complete_task(open_task(case, "resolve_dispute").id, credit(amount), user(who))


# --- starting ---------------------------------------------------------------------------


def test_a_dispute_starts_with_research_due_at_the_30_day_mark(ctx):
    add_ledger(paid="29200.00")
    case = start(dispute(reason_code="damaged"))
    task = open_task(case)
    assert (task.name, task.role, task.assignee) == ("research_dispute", "ar_specialist", None)
    due = datetime.combine(TODAY + timedelta(days=30), time(23, 59), UTC)
    assert abs(task.due_at - due) < timedelta(seconds=1)
    assert (case.customer_number, case.amount) == (CUSTOMER, Decimal("800.00"))
    # The escalation clock runs alongside the research: 20 days from the start.
    assert timedelta(days=19, hours=23) < case.next_wake_at - clock.now() <= timedelta(days=20)


def test_an_incomplete_dispute_asks_the_specialist_who_started_it_for_the_rest(ctx):
    add_ledger()
    case = start(dispute(description=None, reason_code=None))
    task = open_task(case, "complete_intake")
    assert task.assignee.username == "spec"
    case = engine.complete_task(task.id, dispute(), user("spec"))
    assert open_names(case) == ["research_dispute"]


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"customer_number": "C-99999"}, "customer_number", "no customer C-99999"),
        ({"invoice_number": "INV-0000"}, "invoice_number", "no invoice INV-0000"),
        ({"invoice_number": "INV-9001"}, "invoice_number", "belongs to customer C-20002"),
        ({"disputed_amount": "30000.01"}, "disputed_amount", "open balance of 30000.00"),
        ({"disputed_amount": "0"}, "disputed_amount", "Enter an amount"),
        ({"reason_code": "bad_weather"}, "reason_code", "Not a valid choice"),
    ],
)
def test_bad_start_data_is_refused_and_nothing_is_created(ctx, changes, field, message):
    add_ledger()
    with pytest.raises(Invalid) as err:
        start(dispute(**changes))
    assert set(err.value.errors) == {field}
    assert message in " ".join(err.value.errors[field])
    assert count(Case) == 0 and count(AccountNote) == 0


def test_the_api_answers_an_unknown_customer_with_422(api):
    with api.app.app_context():
        add_ledger()
    response = api.as_("spec").post(
        "/api/v1/cases",
        json={"case_type": "dispute_resolution", "data": dispute(customer_number="C-404")},
    )
    assert response.status_code == 422, response.get_json()
    assert "customer_number" in str(response.get_json())
    with api.app.app_context():
        assert count(Case) == 0


# --- credit memo by the authority matrix ------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "approval", "approver"),
    [
        ("500.00", "specialist_approval", "spec2"),
        ("500.01", "manager_approval", "mgr"),
        ("10000.00", "manager_approval", "mgr"),
        ("10000.01", "controller_approval", "ctrl"),
    ],
)
def test_a_credit_memo_is_approved_at_its_authority_level_and_posted(
    ctx, amount, approval, approver
):
    add_ledger("30000.00")
    case = resolved(amount, data=dispute(disputed_amount=amount))
    task = open_task(case)
    assert task.name == approval and task.four_eyes == ["resolve_dispute", "revise_resolution"]
    if approval != "specialist_approval":
        with pytest.raises(Forbidden):
            engine.complete_task(task.id, {"decision": "approve"}, user("spec2"))
    case = engine.complete_task(task.id, {"decision": "approve"}, user(approver))
    assert (case.status, case.outcome) == ("completed", "credit_memo_posted")
    [memo] = memos()
    assert (memo.amount, memo.invoice.number, memo.case_id) == (Decimal(amount), INVOICE, case.id)
    assert memo.reason == "Dispute (duplicate_billing): Duplicate line confirmed."
    assert balance() == Decimal("30000.00") - Decimal(amount)
    assert case.data["commission_adjustment"] is False
    note = db.session.execute(db.select(Notification)).scalar_one()
    assert note.user_id == user("rep").id
    assert f"credit memo of {Decimal(amount):.2f} posted" in note.message
    assert "Commission" not in note.message


def test_the_specialist_who_proposed_the_amount_cannot_approve_it(ctx):
    add_ledger()
    case = resolved("450.00", who="spec", data=dispute(disputed_amount="450.00"))
    task = open_task(case, "specialist_approval")
    with pytest.raises(Forbidden, match="four-eyes"):
        engine.complete_task(task.id, {"decision": "approve"}, user("spec"))
    with pytest.raises(Forbidden, match="four-eyes"):
        engine.claim_task(task.id, user("spec"))
    assert memos() == []
    engine.complete_task(task.id, {"decision": "approve"}, user("spec2"))
    assert balance() == Decimal("29550.00")


def test_four_eyes_holds_for_a_proposer_with_the_manager_role_too(ctx):
    add_ledger()
    case = resolved("5000.00", who="dual", data=dispute(disputed_amount="5000.00"))
    task = open_task(case, "manager_approval")
    with pytest.raises(Forbidden, match="four-eyes"):
        engine.complete_task(task.id, {"decision": "approve"}, user("dual"))
    db.session.refresh(task)
    assert task.state == "open" and memos() == []
    case = engine.complete_task(task.id, {"decision": "approve"}, user("mgr2"))
    assert case.outcome == "credit_memo_posted" and balance() == Decimal("25000.00")


def test_a_credit_memo_above_the_disputed_amount_is_refused(ctx):
    add_ledger()
    case = researched()
    task = open_task(case, "resolve_dispute")
    with pytest.raises(Invalid) as err:
        engine.complete_task(task.id, credit("800.01"), user("spec"))
    assert err.value.errors == {
        "credit_memo_amount": ["A credit memo cannot exceed the 800.00 disputed."]
    }


def test_a_credit_memo_above_the_open_balance_is_refused_and_nothing_is_written(ctx):
    add_ledger("1000.00")
    case = researched()
    pay("500.00", "LBX-0002")  # the customer paid part of the invoice meanwhile
    task = open_task(case, "resolve_dispute")
    with pytest.raises(Invalid) as err:
        engine.complete_task(task.id, credit("800.00"), user("spec"))
    assert err.value.errors == {
        "credit_memo_amount": [
            "The credit memo of 800.00 is more than invoice INV-7001's open balance of 500.00."
        ]
    }
    db.session.refresh(task)
    assert task.state == "open" and memos() == [] and balance() == Decimal("500.00")


def test_an_approval_is_refused_when_the_balance_fell_below_the_memo_then_sent_back(ctx):
    add_ledger("1000.00")
    case = resolved("450.00")
    task = open_task(case, "specialist_approval")
    pay("600.00", "LBX-0003")  # only 400.00 left open
    with pytest.raises(Invalid) as err:
        engine.complete_task(task.id, {"decision": "approve"}, user("spec2"))
    assert err.value.errors["decision"] == [
        "Invoice INV-7001 now has only 400.00 open, less than the 450.00 credit memo: "
        "send it back to the specialist to change it."
    ]
    db.session.refresh(case)
    assert case.broken is None and memos() == [] and open_task(case).id == task.id
    case = engine.complete_task(
        task.id, {"decision": "send_back", "comment": "Balance is 400 now"}, user("spec2")
    )
    revise = open_task(case, "revise_resolution")
    case = engine.complete_task(revise.id, credit("400.00"), user("spec"))
    again = open_task(case, "specialist_approval")
    case = engine.complete_task(again.id, {"decision": "approve"}, user("spec2"))
    assert case.outcome == "credit_memo_posted"
    assert [m.amount for m in memos()] == [Decimal("400.00")] and balance() == Decimal("0.00")


# --- denial -----------------------------------------------------------------------------


def test_an_invalid_dispute_is_denied_recorded_for_collection_and_the_rep_told(ctx):
    add_ledger("1000.00", paid="200.00")
    case = researched()
    case = engine.complete_task(open_task(case, "resolve_dispute").id, DENY, user("spec"))
    assert (case.status, case.outcome) == ("completed", "denied")
    assert memos() == [] and balance() == Decimal("800.00")
    note = db.session.execute(db.select(AccountNote)).scalar_one()
    assert note.text == (
        "Dispute of 800.00 on invoice INV-7001 (duplicate_billing) denied: The POD shows every "
        "line delivered and billed once.; customer told by email; the amount is to be collected."
    )
    message = db.session.execute(db.select(Notification)).scalar_one().message
    assert message == "Dispute on invoice INV-7001 (C-20001) denied: 800.00 will be collected."


def test_a_denial_must_say_why_how_the_customer_was_told_and_what_follows(ctx):
    add_ledger()
    task = open_task(researched(), "resolve_dispute")
    with pytest.raises(Invalid) as err:
        engine.complete_task(task.id, {"resolution": "deny"}, user("spec"))
    assert set(err.value.errors) == {"denial_reason", "collection_action", "customer_notified_by"}


def test_a_rejected_credit_memo_becomes_a_denial_the_specialist_carries_out(ctx):
    add_ledger()
    case = resolved("7000.00", data=dispute(disputed_amount="7000.00"))
    case = engine.complete_task(
        open_task(case, "manager_approval").id,
        {"decision": "reject", "comment": "The contract price was billed."},
        user("mgr"),
    )
    task = open_task(case, "confirm_denial")
    assert task.role == "ar_specialist"
    data = {k: DENY[k] for k in ("denial_reason", "customer_notified_by")}
    case = engine.complete_task(task.id, dict(data, collection_action="rebill"), user("spec"))
    assert case.outcome == "denied" and memos() == []
    assert "re-billed" in db.session.execute(db.select(AccountNote)).scalar_one().text


# --- pricing: the sales rep confirms the agreement --------------------------------------


def test_a_pricing_dispute_goes_to_the_sales_rep_and_flags_a_commission_adjustment(ctx):
    add_ledger()
    case = start(dispute(reason_code="pricing", disputed_amount="300.00"))
    task = open_task(case, "research_dispute")
    with pytest.raises(Invalid) as err:
        engine.complete_task(task.id, RESEARCH, user("spec"))
    assert set(err.value.errors) == {"price_billed", "price_agreed"}
    research = dict(RESEARCH, price_billed="3300.00", price_agreed="3000.00")
    case = engine.complete_task(task.id, research, user("spec"))
    task = open_task(case, "confirm_pricing")
    assert (task.role, task.assignee) == ("sales_rep", None)
    with pytest.raises(Forbidden):
        engine.complete_task(task.id, {"pricing_agreement": "agreed"}, user("spec"))
    case = engine.complete_task(
        task.id,
        {"pricing_agreement": "agreed", "rep_comment": "Quoted 3,000 in March."},
        user("rep"),
    )
    case = engine.complete_task(
        open_task(case, "resolve_dispute").id, credit("300.00"), user("spec")
    )
    case = engine.complete_task(
        open_task(case, "specialist_approval").id, {"decision": "approve"}, user("spec2")
    )
    assert case.outcome == "credit_memo_posted" and case.data["commission_adjustment"] is True
    assert case.data["pricing_agreement"] == "agreed"
    assert balance() == Decimal("29700.00")
    message = db.session.execute(db.select(Notification)).scalar_one().message
    assert message.endswith("Commission adjustment: the order value was reduced.")


def test_other_reasons_skip_the_sales_rep(ctx):
    add_ledger()
    case = researched(dispute(reason_code="tax"))
    assert open_names(case) == ["resolve_dispute"]


# --- the day-20 escalation --------------------------------------------------------------


def test_at_day_20_the_credit_manager_gets_an_escalation_withdrawn_once_resolved(ctx):
    add_ledger()
    case = start()
    assert "advanced 0 case(s)" in run_timers(ctx, clock.now() + timedelta(days=19))
    assert open_names(case) == ["research_dispute"]
    assert "advanced 1 case(s)" in run_timers(ctx, clock.now() + timedelta(days=20, hours=1))
    case = db.session.get(Case, case.id)
    assert open_names(case) == ["escalate_dispute", "research_dispute"]
    escalation = open_task(case, "escalate_dispute")
    assert (escalation.role, escalation.assignee) == ("credit_manager", None)
    assert "advanced 0 case(s)" in run_timers(ctx, clock.now() + timedelta(days=25))
    case = engine.complete_task(open_task(case, "research_dispute").id, RESEARCH, user("spec"))
    case = engine.complete_task(open_task(case, "resolve_dispute").id, DENY, user("spec"))
    assert case.outcome == "denied"
    db.session.refresh(escalation)
    assert escalation.state == "cancelled"


def test_the_manager_records_what_the_escalation_did_and_the_dispute_goes_on(ctx):
    add_ledger()
    case = start()
    run_timers(ctx, clock.now() + timedelta(days=21))
    case = db.session.get(Case, case.id)
    task = open_task(case, "escalate_dispute")
    with pytest.raises(Invalid):
        engine.complete_task(task.id, {"escalation_action": "reassigned"}, user("mgr"))
    case = engine.complete_task(
        task.id,
        {"escalation_action": "followed_up", "escalation_note": "Spec promised Friday."},
        user("mgr"),
    )
    assert open_names(case) == ["research_dispute"] and case.status == "open"


# --- in transit: a linked freight claim -------------------------------------------------


def test_damaged_in_transit_opens_a_freight_claim_linked_both_ways(ctx):
    add_ledger("5000.00", paid="3750.00")
    case = researched(dispute(reason_code="damaged", disputed_amount="1250.00", source="deduction"))
    case = engine.complete_task(
        open_task(case, "resolve_dispute").id,
        dict(FREIGHT, resolution="freight_claim"),
        user("spec"),
    )
    assert (case.status, case.outcome) == ("completed", "freight_claim_opened")
    claim = db.session.get(Case, case.data["freight_claim_case_id"])
    assert claim.case_type.key == "freight_claim" and claim.status == "open"
    links = {
        (link.case_id, link.other_id, link.kind)
        for link in db.session.execute(db.select(CaseLink)).scalars()
    }
    assert links == {
        (case.id, claim.id, "freight_claim"),
        (claim.id, case.id, "freight_claim_from"),
    }
    assert claim.data["deduction_invoice_number"] == INVOICE
    assert claim.data["deduction_amount"] == "1250.00"
    assert claim.data["claimed_amount"] == "1250.00"
    assert claim.data["pro_number"] == "ODFL-4471902"
    assert claim.data["delivery_date"] == FREIGHT["delivery_date"]
    assert claim.started_by.username == "spec"
    task = open_task(claim)
    assert (task.name, task.role) == ("gather_documents", "ar_specialist")
    # The customer keeps the deduction; nothing is credited until the carrier settles.
    assert memos() == [] and balance() == Decimal("1250.00")
    note = db.session.execute(db.select(AccountNote)).scalar_one()
    assert f"freight claim case {claim.id} against Old Dominion" in note.text
    assert note.text.endswith("Do not collect.")


def test_a_freight_claim_needs_the_carrier_details_in_the_right_form(ctx):
    add_ledger()
    case = researched(dispute(reason_code="quantity_short"))
    task = open_task(case, "resolve_dispute")
    with pytest.raises(Invalid) as err:
        engine.complete_task(task.id, {"resolution": "freight_claim"}, user("spec"))
    assert set(err.value.errors) == {
        "carrier",
        "pro_number",
        "ship_date",
        "delivery_date",
        "exception_type",
    }
    bad = dict(
        FREIGHT,
        resolution="freight_claim",
        pro_number="#12",
        delivery_date=(TODAY - timedelta(days=20)).isoformat(),
        exception_type="concealed_damage",
    )
    with pytest.raises(Invalid) as err:
        engine.complete_task(task.id, bad, user("spec"))
    assert set(err.value.errors) == {"pro_number", "delivery_date", "concealed_reported_date"}
    assert "e.g. PRO-4471902" in err.value.errors["pro_number"][0]
    assert count(Case) == 1


def test_only_damaged_or_short_goods_go_to_a_freight_claim(ctx):
    add_ledger()
    case = researched(dispute(reason_code="tax"))
    task = open_task(case, "resolve_dispute")
    with pytest.raises(Invalid) as err:
        engine.complete_task(task.id, dict(FREIGHT, resolution="freight_claim"), user("spec"))
    assert list(err.value.errors) == ["resolution"]
    assert "this dispute's reason is tax" in err.value.errors["resolution"][0]


# --- the forms ----------------------------------------------------------------------------


def test_every_form_is_labelled_and_bounded(ctx):
    from casemgr.forms import FORMS, describe

    keys = [k for k in FORMS if k.startswith(("dispute_", "freight_"))]
    assert len(keys) == 15
    for key in keys:
        for field in describe(key, FORMS[key])["fields"]:
            assert field["label"] and field["label"] != field["name"], (key, field)
            if field["type"] in ("string", "text"):
                assert field["max_length"], (key, field["name"])
            if field["type"] == "decimal":
                assert field["max"] is not None, (key, field["name"])


# --- the invoice's dispute mark -----------------------------------------------------------------


def test_the_invoice_is_in_dispute_while_the_case_works_on_it_then_cleared_by_the_memo(ctx):
    add_ledger("30000.00")
    assert not disputed()
    case = resolved("500.00", data=dispute(disputed_amount="500.00"))
    assert disputed()  # statements and the aging export show it in dispute meanwhile
    case = engine.complete_task(open_task(case).id, {"decision": "approve"}, user("spec2"))
    assert case.outcome == "credit_memo_posted" and not disputed()
    actions = [e.detail.get("action") for e in case.events if e.kind == "ledger"]
    assert actions[0] == "invoice_disputed" and actions[-1] == "dispute_cleared"


def test_a_denied_dispute_clears_the_mark_too(ctx):
    add_ledger("1000.00", paid="200.00")
    case = researched()
    assert disputed()
    engine.complete_task(open_task(case, "resolve_dispute").id, DENY, user("spec"))
    assert not disputed()


def test_an_incomplete_intake_marks_nothing_until_the_invoice_is_known(ctx):
    add_ledger()
    case = start(dispute(invoice_number=None, description=None))
    assert open_names(case) == ["complete_intake"] and not disputed()

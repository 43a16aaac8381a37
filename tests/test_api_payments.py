"""POST /api/v1/payments: status codes in the contract's order, the answer's shape, and the
referrals a payment in full ends (only those that wait for it)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from casemgr.accounts import find_user
from casemgr.engine.cases import start_case
from casemgr.engine.processes import publish
from casemgr.extensions import db
from casemgr.models import Case, Customer, Invoice, Payment

TODAY = date.today()

# A referral reduced to its wait: the message a payment in full sends ends it.
WAIT_FOR_PAYMENT = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    id="payment_wait_defs" targetNamespace="https://casemgr.dev/tests">
  <bpmn:message id="payment_received" name="payment_received" />
  <bpmn:process id="payment_wait" name="Wait for payment" isExecutable="true">
    <bpmn:startEvent id="start_wait"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start_wait" targetRef="wait" />
    <bpmn:receiveTask id="wait" name="Wait for payment" messageRef="payment_received">
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
    </bpmn:receiveTask>
    <bpmn:sequenceFlow id="f2" sourceRef="wait" targetRef="paid" />
    <bpmn:endEvent id="paid"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>
"""


@pytest.fixture
def ledger(app):
    """C-100 owes 1,000.00 (INV-1) and 250.00 (INV-2); C-200 owes 80.00."""
    with app.app_context():
        acme = Customer(number="C-100", name="Acme", credit_limit=Decimal("5000.00"))
        other = Customer(number="C-200", name="Other", credit_limit=Decimal("100.00"))
        db.session.add_all([acme, other])
        for customer, number, amount in (
            (acme, "INV-1", "1000.00"),
            (acme, "INV-2", "250.00"),
            (other, "INV-9", "80.00"),
        ):
            db.session.add(
                Invoice(
                    customer=customer,
                    number=number,
                    invoice_date=TODAY - timedelta(days=60),
                    due_date=TODAY - timedelta(days=30),
                    amount=Decimal(amount),
                )
            )
        db.session.commit()
    return app


def waiting_case(app, customer_number: str) -> int:
    with app.app_context():
        publish("payment_wait", WAIT_FOR_PAYMENT, find_user("owner"))
        case = start_case("payment_wait", {"customer_number": customer_number}, find_user("spec"))
        assert case.awaiting == ",payment_received,"
        return case.id


def pay(api, who="spec", **body):
    return api.as_(who).post("/api/v1/payments", json=body)


def payments(app) -> int:
    with app.app_context():
        return db.session.execute(db.select(db.func.count(Payment.id))).scalar_one()


def test_a_payment_is_posted_and_the_balance_answered(api, ledger):
    resp = pay(api, customer_number="C-100", amount="400.00", method="ach",
               reference="ACH-1", invoice_number="INV-1")  # fmt: skip
    assert resp.status_code == 201
    assert resp.get_json() == {
        "cleared": False,
        "cases_ended": [],
        "open_balance": "850.00",
        "reference": "ACH-1",
    }
    with ledger.app_context():
        payment = db.session.execute(db.select(Payment)).scalar_one()
        assert payment.amount == Decimal("400.00") and payment.received_date == TODAY
        assert payment.invoice.number == "INV-1" and payment.method == "ach"


def test_a_payment_in_full_with_no_case_waiting_clears_and_ends_nothing(api, ledger):
    resp = pay(api, customer_number="C-200", amount="80.00", method="wire",
               received_date=(TODAY - timedelta(days=1)).isoformat())  # fmt: skip
    assert resp.status_code == 201
    body = resp.get_json()
    assert body["cleared"] is True and body["cases_ended"] == []
    assert body["open_balance"] == "0.00" and body["reference"].startswith("PAY-")


def test_a_payment_in_full_ends_the_case_waiting_for_it_and_no_other(api, ledger):
    waiting = waiting_case(ledger, "C-200")
    other_customer = waiting_case(ledger, "C-100")
    resp = pay(api, customer_number="C-200", amount="80.00", method="check", reference="CHK-9")
    assert resp.status_code == 201
    assert resp.get_json()["cases_ended"] == [waiting]
    with ledger.app_context():
        assert db.session.get(Case, waiting).status == "completed"
        assert db.session.get(Case, other_customer).status == "open"
    partial = pay(api, customer_number="C-100", amount="100.00", method="check")
    assert partial.get_json()["cleared"] is False and partial.get_json()["cases_ended"] == []
    with ledger.app_context():
        assert db.session.get(Case, other_customer).awaiting == ",payment_received,"


def test_no_token_is_401_before_anything(api, ledger):
    assert api.post("/api/v1/payments", data="not json").status_code == 401


def test_a_body_that_is_not_a_json_object_is_400(api, ledger):
    for body in ("not json", "[1, 2]", ""):
        resp = api.as_("spec").post(
            "/api/v1/payments", data=body, headers={"Content-Type": "application/json"}
        )
        assert resp.status_code == 400, body
        assert resp.get_json()["error"]


@pytest.mark.parametrize("who", ["rep", "owner"])
def test_only_the_roles_that_import_may_post_payments(api, ledger, who):
    resp = pay(api, who, customer_number="C-100", amount="10.00", method="check")
    assert resp.status_code == 403
    assert payments(ledger) == 0


@pytest.mark.parametrize("who", ["mgr", "ctrl", "admin"])
def test_the_other_ledger_roles_may_post(api, ledger, who):
    assert (
        pay(api, who, customer_number="C-100", amount="1.00", method="lockbox").status_code == 201
    )


def test_an_unknown_customer_in_the_body_is_422(api, ledger):
    resp = pay(api, customer_number="C-999", amount="10.00", method="check")
    assert resp.status_code == 422
    assert resp.get_json()["errors"] == {"customer_number": ["There is no customer C-999."]}


def test_every_bad_field_is_named_and_nothing_is_posted(api, ledger):
    resp = pay(
        api,
        customer_number="C-100",
        amount=12.5,
        method="bitcoin",
        received_date=(TODAY + timedelta(days=1)).isoformat(),
        reference="x" * 61,
        invoice_number="INV-9",
    )
    assert resp.status_code == 422
    errors = resp.get_json()["errors"]
    assert set(errors) == {"amount", "method", "received_date", "reference", "invoice_number"}
    assert errors["amount"] == ['Send the amount as a string, e.g. "1250.00".']
    more = pay(api, customer_number="C-100", amount="1.005", method="check",
               received_date="2024-02-30", invoice_number="INV-9")  # fmt: skip
    errors = more.get_json()["errors"]
    assert "more than two decimals" in errors["amount"][0]
    assert errors["received_date"] == ["'2024-02-30' is not a date (YYYY-MM-DD)."]
    missing = pay(api).get_json()["errors"]
    assert set(missing) == {"customer_number", "amount", "method"}
    assert payments(ledger) == 0


def test_an_invoice_of_another_customer_or_an_overpayment_is_422(api, ledger):
    other = pay(
        api, customer_number="C-100", amount="10.00", method="check", invoice_number="INV-9"
    )
    assert other.get_json()["errors"] == {
        "invoice_number": ["Customer C-100 has no invoice INV-9."]
    }
    over = pay(
        api, customer_number="C-100", amount="300.00", method="check", invoice_number="INV-2"
    )
    assert over.get_json()["errors"] == {
        "amount": ["300.00 is more than invoice INV-2 has open (250.00)."]
    }
    unapplied = pay(api, customer_number="C-100", amount="2000.00", method="check")
    assert unapplied.get_json()["errors"] == {
        "amount": ["2,000.00 is more than the customer owes (1,250.00)."]
    }
    assert payments(ledger) == 0


def test_a_reference_already_posted_is_a_conflict_and_not_a_second_payment(api, ledger):
    body = {"customer_number": "C-100", "amount": "10.00", "method": "check", "reference": "R-1"}
    assert pay(api, **body).status_code == 201
    again = pay(api, **{**body, "amount": "-5"})  # 409 wins over the 422 it also deserves
    assert again.status_code == 409
    assert payments(ledger) == 1
    assert pay(api, **{**body, "customer_number": "C-200"}).status_code == 201


def test_the_endpoint_is_in_the_openapi_document(api):
    op = api.get("/api/v1/openapi.json").get_json()["paths"]["/api/v1/payments"]["post"]
    assert {"201", "400", "401", "403", "409", "422"} <= set(op["responses"])
    assert op["requestBody"]["content"]["application/json"]["schema"]["required"] == [
        "customer_number", "amount", "method"
    ]  # fmt: skip

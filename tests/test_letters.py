"""Letters a person sends: the figures they carry, as a printable page and as a PDF, and who
may produce them."""

from __future__ import annotations

import io
import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
from pypdf import PdfReader

from casemgr.accounts import find_user
from casemgr.engine.cases import complete_task, start_case
from casemgr.extensions import db
from casemgr.ledger.aging import InvoiceFacts, Reduction
from casemgr.letters import (
    LetterNotAvailable,
    MemoLine,
    credit_decision,
    dispute_outcome,
    format_money,
    html_to_pdf,
    in_bucket,
    letters_for_case,
    long_date,
    open_items,
)
from casemgr.models import Case, CaseType, CreditMemo, Customer, Invoice, ProcessVersion
from tests.test_web_cases import FORM, run_to_approval
from tests.test_web_ledger_pages import build_ledger, client_for

TODAY = date.today()


# --- the pure layer -------------------------------------------------------------------------


def test_money_has_thousands_separators_and_two_decimals():
    assert format_money(Decimal("1234567.5")) == "1,234,567.50"
    assert format_money("20000") == "20,000.00"
    assert format_money(Decimal("0.005")) == "0.01"  # half up, as accountants round
    assert format_money(None) == ""
    assert long_date(date(2026, 3, 5)) == "March 5, 2026"


def test_open_items_follow_the_aging_rule_and_buckets():
    as_of = date(2024, 6, 30)
    invoices = [
        InvoiceFacts("C-1", "A", date(2024, 3, 1), date(2024, 3, 31), Decimal("100.00")),
        InvoiceFacts(
            "C-1",
            "B",
            date(2024, 5, 1),
            date(2024, 5, 31),
            Decimal("200.00"),
            (Reduction(date(2024, 6, 1), Decimal("50.00")),),
        ),  # fmt: skip
        InvoiceFacts(
            "C-1",
            "C",
            date(2024, 4, 1),
            date(2024, 5, 1),
            Decimal("80.00"),
            (Reduction(date(2024, 7, 2), Decimal("80.00")),),  # paid after the day: open on it
        ),  # fmt: skip
        InvoiceFacts(
            "C-1",
            "D",
            date(2024, 4, 1),
            date(2024, 5, 1),
            Decimal("10.00"),
            (Reduction(date(2024, 5, 1), Decimal("10.00")),),
        ),  # fmt: skip
        InvoiceFacts("C-1", "E", date(2024, 7, 1), date(2024, 7, 31), Decimal("5.00")),
    ]
    items = open_items(invoices, as_of, disputed={"B"})
    assert [(i.number, i.open_balance, i.days_past_due, i.bucket) for i in items] == [
        ("A", Decimal("100.00"), 91, "91-120"),
        ("C", Decimal("80.00"), 60, "31-60"),
        ("B", Decimal("150.00"), 30, "1-30"),
    ]
    assert items[2].disputed and not items[0].disputed
    assert [i.number for i in in_bucket(items, "31-60")] == ["C"]
    with pytest.raises(ValueError):
        in_bucket(items, "0-7")


CREDIT_DATA = {
    "legal_name": "Acme Widgets LLC",
    "address": "1 Main Street\nSpringfield, IL 62701",
    "customer_number": "C-00001",
    "approved_limit": "25000.00",
    "approved_terms_days": 45,
    "decision": "approve",
    "comment": "",
}


def test_the_credit_decision_letter_follows_the_outcome():
    approved = credit_decision(CREDIT_DATA, "approved")
    assert approved.kind == "approval" and approved.approved_limit == Decimal("25000.00")
    assert approved.terms_days == 45 and not approved.cash_in_advance
    assert approved.recipient.address == ["1 Main Street", "Springfield, IL 62701"]
    cia = credit_decision({**CREDIT_DATA, "cash_in_advance": True}, "cash_in_advance")
    assert cia.kind == "approval" and cia.cash_in_advance
    declined = credit_decision({**CREDIT_DATA, "comment": "Too new."}, "declined")
    assert declined.kind == "decline" and declined.approved_limit is None
    with pytest.raises(LetterNotAvailable):
        credit_decision(CREDIT_DATA, "withdrawn")


def test_which_letters_a_case_offers():
    assert letters_for_case("credit_application", "completed", "approved", True) == ["approval"]
    assert letters_for_case("credit_application", "completed", "declined", True) == ["decline"]
    assert letters_for_case("credit_application", "open", None, False) == []
    assert letters_for_case("credit_application", "completed", "withdrawn", False) == []
    assert letters_for_case("collection_referral", "open", None, True) == [
        "final_demand", "statement"
    ]  # fmt: skip
    assert letters_for_case("collection_referral", "completed", "paid_in_full", True) == [
        "statement"
    ]
    assert letters_for_case("dispute_resolution", "open", None, True) == ["statement"]
    assert letters_for_case("dispute_resolution", "completed", "denied", True) == [
        "dispute_outcome", "statement"
    ]  # fmt: skip
    assert letters_for_case("collection_referral", "open", None, False) == []
    assert letters_for_case("freight_claim", "open", None, True) == []


def test_the_dispute_resolution_comes_from_the_memos_posted():
    customer = Customer(number="C-1", name="Acme", address=None)
    data = {"invoice_number": "INV-1", "disputed_amount": "300.00", "reason_code": "pricing"}
    memo = MemoLine("INV-1", Decimal("120.00"), date(2024, 1, 5), "Dispute (pricing)")
    partial = dispute_outcome(data, "credit_memo_posted", customer, [memo], Decimal("0.00"))
    assert partial.resolution == "partial_credit" and partial.credited == Decimal("120.00")
    assert partial.reason == "pricing" and partial.invoice_numbers == ["INV-1"]
    full = dispute_outcome({**data, "disputed_amount": "120.00"}, "x", customer, [memo], None)
    assert full.resolution == "full_credit"
    assert dispute_outcome(data, "denied", customer, [], None).resolution == "denied"
    freight = dispute_outcome(data, "freight_claim_opened", customer, [], None)
    assert freight.resolution == "freight_claim"


def test_the_pdf_renderer_fetches_nothing(monkeypatch, tmp_path):
    import socket

    tried = []
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: tried.append(a) or [])
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"not for letters")
    html = (
        '<html><body><img src="http://example.com/x.png">'
        f'<img src="file://{secret}"><p>Total 1,234.00</p></body></html>'
    )
    assert html_to_pdf(html).startswith(b"%PDF")
    assert tried == []


def test_a_pdf_is_a_pdf():
    pdf = html_to_pdf("<html><body><p>Hello &amp; goodbye</p></body></html>")
    assert pdf.startswith(b"%PDF") and len(pdf) > 500


# --- the letters in the browser -------------------------------------------------------------


@pytest.fixture
def ledger(app):
    build_ledger(app)
    return app


def pdf_text(response) -> str:
    """The text a reader of the PDF sees (pypdf comes with xhtml2pdf)."""
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    assert response.mimetype == "application/pdf"
    body = response.get_data()
    assert body.startswith(b"%PDF") and len(body) > 1500
    reader = PdfReader(io.BytesIO(body))
    return " ".join(" ".join(page.extract_text() for page in reader.pages).split())


def test_the_statement_shows_open_items_aging_and_balance(ledger):
    client = client_for(ledger, "spec")
    page = client.get("/customers/C-100/statement").get_data(as_text=True)
    assert "casemgr demo company" in page and long_date(TODAY) in page
    assert "Acme Supply" in page and "1 Main Street" in page and "Springfield, IL 62701" in page
    assert re.search(r'data-testid="balance">4,634.56 USD<', page)
    assert re.search(r'data-testid="items-total">4,634.56<', page)
    for number in ("INV-1", "INV-2", "INV-3", "INV-5"):
        assert number in page
    assert "INV-4" not in page and "INV-5 (in dispute)" in page
    assert 'href="/customers/C-100/statement.pdf"' in page
    assert "<script" not in page.split("<main", 1)[1]
    text = pdf_text(client.get("/customers/C-100/statement.pdf"))
    assert "Statement of account" in text and "4,634.56 USD" in text and "INV-5" in text


def test_the_final_demand_names_the_past_due_and_a_date_ten_days_out(ledger):
    client = client_for(ledger, "mgr")
    page = client.get("/customers/C-100/final-demand").get_data(as_text=True)
    assert re.search(r'data-testid="past-due">3,400.00 USD<', page)
    assert re.search(r'data-testid="balance">4,634.56 USD<', page)
    assert "<strong>70 days</strong> past its due date" in page
    assert long_date(TODAY + timedelta(days=10)) in page
    text = pdf_text(client.get("/customers/C-100/final-demand.pdf"))
    assert "Final demand for payment" in text and "3,400.00 USD" in text
    assert long_date(TODAY + timedelta(days=10)) in text and "page 1 of 1" in text
    response = client.get("/customers/C-100/final-demand.pdf")
    assert f"final_demand-C-100-{TODAY}.pdf" in response.headers["Content-Disposition"]


def test_no_final_demand_for_an_account_with_nothing_past_due(ledger):
    with ledger.app_context():
        db.session.add(Customer(number="C-300", name="Prompt Payer", credit_limit=Decimal("1")))
        db.session.commit()
    client = client_for(ledger, "spec")
    response = client.get("/customers/C-300/final-demand.pdf")
    assert response.status_code == 404
    assert "Nothing on account C-300 is past due" in response.get_data(as_text=True)
    page = client.get("/customers/C-300").get_data(as_text=True)
    assert "Final demand letter" not in page and "/customers/C-300/statement" in page


def test_the_company_name_comes_from_config(ledger):
    ledger.config["COMPANY_NAME"] = "Northwind <Traders>"
    page = client_for(ledger, "spec").get("/customers/C-100/statement").get_data(as_text=True)
    assert "Northwind &lt;Traders&gt;" in page


def test_a_sales_rep_gets_their_customers_letters_only(ledger):
    rep = client_for(ledger, "rep")
    assert rep.get("/customers/C-100/statement").status_code == 200
    for path in ("statement", "statement.pdf", "final-demand", "final-demand.pdf"):
        assert rep.get(f"/customers/C-200/{path}").status_code == 403, path
    owner = client_for(ledger, "owner")
    assert owner.get("/customers/C-100/statement").status_code == 403
    assert client_for(ledger, "spec").get("/customers/NOPE/statement").status_code == 404


def test_the_approval_letter_of_a_credit_application(app):
    case_id = run_to_approval(app)
    mgr = client_for(app, "mgr")
    case_page = mgr.get(f"/cases/{case_id}").get_data(as_text=True)
    links = case_page[case_page.index('data-testid="case-letters"') :].split("</ul>")[0]
    assert f'href="/cases/{case_id}/letters/approval"' in links
    assert f'href="/cases/{case_id}/letters/approval.pdf"' in links
    assert "decline" not in links
    page = mgr.get(f"/cases/{case_id}/letters/approval").get_data(as_text=True)
    assert "Acme Widgets LLC" in page and "Springfield, IL 62701" in page
    assert "20,000.00 USD" in page and "Net 30 days" in page and "C-00001" in page
    assert "<strong>approved</strong>" in page
    text = pdf_text(mgr.get(f"/cases/{case_id}/letters/approval.pdf"))
    assert "casemgr demo company" in text and "20,000.00 USD" in text
    assert mgr.get(f"/cases/{case_id}/letters/decline").status_code == 404
    assert mgr.get(f"/cases/{case_id}/letters/nonsense.pdf").status_code == 404
    # Who may read the case may read its letters; others may not.
    assert client_for(app, "rep").get(f"/cases/{case_id}/letters/approval").status_code == 200
    assert client_for(app, "spec2").get(f"/cases/{case_id}/letters/approval").status_code == 403
    assert client_for(app, "owner").get(f"/cases/{case_id}/letters/approval.pdf").status_code == 403


def test_the_decline_letter_carries_the_approvers_comment(app):
    with app.app_context():
        case = start_case("credit_application", dict(FORM), find_user("rep"))
        review = next(t for t in case.tasks if t.state == "open")
        case = complete_task(
            review.id,
            {
                "bureau_source": "dnb",
                "bureau_score": 720,
                "bureau_report_date": "2026-11-01",
                "trade_refs_verified": 3,
                "review_action": "recommend",
                "recommended_limit": "20000.00",
                "recommended_terms_days": 30,
            },
            find_user("spec"),
        )
        approval = next(t for t in case.tasks if t.state == "open")
        comment = "Trade references could not confirm <payment> history."
        complete_task(approval.id, {"decision": "decline", "comment": comment}, find_user("mgr"))
        case_id = case.id
    mgr = client_for(app, "mgr")
    assert f"/cases/{case_id}/letters/decline" in mgr.get(f"/cases/{case_id}").get_data(
        as_text=True
    )
    page = mgr.get(f"/cases/{case_id}/letters/decline").get_data(as_text=True)
    assert "<strong>unable to extend credit</strong>" in page
    assert "could not confirm &lt;payment&gt; history." in page
    assert "20,000.00" not in page  # a decline promises no limit
    assert "unable to extend credit" in pdf_text(mgr.get(f"/cases/{case_id}/letters/decline.pdf"))
    assert mgr.get(f"/cases/{case_id}/letters/approval").status_code == 404


def recorded_case(app, key: str, status: str, outcome: str | None, data: dict) -> int:
    """A case row as another case type's diagram leaves it, without running that diagram:
    the letters read only the case's type, status, outcome, data and customer."""
    with app.app_context():
        case_type = db.session.execute(db.select(CaseType).filter_by(key=key)).scalar_one_or_none()
        if case_type is None:
            case_type = CaseType(key=key, name=key.replace("_", " ").capitalize())
            db.session.add(case_type)
        version = case_type.latest() or ProcessVersion(
            case_type=case_type, version=1, process_id=key, bpmn_xml="<definitions/>",
            sha256="0" * 64,
        )  # fmt: skip
        starter = find_user("spec")
        case = Case(
            case_type=case_type,
            process_version=version,
            status=status,
            outcome=outcome,
            title=f"{key} for {data.get('customer_number')}",
            customer_number=data.get("customer_number"),
            data=data,
            workflow_json="{}",
            started_by=starter,
        )
        db.session.add(case)
        db.session.commit()
        return case.id


def test_a_referral_links_its_final_demand_and_statement(ledger):
    case_id = recorded_case(ledger, "collection_referral", "open", None,
                            {"customer_number": "C-100"})  # fmt: skip
    spec = client_for(ledger, "spec")
    page = spec.get(f"/cases/{case_id}").get_data(as_text=True)
    links = page[page.index('data-testid="case-letters"') :].split("</ul>")[0]
    assert "Final demand letter" in links and "Statement of account" in links
    demand = spec.get(f"/cases/{case_id}/letters/final_demand").get_data(as_text=True)
    assert re.search(r'data-testid="past-due">3,400.00 USD<', demand)
    pdf_text(spec.get(f"/cases/{case_id}/letters/statement.pdf"))
    assert spec.get(f"/cases/{case_id}/letters/approval").status_code == 404
    assert client_for(ledger, "spec2").get(f"/cases/{case_id}/letters/statement").status_code == 403


def test_the_dispute_outcome_letter_states_the_credit_posted_for_the_case(ledger):
    data = {
        "customer_number": "C-100",
        "invoice_number": "INV-2",
        "disputed_amount": "500.00",
        "reason_code": "pricing",
        "resolution": "credit_memo",
        "credit_memo_amount": "300.00",
    }
    case_id = recorded_case(ledger, "dispute_resolution", "completed", "credit_memo_posted", data)
    with ledger.app_context():
        invoice = db.session.execute(db.select(Invoice).filter_by(number="INV-2")).scalar_one()
        db.session.add(
            CreditMemo(
                invoice=invoice,
                amount=Decimal("300.00"),
                reason="Dispute (pricing): contract price",
                case_id=case_id,
                posted_on=TODAY,
            )
        )
        db.session.commit()
    spec = client_for(ledger, "spec")
    page = spec.get(f"/cases/{case_id}/letters/dispute_outcome").get_data(as_text=True)
    assert "Your dispute of invoice INV-2" in page and "reason given: pricing" in page
    assert "We agree with part of your claim" in page
    assert re.search(r'data-testid="credited">300.00<', page)
    assert re.search(r'data-testid="open-after">1,700.00<', page)  # 2,000.00 open before
    assert f"Our case {case_id}" in page
    text = pdf_text(spec.get(f"/cases/{case_id}/letters/dispute_outcome.pdf"))
    assert "300.00" in text and "1,700.00" in text


def test_a_denied_dispute_letter_gives_the_reason_and_no_credit(ledger):
    data = {
        "customer_number": "C-100",
        "invoice_number": "INV-5",
        "disputed_amount": "400.00",
        "reason_code": "not_received",
        "resolution": "deny",
        "denial_reason": "The proof of delivery is signed by your receiving dock.",
        "collection_action": "collect",
    }
    case_id = recorded_case(ledger, "dispute_resolution", "completed", "denied", data)
    page = client_for(ledger, "mgr").get(f"/cases/{case_id}/letters/dispute_outcome")
    text = page.get_data(as_text=True)
    assert "<strong>no credit</strong>" in text and "signed by your receiving dock" in text
    assert re.search(r'data-testid="open-after">400.00<', text)
    open_case = recorded_case(ledger, "dispute_resolution", "open", None, data)
    assert (
        client_for(ledger, "mgr").get(f"/cases/{open_case}/letters/dispute_outcome").status_code
        == 404
    )

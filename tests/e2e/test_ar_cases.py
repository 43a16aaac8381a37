"""Issue 3 in the browser: a dispute resolved with a credit memo, and a held order released."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from playwright.sync_api import Page, expect

from casemgr.accounts import find_user, issue_token
from casemgr.extensions import db
from casemgr.ledger.imports import import_csv
from casemgr.ledger.operations import invoice_open_balance
from casemgr.models import Invoice, Order

pytestmark = pytest.mark.e2e


def ledger(app, customers: str, invoices: str) -> None:
    with app.app_context():
        import_csv("customers", customers)
        import_csv("invoices", invoices)
        db.session.commit()


def open_task(page: Page, case_url: str, title: str) -> None:
    page.goto(case_url)
    page.locator("a", has_text=title).first.click()
    expect(page.locator("h1")).to_have_text(title)


def complete(page: Page) -> None:
    page.click("button:has-text('Complete')")
    expect(page.locator(".flash-success")).to_contain_text("Completed")


def test_a_dispute_resolved_with_a_credit_memo(browser_as, live_server, screenshot):
    ledger(
        live_server.app,
        "number,name,credit_limit,terms_days,sales_rep\nC-200,Globex Retail,50000.00,30,rep\n",
        "customer_number,number,invoice_date,due_date,amount\n"
        "C-200,INV-200,2026-10-01,2026-10-31,5000.00\n",
    )
    spec = browser_as("spec")
    spec.goto("/cases/new/dispute_resolution")
    spec.fill("#customer_number", "C-200")
    spec.fill("#invoice_number", "INV-200")
    spec.fill("#disputed_amount", "1200.00")
    spec.select_option("#reason_code", "returned_goods")
    spec.select_option("#source", "deduction")
    spec.fill("#description", "Customer deducted 1,200.00 for goods returned on RMA 4411.")
    spec.click("button:has-text('Start case')")
    expect(spec).to_have_url(re.compile(r"/cases/\d+$"))
    case_url = spec.url

    open_task(spec, case_url, "Research the dispute")
    spec.check("#pod_found")
    spec.fill("#research_notes", "RMA 4411 received in the warehouse on 2026-10-20.")
    complete(spec)

    open_task(spec, case_url, "Resolve the dispute")
    spec.select_option("#resolution", "credit_memo")
    spec.fill("#credit_memo_amount", "1200.00")
    spec.fill("#resolution_notes", "Return confirmed; credit the full deduction.")
    complete(spec)

    # 1,200.00 is within the credit manager's authority: the manager approves it.
    mgr = browser_as("mgr")
    open_task(mgr, case_url, "Approve the credit memo (credit manager)")
    expect(mgr.locator("body")).to_contain_text("1,200.00")
    mgr.select_option("#decision", "approve")
    mgr.fill("#comment", "Return received; approved.")
    mgr.click("button:has-text('Complete')")
    expect(mgr.locator("[data-testid=case-status]")).to_have_text("completed")
    expect(mgr.locator("[data-testid=case-outcome]")).to_have_text("credit_memo_posted")
    expect(mgr.locator("[data-testid=timeline]")).to_contain_text("credit memo")
    screenshot(mgr, "dispute_case")

    with live_server.app.app_context():
        invoice = db.session.execute(db.select(Invoice).filter_by(number="INV-200")).scalar_one()
        assert invoice_open_balance(invoice) == Decimal("3800.00")


def test_a_held_order_released_by_a_specialist(browser_as, live_server):
    # 8,000 open and a 2,500 order against a 10,000 limit: 5% over, so a person decides,
    # and within 10% the specialist may release it alone.
    ledger(
        live_server.app,
        "number,name,credit_limit,terms_days,sales_rep\nC-300,Initech Supply,10000.00,30,rep\n",
        "customer_number,number,invoice_date,due_date,amount\n"
        "C-300,INV-300,2026-11-10,2026-12-10,8000.00\n",
    )
    with live_server.app.app_context():
        token = issue_token(find_user("spec2"))
        db.session.commit()
    spec = browser_as("spec")
    # The ERP's call, exactly as API.md gives it.
    answer = spec.request.post(
        "/api/v1/cases",
        headers={"Authorization": f"Bearer {token}"},
        data={
            "case_type": "credit_hold_release",
            "data": {
                "order_number": "SO-3001",
                "customer_number": "C-300",
                "amount": "2500.00",
                "reason": "over_limit",
            },
        },
    )
    assert answer.status == 201, answer.text()
    case = answer.json()
    assert case["status"] == "open"
    review = [t for t in case["tasks"] if t["state"] == "open"]
    assert [t["role"] for t in review] == ["ar_specialist"]

    spec.goto(f"/tasks/{review[0]['id']}")
    expect(spec.locator("body")).to_contain_text("SO-3001")
    spec.click("button:has-text('Claim')")
    spec.select_option("#review_action", "release")
    spec.fill("#review_notes", "Customer pays on time; 5% over limit is acceptable.")
    spec.click("button:has-text('Complete')")
    spec.goto(f"/cases/{case['id']}")
    expect(spec.locator("[data-testid=case-status]")).to_have_text("completed")
    expect(spec.locator("[data-testid=case-outcome]")).to_contain_text("released")

    with live_server.app.app_context():
        order = db.session.execute(db.select(Order).filter_by(number="SO-3001")).scalar_one()
        assert order.status == "released"

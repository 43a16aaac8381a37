"""A specialist works the queue in real Chromium: filters it, claims a task, completes it, and
parks another until a follow-up date; keys move through the list."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from casemgr.accounts import find_user
from casemgr.engine import cases as engine
from casemgr.engine import worklist
from casemgr.extensions import db
from casemgr.models import Customer, Invoice, TaskRecord

pytestmark = pytest.mark.e2e

INTAKE = {
    "tax_id": "12-3456789",
    "address": "9 Queue Street, Springfield, IL 62701",
    "contact_email": "ap@queue.example",
    "years_in_business": 7,
    "requested_terms_days": 30,
    "trade_ref_1": "Globex, J. Smith, 555-0101",
    "trade_ref_2": "Initech, P. Gibbons, 555-0102",
    "trade_ref_3": "Umbrella, A. Wesker, 555-0103",
    "bank_reference": "First Bank, M. Jones, 555-0199",
}
QUEUE = [  # (customer, requested limit, due in hours or None to keep the diagram's, age in h)
    ("Queue Harbor Freight", "12000.00", -30, 75),
    ("Queue Meadow Foods", "64000.00", 5, 5),
    ("Queue Pine Logistics", "8000.00", None, 1),
    ("Queue Orchard Retail", "150000.00", 48, 49),
    ("Queue Summit Tools", "3500.00", -2, 26),
]


def build_queue(app) -> dict[str, int]:
    """Credit applications waiting for a specialist, one overdue by a day, one due today, and
    a held order of a ledger customer: a queue with every badge."""
    ids = {}
    with app.app_context():
        rep, spec = find_user("rep"), find_user("spec")
        now = datetime.now(UTC)
        for name, limit, due_hours, age_hours in QUEUE:
            data = dict(INTAKE, legal_name=name, requested_limit=limit)
            case = engine.start_case("credit_application", data, rep)
            row = next(t for t in case.tasks if t.state == "open")
            row.created_at = now - timedelta(hours=age_hours)
            if due_hours is not None:
                row.due_at = now + timedelta(hours=due_hours)
                if 0 < due_hours < 24 and row.due_at.date() != now.date():
                    row.due_at = now.replace(hour=23, minute=50)
            ids[name] = row.id
        number = f"QUEUE-{now:%H%M%S%f}"  # the search for "Queue" finds it by number
        customer = Customer(number=number, name="Queue Granite Supply", credit_limit=Decimal(
            "20000"), terms_days=30, sales_rep="rep")  # fmt: skip
        db.session.add(customer)
        db.session.flush()
        due = now.date() - timedelta(days=75)
        db.session.add(Invoice(customer=customer, number=f"{number}-1", amount=Decimal("4000"),
                               invoice_date=due - timedelta(days=30), due_date=due))  # fmt: skip
        db.session.commit()
        order = {"order_number": f"SO-{number}", "customer_number": number,
                 "amount": "9000.00", "reason": "past_due"}  # fmt: skip
        case = engine.start_case("credit_hold_release", order, spec)
        held = next(t for t in case.tasks if t.state == "open")
        if held.assignee_id is not None:
            engine.unclaim_task(held.id, spec, "back to the team queue")
        ids["held"] = held.id
        db.session.commit()
        engine.claim_task(ids["Queue Summit Tools"], spec)
        worklist.save_view(spec, "Big tickets", {"q": "Queue", "amount_min": "50000",
                                                 "sort": "-amount"})  # fmt: skip
        worklist.save_view(find_user("mgr"), "Overdue first", {"due": "overdue"}, "ar_specialist")
    return ids


def row_of(page, customer: str):
    return page.locator("table.inbox tbody tr").filter(has_text=customer)


def test_a_specialist_works_the_queue(browser_as, live_server, screenshot):
    ids = build_queue(live_server.app)
    spec = browser_as("spec")
    spec.goto("/?q=Queue")
    table = spec.locator("[data-testid=inbox-table]")
    for name, *_ in QUEUE:
        expect(row_of(spec, name)).to_have_count(1)
    expect(row_of(spec, "Queue Summit Tools")).to_contain_text("me")
    expect(spec.locator("[data-testid=views]")).to_contain_text("Big tickets")
    expect(spec.locator("[data-testid=views]")).to_contain_text("Overdue first")
    expect(row_of(spec, "Queue Harbor Freight")).to_contain_text("overdue")
    expect(row_of(spec, "Queue Meadow Foods")).to_contain_text("today")
    expect(row_of(spec, "Queue Meadow Foods")).to_contain_text("high")  # 64,000: high priority
    expect(row_of(spec, "Order credit hold release")).to_contain_text("QUEUE-")
    screenshot(spec, "inbox")

    # Filter: overdue only (the list applies as soon as it changes), then an amount range.
    spec.select_option("#f-due", "overdue")
    expect(spec).to_have_url(re.compile(r"due=overdue"))
    expect(row_of(spec, "Queue Harbor Freight")).to_have_count(1)
    expect(row_of(spec, "Queue Summit Tools")).to_have_count(1)
    expect(row_of(spec, "Queue Meadow Foods")).to_have_count(0)
    spec.goto("/?q=Queue")
    spec.fill("#f-amount_min", "10000")
    spec.fill("#f-amount_max", "100000")
    spec.click("#filters button:has-text('Filter')")
    expect(table.locator("tbody tr")).to_have_count(2)
    expect(row_of(spec, "Queue Harbor Freight")).to_have_count(1)
    expect(row_of(spec, "Queue Meadow Foods")).to_have_count(1)
    expect(spec.locator("[data-testid=inbox-summary]")).to_contain_text("2 open with these filters")

    # Keys: / searches, j moves, Enter opens.
    spec.goto("/?q=Queue&sort=-amount")
    spec.keyboard.press("/")
    expect(spec.locator("#q")).to_be_focused()
    spec.keyboard.press("Escape")
    spec.keyboard.press("j")
    expect(spec.locator("tr.current")).to_contain_text("Queue Orchard Retail")
    spec.keyboard.press("j")
    expect(spec.locator("tr.current")).to_contain_text("Queue Meadow Foods")
    spec.keyboard.press("Enter")
    expect(spec).to_have_url(re.compile(rf"/tasks/{ids['Queue Meadow Foods']}$"))

    # Claim the overdue one from the list, complete it.
    spec.goto("/?q=Queue&due=overdue")
    row_of(spec, "Queue Harbor Freight").locator("button:has-text('Claim')").click()
    expect(spec.locator(".flash-success")).to_contain_text("You have claimed")
    spec.select_option("#bureau_source", "dnb")
    spec.fill("#bureau_score", "700")
    spec.fill("#bureau_report_date", "2026-01-05")
    spec.fill("#trade_refs_verified", "3")
    spec.select_option("#review_action", "recommend")
    spec.fill("#recommended_limit", "10000.00")
    spec.select_option("#recommended_terms_days", "30")
    spec.click("button:has-text('Complete')")
    expect(spec.locator(".flash-success")).to_contain_text("Completed")
    spec.goto("/?q=Queue")
    expect(row_of(spec, "Queue Harbor Freight")).to_have_count(0)

    # "Call back Thursday": a follow-up date hides the task until then.
    spec.goto(f"/tasks/{ids['Queue Pine Logistics']}")
    until = (datetime.now(UTC) + timedelta(days=3)).date().isoformat()
    form = spec.locator("[data-testid=follow-up-form]")
    form.locator("#until").fill(until)
    form.locator("#follow-up-reason").fill("call back Thursday")
    form.locator("button:has-text('Set follow-up')").click()
    expect(spec.locator(".flash-success")).to_contain_text(f"hidden from your inbox until {until}")
    spec.goto("/?q=Queue")
    expect(row_of(spec, "Queue Pine Logistics")).to_have_count(0)
    parked = spec.locator("[data-testid=parked-link]")
    expect(parked).to_contain_text("parked until a follow-up date")
    parked.click()
    expect(row_of(spec, "Queue Pine Logistics")).to_contain_text(f"follow-up {until}")
    with live_server.app.app_context():
        row = db.session.get(TaskRecord, ids["Queue Pine Logistics"])
        assert row.assignee.username == "spec" and row.follow_up_at is not None

    # Another specialist's queue no longer holds what spec claimed or parked.
    other = browser_as("spec2")
    other.goto("/?q=Queue")
    expect(row_of(other, "Queue Pine Logistics")).to_have_count(0)
    expect(row_of(other, "Queue Orchard Retail")).to_have_count(1)

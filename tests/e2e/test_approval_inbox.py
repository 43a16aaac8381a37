"""A credit manager clears the approval inbox in real Chromium: fifty approvals in one bulk
action with a result per approval, one refused by the four-eyes rule; and the keyboard.

The requests and clicks it takes are counted here (and printed with -s): the figure the
README quotes for clearing 50 waiting approvals.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from casemgr.accounts import find_user
from casemgr.engine import cases as engine
from casemgr.extensions import db
from casemgr.models import Customer, Invoice, TaskRecord
from tests.e2e.conftest import SCREENSHOTS

pytestmark = pytest.mark.e2e

INTAKE = {
    "tax_id": "12-3456789",
    "address": "1 Batch Road, Springfield, IL 62701",
    "contact_email": "ap@batch.example",
    "years_in_business": 6,
    "requested_terms_days": 30,
    "trade_ref_1": "Globex, J. Smith, 555-0101",
    "trade_ref_2": "Initech, P. Gibbons, 555-0102",
    "trade_ref_3": "Umbrella, A. Wesker, 555-0103",
    "bank_reference": "First Bank, M. Jones, 555-0199",
}
REVIEW = {
    "bureau_source": "dnb",
    "bureau_score": 730,
    "bureau_report_date": "2026-01-05",
    "trade_refs_verified": 3,
    "review_action": "recommend",
    "recommended_terms_days": 30,
    "review_notes": "References good; bank confirms.",
}


def credit_approval(prefix: str, n: int, recommender: str) -> int:
    rep, who = find_user("rep"), find_user(recommender)
    limit = f"{12000 + 750 * n}.00"  # above 10,000: a manager approves (credit_decision.dmn)
    data = dict(INTAKE, legal_name=f"{prefix} {n:02d} Trading", requested_limit=limit)
    case = engine.start_case("credit_application", data, rep)
    review_id = next(t.id for t in case.tasks if t.state == "open")
    case = engine.complete_task(review_id, dict(REVIEW, recommended_limit=limit), who)
    return next(t.id for t in case.tasks if t.state == "open")


def held_order_approval(prefix: str) -> int:
    """A held order over its limit: the approval shows limit, exposure and past dues."""
    spec = find_user("spec")
    now = datetime.now(UTC)
    number = f"{prefix.split()[0].upper()}-{now:%H%M%S%f}"  # found by the same search
    customer = Customer(number=number, name=f"{prefix} Hold Co", credit_limit=Decimal("20000"),
                        terms_days=30, sales_rep="rep")  # fmt: skip
    db.session.add(customer)
    db.session.flush()
    due = now.date() - timedelta(days=20)
    db.session.add(Invoice(customer=customer, number=f"{number}-1", amount=Decimal("10000"),
                           invoice_date=due - timedelta(days=30), due_date=due))  # fmt: skip
    db.session.commit()
    order = {"order_number": f"SO-{number}", "customer_number": number, "amount": "12500.00",
             "reason": "over_limit"}  # fmt: skip
    case = engine.start_case("credit_hold_release", order, spec)
    review_id = next(t.id for t in case.tasks if t.state == "open")
    case = engine.complete_task(review_id, {"review_action": "release"}, spec)
    return next(t.id for t in case.tasks if t.state == "open")


def make_batch(app, prefix: str, count: int) -> tuple[list[int], int]:
    """`count` approvals: the first recommended by "dual" (so dual may not approve it), one
    held order, the rest credit limits recommended by spec."""
    with app.app_context():
        blocked = credit_approval(prefix, 0, "dual")
        ids = [blocked, held_order_approval(prefix)]
        ids += [credit_approval(prefix, n, "spec") for n in range(1, count - 1)]
        return ids, blocked


def test_a_manager_clears_fifty_approvals_in_one_action(browser_as, live_server):
    ids, blocked = make_batch(live_server.app, "Bulk Batch", 50)
    mgr = browser_as("dual")  # a credit manager who also recommended one of them
    requests: list[str] = []
    mgr.on("request", lambda r: requests.append(f"{r.method} {r.url}"))
    clicks = 0

    mgr.goto("/approvals?q=Bulk")
    rows = mgr.locator("[data-testid=approvals-table] tbody tr")
    expect(rows).to_have_count(50)
    expect(mgr.locator("[data-testid=approvals-summary]")).to_contain_text("50 waiting")
    blocked_row = mgr.locator(f"tr[data-task='{blocked}']")
    expect(blocked_row.locator("[data-testid=blocked]")).to_contain_text("four-eyes rule")
    held = rows.filter(has_text="Order credit hold release")
    expect(held).to_contain_text("exposure 22,500.00")
    expect(held).to_contain_text("exposure 12.5% over the limit")
    expect(rows.filter(has_text="Bulk Batch 07 Trading")).to_contain_text(
        "Recommended credit limit"
    )
    mgr.screenshot(path=str(SCREENSHOTS / "approvals.png"), full_page=False)

    mgr.locator("[data-select-all]").click()
    clicks += 1
    expect(mgr.locator("[data-selected-count]")).to_have_text("50")
    mgr.locator("button[data-bulk=approve]").click()
    clicks += 1

    result = mgr.locator("[data-testid=bulk-result]")
    expect(result).to_have_text("Approved 49 of 50 · 1 refused: see the row", timeout=60_000)
    expect(blocked_row.locator("[data-testid=row-result]")).to_contain_text(
        "Four-eyes rule: you completed"
    )
    expect(mgr.locator("tr.done")).to_have_count(49)
    expect(held.locator("[data-testid=row-result]")).to_have_text("Approved")
    expect(mgr.locator("[data-remaining]")).to_have_text("1")
    mgr.evaluate("window.scrollTo(0, 0)")
    mgr.screenshot(path=str(SCREENSHOTS / "approvals_bulk.png"), full_page=False)

    app_requests = [r for r in requests if "/static/" not in r and "favicon" not in r]
    assert app_requests[0].startswith("GET ") and "/approvals?q=Bulk" in app_requests[0]
    assert [r.split(" ")[0] + " " + r.split("/", 3)[3] for r in app_requests[1:]] == [
        "POST approvals/decide"
    ]
    print(
        f"\nclearing 50 approvals: {clicks} clicks, {len(app_requests)} requests to the app "
        f"({len(requests)} with static files): {app_requests}"
    )
    with live_server.app.app_context():
        states = dict(
            db.session.execute(
                db.select(TaskRecord.id, TaskRecord.state).where(TaskRecord.id.in_(ids))
            ).all()
        )
    assert sum(1 for s in states.values() if s == "completed") == 49
    assert states[blocked] == "open"

    # Another manager clears the one left, inline, with its own button.
    other = browser_as("mgr2")
    other.goto("/approvals?q=Bulk")
    expect(other.locator("[data-testid=approvals-table] tbody tr")).to_have_count(1)
    other.locator(f"tr[data-task='{blocked}'] button[data-action=approve]").click()
    expect(other.locator(f"tr[data-task='{blocked}'] [data-testid=row-result]")).to_have_text(
        "Approved"
    )


def test_the_keyboard_decides_one_after_another(browser_as, live_server):
    with live_server.app.app_context():
        ids = [credit_approval("Keys Batch", n, "spec") for n in range(1, 4)]
    mgr = browser_as("mgr")
    mgr.goto("/approvals?q=Keys+Batch")
    expect(mgr.locator("[data-testid=shortcuts]")).to_contain_text("approve the current one")
    mgr.keyboard.press("j")
    expect(mgr.locator("tr.current")).to_have_attribute("data-task", str(ids[0]))
    mgr.keyboard.press("a")
    expect(mgr.locator(f"tr[data-task='{ids[0]}'] [data-testid=row-result]")).to_have_text(
        "Approved"
    )
    # After a decision the next one is current: reject it, which needs a comment.
    expect(mgr.locator("tr.current")).to_have_attribute("data-task", str(ids[1]))
    mgr.keyboard.press("r")
    refused = mgr.locator(f"tr[data-task='{ids[1]}'] [data-testid=row-result]")
    expect(refused).to_contain_text("Say why")
    mgr.keyboard.press("c")
    expect(mgr.locator(f"tr[data-task='{ids[1]}'] .row-comment")).to_be_focused()
    mgr.keyboard.type("Bureau score too thin for this limit")
    mgr.keyboard.press("Escape")
    mgr.keyboard.press("r")
    expect(refused).to_have_text("Rejected")
    # x selects, Shift+A approves what is selected.
    mgr.keyboard.press("x")
    expect(mgr.locator("[data-selected-count]")).to_have_text("1")
    mgr.keyboard.press("Shift+A")
    expect(mgr.locator(f"tr[data-task='{ids[2]}'] [data-testid=row-result]")).to_have_text(
        "Approved"
    )
    with live_server.app.app_context():
        outcomes = [db.session.get(TaskRecord, i).case.outcome for i in ids]
    assert outcomes[0] == outcomes[2] == "approved" and outcomes[1] != "approved"

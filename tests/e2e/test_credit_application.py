"""The new-customer credit application, end to end, by several people in real Chromium."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e

PASSWORD = "correct-horse-1"
INTAKE = {
    "legal_name": "Acme Widgets LLC",
    "dba": "Acme",
    "address": "1 Main Street\nSpringfield, IL 62701",
    "contact_email": "ap@acme.example",
    "years_in_business": "5",
    "requested_limit": "25000.00",
    "trade_ref_1": "Globex Corp, J. Smith, 555-0101",
    "trade_ref_2": "Initech, P. Gibbons, 555-0102",
    "trade_ref_3": "Umbrella Supply, A. Wesker, 555-0103",
    "bank_reference": "First National Bank, M. Jones, 555-0199",
}


def fill_intake(page: Page, tax_id: str, legal_name: str = "Acme Widgets LLC") -> None:
    for name, value in {**INTAKE, "legal_name": legal_name}.items():
        page.fill(f"#{name}", value)
    page.fill("#tax_id", tax_id)
    page.select_option("#requested_terms_days", "30")


def fill_review(page: Page) -> None:
    page.select_option("#bureau_source", "dnb")
    page.fill("#bureau_score", "720")
    page.fill("#bureau_report_date", "2026-11-01")
    page.fill("#trade_refs_verified", "3")
    page.select_option("#review_action", "recommend")
    page.fill("#recommended_limit", "20000.00")
    page.select_option("#recommended_terms_days", "30")
    page.fill("#review_notes", "D&B 720, three trade references verified, bank confirms.")


def unread(page: Page) -> int:
    badge = page.locator("[data-testid=unread-count]")
    return int(badge.inner_text()) if badge.count() else 0


def inbox_row(page: Page, customer: str, step: str):
    return page.locator("table.inbox tbody tr").filter(has_text=customer).filter(has_text=step)


def test_a_credit_application_from_intake_to_approval(browser_as, screenshot):
    # The sales rep logs in and starts the application through the intake form.
    rep = browser_as(None)
    rep.goto("/")
    expect(rep).to_have_url(re.compile(r"/login\?next="))
    screenshot(rep, "login")
    rep.fill("#username", "rep")
    rep.fill("#password", PASSWORD)
    rep.click("button:has-text('Log in')")
    expect(rep.locator("h1")).to_have_text("Inbox")
    unread_before = unread(rep)  # other tests in this server session may have notified rep

    rep.click("summary:has-text('Start a case')")
    rep.click(".menu a:has-text('New-customer credit application')")
    expect(rep.locator("#sales_rep")).to_have_value("rep")
    fill_intake(rep, tax_id="123456789")
    rep.click("button:has-text('Start case')")
    expect(rep.locator("#tax_id-error")).to_have_text("Enter the federal tax ID as 12-3456789.")
    expect(rep.locator("#legal_name")).to_have_value("Acme Widgets LLC")
    expect(rep.locator("#address")).to_have_value(INTAKE["address"])
    screenshot(rep, "intake")
    rep.fill("#tax_id", "12-3456789")
    rep.click("button:has-text('Start case')")
    expect(rep.locator("h1")).to_have_text("New-customer credit application: Acme Widgets LLC")
    case_url = rep.url
    assert re.search(r"/cases/\d+$", case_url)

    # The specialist finds the review in the queue, claims it and recommends 20,000.
    spec = browser_as("spec")
    row = inbox_row(spec, "Acme Widgets LLC", "Review credit and recommend a limit")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("25,000.00")
    expect(row).to_contain_text("AR Specialist")
    screenshot(spec, "inbox")
    row.locator("button:has-text('Claim')").click()
    expect(spec.locator("h1")).to_have_text("Review credit and recommend a limit")
    expect(spec.locator(".flash-success")).to_contain_text("You have claimed")
    fill_review(spec)
    screenshot(spec, "task")
    spec.click("button:has-text('Complete')")
    expect(spec.locator(".flash-success")).to_contain_text("Completed")
    expect(spec.locator("body")).to_contain_text("Approve the credit limit (credit manager)")

    # The credit manager sees the approval with the figures and approves.
    mgr = browser_as("mgr")
    row = inbox_row(mgr, "Acme Widgets LLC", "Approve the credit limit (credit manager)")
    expect(row).to_contain_text("20,000.00")
    row.locator("a", has_text="Approve the credit limit").click()
    expect(mgr.locator("[data-testid=recommended-by]")).to_contain_text("Recommended by Spec")
    figures = mgr.locator("dl.key-figures")
    for label, value in [
        ("Requested credit limit", "25,000.00"),
        ("Recommended credit limit", "20,000.00"),
        ("Bureau score (0-1000)", "720"),
        ("Fraud flags", "none"),
    ]:
        expect(figures.locator("div", has_text=label).first).to_contain_text(value)
    mgr.select_option("#decision", "approve")
    mgr.fill("#comment", "Within authority; references good.")
    screenshot(mgr, "approval")
    mgr.click("button:has-text('Complete')")

    # The case page: completed, approved, the whole timeline oldest first.
    expect(mgr.locator("[data-testid=case-status]")).to_have_text("completed")
    expect(mgr.locator("[data-testid=case-outcome]")).to_have_text("approved")
    timeline = mgr.locator("[data-testid=timeline] > li")
    expect(timeline.first).to_contain_text("Started the case")
    expect(timeline.last).to_contain_text("Case completed: approved")
    expect(mgr.locator("[data-testid=timeline]")).to_contain_text(
        "Completed “Review credit and recommend a limit”"
    )
    screenshot(mgr, "credit_case")

    # The sales rep sees the bell count and the decision.
    rep.goto("/")
    expect(rep.locator("[data-testid=unread-count]")).to_have_text(str(unread_before + 1))
    rep.click("a.bell")
    note = rep.locator("[data-testid=notifications] li").first
    expect(note).to_contain_text("Credit application for Acme Widgets LLC approved")
    screenshot(rep, "notifications")
    note.locator("button:has-text('Open case')").click()
    expect(rep).to_have_url(case_url)
    if unread_before:
        expect(rep.locator("[data-testid=unread-count]")).to_have_text(str(unread_before))
    else:
        expect(rep.locator("[data-testid=unread-count]")).to_have_count(0)


def test_four_eyes_the_recommender_cannot_approve_it(browser_as, live_server):
    # The specialist who also holds the manager role reviews and recommends...
    rep = browser_as("rep")
    rep.goto("/cases/new/credit_application")
    fill_intake(rep, tax_id="98-7654321", legal_name="Dual Control Corp")
    rep.click("button:has-text('Start case')")
    expect(rep.locator("h1")).to_contain_text("Dual Control Corp")

    dual = browser_as("dual")
    row = inbox_row(dual, "Dual Control Corp", "Review credit and recommend a limit")
    row.locator("button:has-text('Claim')").click()
    fill_review(dual)
    dual.click("button:has-text('Complete')")
    expect(dual.locator(".flash-success")).to_contain_text("Completed")

    # ...then finds the approval in the manager queue, but may not take or complete it.
    dual.goto("/")
    row = inbox_row(dual, "Dual Control Corp", "Approve the credit limit (credit manager)")
    expect(row).to_have_count(1)
    row.locator("button:has-text('Claim')").click()
    expect(dual.locator(".flash-error")).to_contain_text("Four-eyes rule: you completed")
    row.locator("a", has_text="Approve the credit limit").click()
    blocked = dual.locator("[data-testid=blocked]")
    expect(blocked).to_contain_text("Four-eyes rule.")
    expect(blocked).to_contain_text("someone else must complete this task")
    expect(dual.locator("button:has-text('Complete')")).to_have_count(0)
    expect(dual.locator("#decision")).to_be_disabled()

    # Another manager can.
    mgr2 = browser_as("mgr2")
    row = inbox_row(mgr2, "Dual Control Corp", "Approve the credit limit (credit manager)")
    row.locator("a", has_text="Approve the credit limit").click()
    mgr2.select_option("#decision", "approve")
    mgr2.click("button:has-text('Complete')")
    expect(mgr2.locator("[data-testid=case-outcome]")).to_have_text("approved")


def test_a_stale_page_says_who_completed_the_task(browser_as):
    spec = browser_as("spec")
    spec.goto("/cases/new/credit_application")
    fill_intake(spec, tax_id="11-2223334", legal_name="Stale Page Ltd")
    spec.click("button:has-text('Start case')")
    spec.locator("a", has_text="Review credit and recommend a limit").first.click()
    task_url = spec.url

    other = browser_as("spec2")
    other.goto(task_url)
    fill_review(spec)
    spec.click("button:has-text('Complete')")
    expect(spec.locator(".flash-success")).to_contain_text("Completed")

    fill_review(other)
    other.fill("#review_notes", "my own notes")
    other.click("button:has-text('Complete')")
    expect(other.locator("[data-testid=problem]")).to_contain_text("already completed by Spec at")
    expect(other.locator("#review_notes")).to_have_value("my own notes")

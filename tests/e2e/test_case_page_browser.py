"""The case page in real Chromium: the diagram drawn by bpmn-js with the case's state on it,
the customer panel with special handling, a comment and an uploaded POD."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from casemgr.accounts import find_user
from casemgr.engine import clock
from casemgr.engine.cases import complete_task, start_case
from casemgr.extensions import db
from casemgr.models import AccountNote, Customer, Invoice
from tests.credit_data import INTAKE, review

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
VENDOR = ROOT / "casemgr" / "static" / "vendor"
VIEWER = VENDOR / "bpmn-js" / "bpmn-navigated-viewer.production.min.js"
SCREENSHOTS = ROOT / "docs" / "screenshots"
PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


@pytest.fixture(autouse=True)
def vendor_assets_built() -> None:
    """The diagram needs bpmn-js from npm; `make setup` (which `make test` runs) builds it."""
    assert VIEWER.is_file(), f"{VIEWER} is missing: run `make setup` to build the npm assets"


@pytest.fixture
def attachment_dir(live_server, tmp_path, monkeypatch):
    monkeypatch.setitem(live_server.app.config, "ATTACHMENT_DIR", str(tmp_path / "attachments"))


def element(page: Page, bpmn_id: str):
    """bpmn-js draws each BPMN element as a group carrying its id and the markers."""
    return page.locator(f'#case-diagram g.djs-element[data-element-id="{bpmn_id}"]')


def open_case(page: Page, case_id: int) -> None:
    page.goto(f"/cases/{case_id}")
    expect(page.locator("#case-diagram")).to_have_attribute("data-diagram-ready", "yes")


def held_order_in_review(app) -> int:
    """An order over the customer's limit, held by the ERP and waiting on the specialist."""
    with app.app_context():
        today = clock.now().date()
        customer = Customer(
            number="C-E2E-200",
            name="Globex Corporation",
            credit_limit=Decimal("20000.00"),
            terms_days=30,
            sales_rep="rep",
        )
        db.session.add(customer)
        db.session.flush()
        for number, amount, days_past_due in (
            ("INV-E2E-1", "6000.00", -12),
            ("INV-E2E-2", "2500.00", 17),
        ):
            due = today - timedelta(days=days_past_due)
            db.session.add(
                Invoice(
                    customer=customer,
                    number=number,
                    invoice_date=due - timedelta(days=30),
                    due_date=due,
                    amount=Decimal(amount),
                )
            )
        db.session.add_all(
            [
                AccountNote(
                    customer_id=customer.id,
                    author="spec",
                    text="Invoices always go to AP (ap@globex.example), not the buyer.",
                    special_handling=True,
                ),
                AccountNote(
                    customer_id=customer.id,
                    author="mgr",
                    text="Pays reliably within 20 days of due date; seasonal peaks in Q4.",
                ),
            ]
        )
        db.session.commit()
        order = {
            "order_number": "SO-E2E-200",
            "customer_number": "C-E2E-200",
            "amount": "12500.00",
            "reason": "over_limit",
        }
        case = start_case("credit_hold_release", order, find_user("spec"))
        assert [t.name for t in case.tasks if t.state == "open"] == ["specialist_review"]
        return case.id


def credit_application_waiting_on_the_customer(app) -> int:
    with app.app_context():
        case = start_case(
            "credit_application", {**INTAKE, "legal_name": "Initech LLC"}, find_user("rep")
        )
        first = next(t for t in case.tasks if t.state == "open")
        complete_task(first.id, review(action="request_info"), find_user("spec"))
        return case.id


def test_a_held_order_shows_its_path_its_open_review_and_its_escalation_timer(
    browser_as, live_server, attachment_dir
):
    case_id = held_order_in_review(live_server.app)
    spec = browser_as("spec")
    open_case(spec, case_id)

    # The automatic check ran (green), the review is open (blue), the 4-hour clock waits.
    for done in ("record_held_order", "check_credit"):
        expect(element(spec, done)).to_have_class(re.compile(r"\bcm-completed\b"))
    expect(element(spec, "specialist_review")).to_have_class(re.compile(r"\bcm-active\b"))
    expect(element(spec, "timer_unhandled")).to_have_class(re.compile(r"\bcm-waiting\b"))
    expect(element(spec, "manager_approval")).not_to_have_class(re.compile(r"\bcm-"))
    expect(spec.locator(".cm-timer-badge")).to_have_count(1)
    expect(spec.locator(".cm-timer-badge")).to_contain_text(re.compile(r"due \d{4}-\d\d-\d\d"))
    summary = spec.locator("[data-diagram-summary]")
    expect(summary).to_contain_text("Active: Review the held order")
    expect(summary).to_contain_text("Waiting timers: 4 business hours unhandled (due")

    # The customer's standing and, above everything, how to handle this customer.
    expect(spec.locator("[data-testid=special-handling]")).to_contain_text(
        "Invoices always go to AP (ap@globex.example), not the buyer."
    )
    panel = spec.locator("[data-testid=customer-panel]")
    expect(panel).to_contain_text("Globex Corporation (C-E2E-200)")
    expect(panel.locator("[data-testid=customer-figures]")).to_contain_text("8,500.00")
    expect(panel.locator("[data-testid=customer-aging]")).to_contain_text("2,500.00")

    # The specialist comments and attaches the customer's remittance advice.
    spec.fill("#comment-body", "Called AP: payment of INV-E2E-2 goes out Friday.")
    spec.click("button:has-text('Comment')")
    expect(spec.locator("[data-testid=comments]")).to_contain_text("goes out Friday")
    spec.set_input_files(
        "#attachment-file",
        files=[{"name": "remittance-advice.pdf", "mimeType": "application/pdf", "buffer": PDF}],
    )
    spec.click("button:has-text('Upload')")
    link = spec.locator("[data-testid=attachments] a", has_text="remittance-advice.pdf")
    expect(link).to_have_count(1)
    expect(spec.locator("[data-testid=timeline]")).to_contain_text(
        "Attached “remittance-advice.pdf”"
    )
    with spec.expect_download() as download_info:
        link.click()
    download = download_info.value
    assert download.suggested_filename == "remittance-advice.pdf"
    assert Path(download.path()).read_bytes() == PDF

    # A refused upload says why, on the page, without losing anything else.
    spec.set_input_files(
        "#attachment-file",
        files=[{"name": "invoice.pdf", "mimeType": "application/pdf", "buffer": b"MZ\x90\x00"}],
    )
    spec.click("button:has-text('Upload')")
    expect(spec.locator("[data-testid=attachment-error]")).to_contain_text(
        "“invoice.pdf” is not a PDF"
    )

    open_case(spec, case_id)
    spec.locator("#diagram").scroll_into_view_if_needed()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    spec.screenshot(path=str(SCREENSHOTS / "case.png"), full_page=True)
    spec.locator("#diagram").screenshot(path=str(SCREENSHOTS / "case_diagram.png"))


def test_a_credit_application_waiting_on_the_customer_marks_both_boundary_timers(
    browser_as, live_server
):
    case_id = credit_application_waiting_on_the_customer(live_server.app)
    mgr = browser_as("mgr")
    open_case(mgr, case_id)
    for done in ("start_application", "gw_intake_complete", "specialist_review"):
        expect(element(mgr, done)).to_have_class(re.compile(r"\bcm-completed\b"))
    expect(element(mgr, "await_customer_info")).to_have_class(re.compile(r"\bcm-active\b"))
    for timer in ("timer_reminder", "timer_withdraw"):
        expect(element(mgr, timer)).to_have_class(re.compile(r"\bcm-waiting\b"))
    expect(element(mgr, "complete_intake")).not_to_have_class(re.compile(r"\bcm-"))
    expect(mgr.locator(".cm-timer-badge")).to_have_count(2)
    # The flow into the open task was certainly taken; the skipped intake's flow was not.
    expect(element(mgr, "flow_request_info")).to_have_class(re.compile(r"\bcm-completed\b"))
    expect(element(mgr, "flow_intake_missing")).not_to_have_class(re.compile(r"\bcm-"))


def test_a_sales_rep_of_another_customer_gets_no_diagram(browser_as, live_server):
    case_id = held_order_in_review_for_other(live_server.app)
    rep = browser_as("rep")
    response = rep.goto(f"/cases/{case_id}/diagram.bpmn")
    assert response is not None and response.status == 403


def held_order_in_review_for_other(app) -> int:
    """A case of a customer whose sales rep is someone else."""
    with app.app_context():
        customer = Customer(
            number="C-E2E-300",
            name="Umbrella Supply",
            credit_limit=Decimal("1000.00"),
            terms_days=30,
            sales_rep="someone_else",
        )
        db.session.add(customer)
        db.session.commit()
        order = {
            "order_number": "SO-E2E-300",
            "customer_number": "C-E2E-300",
            "amount": "5000.00",
            "reason": "over_limit",
        }
        return start_case("credit_hold_release", order, find_user("spec")).id

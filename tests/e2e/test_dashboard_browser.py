"""The dashboard in real Chromium: Chart.js draws every chart beside its table, with no
console error under the self-only CSP; the screenshot goes to docs/screenshots."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.sync_api import expect

from casemgr.accounts import find_user
from casemgr.engine import clock
from casemgr.engine.cases import complete_task, start_case
from casemgr.extensions import db
from casemgr.models import Customer, Invoice
from tests.credit_data import INTAKE, review

pytestmark = pytest.mark.e2e

CHART_JS = Path(__file__).resolve().parents[2] / "casemgr/static/vendor/chart.js/chart.umd.js"
CHARTS = ("open_by_step", "time_to_resolve", "sla", "approvals", "aging")


@pytest.fixture(autouse=True)
def vendor_assets_built() -> None:
    """Chart.js comes from npm; `make setup` (which `make test` runs) copies it."""
    assert CHART_JS.is_file(), f"{CHART_JS} is missing: run `make setup` to build the npm assets"


def some_work(app) -> None:
    """A few cases at different steps, one approval waiting, a small aged ledger."""
    with app.app_context():
        today = clock.now().date()
        customer = Customer(number="C-E2E-DASH", name="Dashboard Demo Inc", sales_rep="rep")
        db.session.add_all(
            [
                customer,
                *(
                    Invoice(
                        customer=customer,
                        number=f"INV-DASH-{age}",
                        invoice_date=today - timedelta(days=age + 30),
                        due_date=today - timedelta(days=age),
                        amount=Decimal(amount),
                    )
                    for age, amount in ((-10, "1200.00"), (20, "800.00"), (75, "450.00"))
                ),
            ]
        )
        db.session.commit()
        for _ in range(2):
            start_case("credit_application", dict(INTAKE), find_user("rep"))
        case = start_case("credit_application", dict(INTAKE), find_user("rep"))
        [task] = [t for t in case.tasks if t.state == "open"]
        complete_task(task.id, review("20000.00"), find_user("spec"))
        db.session.remove()


def test_the_dashboard_draws_its_charts(browser_as, live_server, screenshot):
    some_work(live_server.app)
    page = browser_as("mgr")
    page.goto("/dashboard")
    expect(page.locator("[data-dashboard]")).to_have_attribute("data-charts", "ready")
    for name in CHARTS:
        canvas = page.locator(f'canvas[data-chart="{name}"]')
        expect(canvas).to_be_visible()
        box = canvas.bounding_box()
        assert box and box["width"] > 100 and box["height"] > 100, (name, box)
    # Chart.js keeps its instances: one per canvas, so every chart was really drawn.
    drawn = page.evaluate(
        "() => [...document.querySelectorAll('canvas[data-chart]')]"
        ".filter(c => window.Chart.getChart(c)).length"
    )
    assert drawn == len(CHARTS)
    expect(page.locator("[data-testid=charts-unavailable]")).to_be_hidden()
    expect(page.locator("[data-testid=approvals]")).to_contain_text("Credit Manager queue")
    screenshot(page, "dashboard")


def test_a_specialist_is_refused_the_dashboard(browser_as):
    page = browser_as("spec")
    response = page.goto("/dashboard")
    assert response is not None and response.status == 403
    expect(page.locator("nav.mainnav")).not_to_contain_text("Dashboard")

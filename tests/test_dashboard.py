"""The managers' dashboard: the numbers for a small scenario built row by row, who may see
it, and bad input answered without a 500."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from casemgr.accounts import find_user
from casemgr.extensions import db
from casemgr.models import Case, CaseType, Customer, Invoice, TaskRecord

PASSWORD = "correct-horse-1"


def web(app, name):
    client = app.test_client()
    response = client.post("/login", data={"username": name, "password": PASSWORD})
    assert response.status_code == 302
    return client


def add_case(key, *, created, completed=None, status="open") -> Case:
    case_type = db.session.execute(db.select(CaseType).filter_by(key=key)).scalar_one()
    case = Case(
        case_type=case_type,
        process_version=case_type.latest(),
        status="completed" if completed else status,
        title=f"{case_type.name}: test",
        data={},
        workflow_json="",
        created_at=created,
        updated_at=created,
        completed_at=completed,
    )
    db.session.add(case)
    db.session.flush()
    return case


def add_task(case, title, *, created, due=None, completed=None, four_eyes=(), role="ar_specialist",
             assignee=None) -> TaskRecord:  # fmt: skip
    row = TaskRecord(
        case_id=case.id,
        spiff_id=str(uuid.uuid4()),
        name=title.lower().replace(" ", "_")[:40],
        title=title,
        role=role,
        state="completed" if completed else "open",
        created_at=created,
        due_at=due,
        completed_at=completed,
        four_eyes=list(four_eyes),
        case_type_key=case.case_type.key,
        assignee=assignee,
    )
    db.session.add(row)
    return row


@pytest.fixture
def scenario(app):
    now = datetime.now(UTC)
    days = lambda n: now - timedelta(days=n)  # noqa: E731
    with app.app_context():
        research = "Research the dispute"
        a = add_case("dispute_resolution", created=days(5))
        add_task(a, research, created=days(5), due=days(2))  # overdue
        b = add_case("dispute_resolution", created=days(1))
        add_task(b, research, created=days(1), due=now + timedelta(days=5))
        c = add_case("dispute_resolution", created=days(3))
        add_task(
            c,
            "Approve the credit memo (credit manager)",
            created=days(3),
            four_eyes=["resolve_dispute"],
            role="credit_manager",
        )
        d = add_case("dispute_resolution", created=days(10), completed=days(4))
        add_task(d, research, created=days(10), due=days(6), completed=days(4))  # late
        e = add_case("dispute_resolution", created=days(3), completed=days(1))
        add_task(e, research, created=days(3), due=now, completed=days(1))  # in time
        add_case("dispute_resolution", created=days(230), completed=days(200))  # too old
        add_case("credit_application", created=days(2))  # waits for a timer or message
        h = add_case("credit_application", created=days(1))
        add_task(
            h,
            "Approve the credit limit (credit manager)",
            created=days(1),
            four_eyes=["specialist_review"],
            role="credit_manager",
            assignee=find_user("mgr"),
        )
        customer = Customer(number="C-88001", name="Dash Corp")
        today = date.today()
        db.session.add_all(
            [
                customer,
                Invoice(
                    customer=customer,
                    number="INV-D1",
                    invoice_date=today - timedelta(days=5),
                    due_date=today + timedelta(days=25),
                    amount=Decimal("100.00"),
                ),
                Invoice(
                    customer=customer,
                    number="INV-D2",
                    invoice_date=today - timedelta(days=75),
                    due_date=today - timedelta(days=45),
                    amount=Decimal("250.00"),
                ),
            ]
        )
        db.session.commit()
    return app


def by(rows, **match):
    found = [r for r in rows if all(r[k] == v for k, v in match.items())]
    assert len(found) == 1, (match, rows)
    return found[0]


def test_the_figures_of_a_small_scenario(scenario):
    data = web(scenario, "mgr").get("/dashboard/data.json").get_json()
    steps = data["open_by_step"]
    assert by(steps, case_type="dispute_resolution", step="Research the dispute")["open_cases"] == 2
    assert by(steps, step="Approve the credit memo (credit manager)")["open_cases"] == 1
    assert by(steps, step="Approve the credit limit (credit manager)")["open_cases"] == 1
    waiting = by(steps, case_type="credit_application", step="Waiting (timer or message)")
    assert waiting["open_cases"] == 1
    assert {r["case_type"]: r["open_cases"] for r in data["open_by_type"]} == {
        "dispute_resolution": 3,
        "credit_application": 2,
    }

    # Resolved in the last 90 days: 6 and 2 days; median 4, nearest-rank p90 6.
    resolve = by(data["time_to_resolve"], case_type="dispute_resolution")
    assert (resolve["resolved"], resolve["median_days"], resolve["p90_days"]) == (2, 4.0, 6.0)
    assert [r["case_type"] for r in data["time_to_resolve"]] == ["dispute_resolution"]

    sla = by(data["sla"], case_type="dispute_resolution")
    assert (sla["open_overdue"], sla["completed_late"], sla["completed_on_time"]) == (1, 1, 1)

    approvals = {r["approver"]: r["waiting"] for r in data["approvals"]}
    assert approvals == {"Credit Manager queue (unclaimed)": 1, "Mgr": 1}

    aging = data["aging"]
    assert aging["totals"]["current"] == "100.00" and aging["totals"]["31-60"] == "250.00"
    assert aging["total"] == "350.00"


def test_a_longer_look_back_counts_older_resolutions(scenario):
    data = web(scenario, "ctrl").get("/dashboard/data.json?days=365").get_json()
    assert by(data["time_to_resolve"], case_type="dispute_resolution")["resolved"] == 3


def test_the_page_shows_each_chart_with_its_table(scenario):
    page = web(scenario, "owner").get("/dashboard")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for chart in ("open_by_step", "time_to_resolve", "sla", "approvals", "aging"):
        assert f'data-chart="{chart}"' in html
    assert 'data-source="/dashboard/data.json?days=90"' in html
    assert "/static/vendor/chart.js/chart.umd.js" in html and "/static/js/dashboard.js" in html
    assert '<td class="num">350.00</td>' not in html  # the total is in the footer
    assert "350.00" in html and "Credit Manager queue (unclaimed)" in html
    assert "<script>" not in html  # the CSP allows no inline script


@pytest.mark.parametrize("who", ["mgr", "ctrl", "owner", "admin"])
def test_managers_controllers_process_owners_and_admins_see_it(app, who):
    client = web(app, who)
    assert client.get("/dashboard").status_code == 200
    assert client.get("/dashboard/data.json").status_code == 200
    assert ">Dashboard</a>" in client.get("/").get_data(as_text=True)


@pytest.mark.parametrize("who", ["spec", "rep"])
def test_a_specialist_or_a_sales_rep_gets_403(app, who):
    client = web(app, who)
    assert client.get("/dashboard").status_code == 403
    assert client.get("/dashboard/data.json").status_code == 403
    assert ">Dashboard</a>" not in client.get("/").get_data(as_text=True)


@pytest.mark.parametrize("days", ["abc", "0", "99999", "-5", "1e3", "٣"])
def test_a_bad_look_back_is_an_error_not_a_500(app, days):
    client = web(app, "mgr")
    page = client.get(f"/dashboard?days={days}")
    assert page.status_code == 422
    assert "is not a number of days" in page.get_data(as_text=True)
    data = client.get(f"/dashboard/data.json?days={days}")
    assert data.status_code == 400 and "error" in data.get_json()


def test_an_empty_database_draws_empty_charts(app):
    data = web(app, "mgr").get("/dashboard/data.json").get_json()
    assert data["open_by_step"] == [] and data["approvals"] == [] and data["sla"] == []
    assert data["aging"]["total"] == "0.00"

"""Waiting on the customer: a reminder after 10 days, withdrawal after 30 (BPMN timers)."""

from __future__ import annotations

from datetime import timedelta

from casemgr.accounts import find_user
from casemgr.engine import cases as engine
from casemgr.engine import clock
from casemgr.extensions import db
from casemgr.models import Case
from tests.credit_data import INTAKE, review


def waiting_case():
    case = engine.start_case("credit_application", dict(INTAKE), find_user("rep"))
    task = [t for t in case.tasks if t.state == "open"][0]
    case = engine.complete_task(task.id, review(action="request_info"), find_user("spec"))
    return case


def open_names(case):
    return sorted(t.name for t in case.tasks if t.state == "open")


def run_cli(app, *args):
    result = app.test_cli_runner().invoke(args=["timers", "run", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_the_case_waits_with_its_next_wake_up_in_ten_days(ctx):
    case = waiting_case()
    assert open_names(case) == ["await_customer_info"]
    delta = case.next_wake_at - clock.now()
    assert timedelta(days=9, hours=23) < delta <= timedelta(days=10)
    task = [t for t in case.tasks if t.state == "open"][0]
    withdrawal = case.next_wake_at + timedelta(days=20)  # the interrupting 30-day timer
    assert abs(task.due_at - withdrawal) < timedelta(seconds=1)


def test_nothing_fires_before_it_is_due(ctx):
    case = waiting_case()
    output = run_cli(ctx, "--as-of", (clock.now() + timedelta(days=9)).isoformat())
    assert "advanced 0 case(s)" in output
    db.session.refresh(case)
    assert open_names(case) == ["await_customer_info"]


def test_after_ten_days_a_reminder_task_appears_and_the_wait_goes_on(ctx):
    case = waiting_case()
    output = run_cli(ctx, "--as-of", (clock.now() + timedelta(days=11)).isoformat())
    assert "advanced 1 case(s)" in output
    case = db.session.get(Case, case.id)
    db.session.refresh(case)
    assert open_names(case) == ["await_customer_info", "send_reminder"]
    assert "timer_fired" in [e.kind for e in case.events]
    # Running again at the same moment fires nothing twice.
    assert "advanced 0 case(s)" in run_cli(
        ctx, "--as-of", (clock.now() + timedelta(days=11)).isoformat()
    )


def test_after_thirty_days_the_application_is_withdrawn(ctx):
    case = waiting_case()
    run_cli(ctx, "--as-of", (clock.now() + timedelta(days=11)).isoformat())
    run_cli(ctx, "--as-of", (clock.now() + timedelta(days=31)).isoformat())
    case = db.session.get(Case, case.id)
    db.session.refresh(case)
    assert (case.status, case.outcome) == ("completed", "withdrawn")
    states = {t.name: t.state for t in case.tasks}
    assert states["await_customer_info"] == "cancelled"
    assert states["send_reminder"] == "cancelled"
    assert case.next_wake_at is None


def test_information_received_in_time_returns_the_case_to_review(ctx):
    case = waiting_case()
    task = [t for t in case.tasks if t.state == "open"][0]
    case = engine.complete_task(
        task.id, {"info_received": "financials attached"}, find_user("spec")
    )
    assert open_names(case) == ["specialist_review"]
    assert case.next_wake_at is None
    assert "advanced 0 case(s)" in run_cli(
        ctx, "--as-of", (clock.now() + timedelta(days=40)).isoformat()
    )


def test_a_bad_as_of_value_is_a_clear_error(ctx):
    result = ctx.test_cli_runner().invoke(args=["timers", "run", "--as-of", "next tuesday"])
    assert result.exit_code != 0 and "not an ISO date" in result.output

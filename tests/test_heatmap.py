"""The heat map: on each task of a version's diagram, how many cases wait there now and their
median wait, read from the task index alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from casemgr.accounts import find_user
from casemgr.engine import clock, drafts
from casemgr.engine.cases import complete_task, start_case
from casemgr.extensions import db
from tests.credit_data import INTAKE, review

ROOT = Path(__file__).resolve().parent.parent
CREDIT = (ROOT / "workflows" / "bpmn" / "credit_application.bpmn").read_text()
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def started(days_ago: float):
    with clock.as_of(NOW - timedelta(days=days_ago)):
        return start_case("credit_application", dict(INTAKE), find_user("rep"))


def reviewed(days_ago: float):
    case = started(days_ago + 1)
    task = next(t for t in case.tasks if t.state == "open")
    with clock.as_of(NOW - timedelta(days=days_ago)):
        return complete_task(task.id, review(), find_user("spec"))


def test_cases_waiting_at_each_task_with_the_median_wait(ctx):
    for days in (1, 2, 6):
        started(days)
    reviewed(3)
    heat = {h.element: h for h in drafts.heat_map("credit_application", now=NOW)}
    assert set(heat) == {"specialist_review", "manager_approval"}
    review_heat = heat["specialist_review"]
    assert (review_heat.waiting, review_heat.median_seconds, review_heat.oldest_seconds) == (
        3,
        2 * 86400,
        6 * 86400,
    )
    assert (heat["manager_approval"].waiting, heat["manager_approval"].median_seconds) == (
        1,
        3 * 86400,
    )
    assert review_heat.as_json() == {
        "element": "specialist_review",
        "title": "Review credit and recommend a limit",
        "waiting": 3,
        "median_wait_seconds": 172800,
        "oldest_wait_seconds": 518400,
    }


def test_one_version_or_all(ctx):
    started(1)
    drafts.publish_bpmn("credit_application", CREDIT.replace("Review credit", "Check credit"), None)
    db.session.commit()
    started(2)
    credit = drafts.case_type("credit_application")
    first, second = credit.versions
    assert [h.waiting for h in drafts.heat_map("credit_application", first, now=NOW)] == [1]
    assert [h.waiting for h in drafts.heat_map("credit_application", second, now=NOW)] == [1]
    assert [h.waiting for h in drafts.heat_map("credit_application", now=NOW)] == [2]


def test_the_heat_map_page_and_api(api, app):
    with app.app_context():
        started(1)
        started(3)
    body = api.as_("owner").get("/api/v1/case-types/credit_application/heatmap").get_json()
    assert body["version"] is None
    assert [(e["element"], e["waiting"]) for e in body["elements"]] == [("specialist_review", 2)]
    assert (
        api.as_("owner").get("/api/v1/case-types/credit_application/heatmap?version=9").status_code
        == 404
    )
    assert api.as_("spec").get("/api/v1/case-types/credit_application/heatmap").status_code == 403
    web = app.test_client()
    web.post("/login", data={"username": "owner", "password": "correct-horse-1"})
    page = web.get("/processes/credit_application/heatmap").get_data(as_text=True)
    assert 'data-element="specialist_review"' in page
    assert '"element": "specialist_review"' in page  # the data the diagram script draws
    assert "/processes/credit_application/versions/1.bpmn" in page

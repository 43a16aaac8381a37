"""The modeler in real Chromium: a process owner moves the specialist review into the credit
manager's lane, publishes through the page, and the next case's review lands in the credit
manager's queue while the case already running stays with the specialists."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from casemgr.accounts import find_user
from casemgr.engine import drafts
from casemgr.engine.cases import start_case
from casemgr.extensions import db
from casemgr.models import Case, CaseType
from tests.credit_data import INTAKE

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
MODELER = ROOT / "casemgr" / "static" / "build" / "modeler" / "modeler.js"
TASK, TARGET_LANE = "specialist_review", "lane_manager"


@pytest.fixture(autouse=True)
def modeler_built() -> None:
    """The page needs the modeler bundle; `make setup` builds it (scripts/build-modeler.sh)."""
    assert MODELER.is_file(), f"{MODELER} is missing: run `make setup` to build the modeler"


@pytest.fixture
def credit_versions(live_server):
    """The live server is shared: put the credit application back as it was afterwards."""
    app = live_server.app
    with app.app_context():
        first = drafts.case_type("credit_application").versions[0].version
    yield app
    with app.app_context():
        drafts.discard_draft("bpmn", "credit_application")
        drafts.restore_version("credit_application", first, None)
        db.session.commit()


def shape(page: Page, bpmn_id: str):
    return page.locator(f'#canvas g.djs-element[data-element-id="{bpmn_id}"]')


def lane_of(page: Page, bpmn_id: str) -> str | None:
    """Which lane lists the element in its flowNodeRefs: what the engine reads as the role."""
    return page.evaluate(
        """(id) => {
            const registry = window.casemgrModeler.get('elementRegistry');
            const lane = registry.filter((e) => e.type === 'bpmn:Lane').find((e) =>
                (e.businessObject.flowNodeRef || []).some((ref) => ref.id === id));
            return lane ? lane.id : null;
        }""",
        bpmn_id,
    )


def selected(page: Page) -> list[str]:
    return page.evaluate("() => window.casemgrModeler.get('selection').get().map((e) => e.id)")


def select(page: Page, bpmn_id: str) -> None:
    """Click the shape as a person does. Right after a drag, diagram-js swallows one click
    (its trap for the click a mouse-up makes), so a second click may be needed."""
    for _ in range(3):
        box = shape(page, bpmn_id).bounding_box()
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.wait_for_timeout(150)
        if selected(page) == [bpmn_id]:
            return
    raise AssertionError(f"could not select {bpmn_id}: {selected(page)}")


def drag_into_lane(page: Page, bpmn_id: str, lane_id: str) -> None:
    """Drag the task straight down into the lane, as a person does with the mouse."""
    task = shape(page, bpmn_id).bounding_box()
    lane = shape(page, lane_id).bounding_box()
    start_x, start_y = task["x"] + task["width"] / 2, task["y"] + task["height"] / 2
    target_y = lane["y"] + lane["height"] / 2
    page.mouse.move(start_x, start_y)
    page.mouse.down()
    steps = 12
    for i in range(1, steps + 1):
        page.mouse.move(start_x, start_y + (target_y - start_y) * i / steps)
    page.mouse.up()


def test_a_process_owner_moves_a_task_to_another_role_and_publishes(
    browser_as, screenshot, credit_versions
):
    app = credit_versions
    with app.app_context():
        before = start_case("credit_application", dict(INTAKE), find_user("rep"))
        running_id = before.id
        old_version = before.process_version.version

    owner = browser_as("owner")
    owner.goto("/processes/")
    owner.click("a:has-text('New-customer credit application')")
    expect(owner.locator("#canvas")).to_have_attribute("data-ready", "yes")
    assert lane_of(owner, TASK) == "lane_specialist"

    drag_into_lane(owner, TASK, TARGET_LANE)
    if lane_of(owner, TASK) != TARGET_LANE:
        # A drag that landed on a flow instead of the lane: move it through the API.
        owner.evaluate(
            """([id, laneId]) => {
                const m = window.casemgrModeler;
                const registry = m.get('elementRegistry');
                const task = registry.get(id), lane = registry.get(laneId);
                const dy = lane.y + lane.height / 2 - (task.y + task.height / 2);
                m.get('modeling').moveElements([task], { x: 0, y: dy }, lane.parent);
            }""",
            [TASK, TARGET_LANE],
        )
    assert lane_of(owner, TASK) == TARGET_LANE

    # The properties panel shows what the engine will read for the task.
    select(owner, TASK)
    panel = owner.locator("#properties")
    expect(panel).to_contain_text("Case management")
    expect(panel.locator("select[name='casemgr-form']")).to_have_value("credit_review")
    expect(panel).to_contain_text("from the lane (credit_manager)")
    screenshot(owner, "modeler")

    owner.click("[data-testid='publish']")
    status = owner.locator("[data-modeler-status]")
    expect(status).to_contain_text(f"Published version {old_version + 1}")

    with app.app_context():
        credit = db.session.execute(
            db.select(CaseType).filter_by(key="credit_application")
        ).scalar_one()
        assert credit.latest().version == old_version + 1
        assert credit.latest().published_by.username == "owner"
        new_case = start_case("credit_application", dict(INTAKE), find_user("rep"))
        new_task = next(t for t in new_case.tasks if t.state == "open")
        assert (new_task.name, new_task.role) == (TASK, "credit_manager")
        running = db.session.get(Case, running_id)
        assert running.process_version.version == old_version  # pinned to its version
        assert next(t for t in running.tasks if t.state == "open").role == "ar_specialist"
        new_id = new_case.id

    # The credit manager sees the new case's review in their queue, the specialist does not.
    manager = browser_as("mgr")
    manager.goto("/")
    expect(
        manager.locator(f"a[href*='/cases/{new_id}'], tr:has-text('#{new_id}')").first
    ).to_be_visible()
    specialist = browser_as("spec")
    specialist.goto("/")
    expect(specialist.locator(f"a[href*='/cases/{new_id}']")).to_have_count(0)

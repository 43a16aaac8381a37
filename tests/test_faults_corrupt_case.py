"""A corrupted workflow blob breaks only its own case, and flags it for an admin."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from casemgr.accounts import find_user
from casemgr.engine import cases as engine
from casemgr.engine import clock
from casemgr.engine.errors import CorruptCaseState
from casemgr.engine.timers import drain_due_timers, retry_broken_case
from casemgr.extensions import db
from casemgr.models import Case, CaseEvent, TaskRecord
from tests.conftest import PASSWORD
from tests.credit_data import INTAKE, review


def _not_json(blob: str) -> str:
    return blob[: len(blob) // 2]


def _wrong_shape(_blob: str) -> str:
    return json.dumps({"tasks": [1, 2, 3], "spec": "credit_application"})


def _unknown_spec(blob: str) -> str:
    """Valid JSON of the right shape whose tasks name a spec the diagram does not have."""
    state = json.loads(blob)
    for task in state["tasks"].values():
        task["task_spec"] = "no_such_step"
    return json.dumps(state)


def _no_tree(blob: str) -> str:
    state = json.loads(blob)
    state["root"] = "00000000-0000-0000-0000-000000000000"
    return json.dumps(state)


def _unknown_process(blob: str) -> str:
    """The state names a process its version does not define (specs are stored by name)."""
    state = json.loads(blob)
    state["spec"]["pinned"] = "no_such_process"
    return json.dumps(state)


DAMAGE = {
    "not json": _not_json,
    "wrong shape": _wrong_shape,
    "unknown spec": _unknown_spec,
    "no task tree": _no_tree,
    "unknown process": _unknown_process,
}


def _start(app) -> tuple[int, int]:
    """A credit application with its review task open: (case id, task id)."""
    with app.app_context():
        case = engine.start_case("credit_application", dict(INTAKE), find_user("rep"))
        task = next(t for t in case.tasks if t.state == "open")
        return case.id, task.id


def _damage(app, case_id: int, how) -> int:
    """Overwrite the stored workflow the way a bad disk or a bad hand would; the version."""
    with app.app_context():
        case = db.session.get(Case, case_id)
        case.workflow_json = how(case.workflow_json)
        db.session.commit()
        return case.version


def _login(app, name: str):
    client = app.test_client()
    response = client.post("/login", data={"username": name, "password": PASSWORD})
    assert response.status_code in (302, 303)
    return client


@pytest.mark.parametrize("how", list(DAMAGE.values()), ids=list(DAMAGE))
def test_completing_a_task_of_a_damaged_case_is_a_409_and_flags_it(api, how):
    app = api.app
    bad_case, bad_task = _start(app)
    good_case, good_task = _start(app)
    _damage(app, bad_case, how)

    response = api.as_("spec").post(f"/api/v1/tasks/{bad_task}/complete", json={"data": review()})
    assert response.status_code == 409
    assert response.get_json()["error"] == CorruptCaseState.USER_MESSAGE

    with app.app_context():
        case = db.session.get(Case, bad_case)
        assert CorruptCaseState.is_flag(case.broken)
        task = db.session.get(TaskRecord, bad_task)
        assert task.state == "open" and task.completed_by_id is None  # nothing half-applied
        kinds = [e.kind for e in case.events]
        assert "task_completed" not in kinds and kinds.count("error") == 1

    # Asking again is the same clear answer, and flags nothing twice.
    again = api.as_("spec").post(f"/api/v1/tasks/{bad_task}/complete", json={"data": review()})
    assert again.status_code == 409
    with app.app_context():
        errors = db.session.execute(
            db.select(db.func.count(CaseEvent.id)).filter_by(case_id=bad_case, kind="error")
        ).scalar()
        assert errors == 1

    # Every other case goes on as before.
    done = api.as_("spec").post(f"/api/v1/tasks/{good_task}/complete", json={"data": review()})
    assert done.status_code == 200
    assert api.as_("spec").get("/api/v1/tasks").status_code == 200


def test_claiming_a_task_of_a_damaged_case_is_refused_too(api):
    bad_case, bad_task = _start(api.app)
    version = _damage(api.app, bad_case, _not_json)
    response = api.as_("spec").post(f"/api/v1/tasks/{bad_task}/claim")
    assert response.status_code == 409
    assert "damaged" in response.get_json()["error"]
    with api.app.app_context():
        task = db.session.get(TaskRecord, bad_task)
        assert task.assignee_id is None
        case = db.session.get(Case, bad_case)
        assert CorruptCaseState.is_flag(case.broken) and case.version == version + 1


def test_claiming_on_the_web_says_so_in_plain_words(app):
    bad_case, bad_task = _start(app)
    _damage(app, bad_case, _unknown_spec)
    spec = _login(app, "spec")
    response = spec.post(f"/tasks/{bad_task}/claim", follow_redirects=True)
    assert response.status_code == 200
    assert "stored state is damaged; an administrator has been alerted" in response.get_data(
        as_text=True
    )
    with app.app_context():
        assert db.session.get(TaskRecord, bad_task).assignee_id is None


def test_the_case_page_still_renders_without_the_diagram_marks(app):
    bad_case, _task = _start(app)
    _damage(app, bad_case, _not_json)
    rep = _login(app, "rep")
    assert rep.get(f"/cases/{bad_case}").status_code == 200  # damaged, not yet flagged
    with app.app_context(), pytest.raises(CorruptCaseState):  # the first to act flags it
        engine._refuse_damaged(db.session.get(Case, bad_case))
    response = rep.get(f"/cases/{bad_case}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "This case needs attention" in page and "stored state is damaged" in page


def test_the_admin_sees_the_damaged_case_and_the_reason(app):
    bad_case, bad_task = _start(app)
    _damage(app, bad_case, _wrong_shape)
    spec = _login(app, "spec")
    spec.post(f"/tasks/{bad_task}/claim")
    page = _login(app, "admin").get("/admin/background").get_data(as_text=True)
    assert f'href="/cases/{bad_case}"' in page
    assert "stored state is damaged" in page and "Stored state damaged" in page


def _waiting_for_customer(app) -> int:
    """A case whose 10-day reminder timer is set."""
    with app.app_context():
        case = engine.start_case("credit_application", dict(INTAKE), find_user("rep"))
        task = next(t for t in case.tasks if t.state == "open")
        case = engine.complete_task(task.id, review(action="request_info"), find_user("spec"))
        assert case.next_wake_at is not None
        return case.id


def test_the_timer_drain_skips_a_damaged_case_and_wakes_the_others(app):
    first = _waiting_for_customer(app)
    bad = _waiting_for_customer(app)
    last = _waiting_for_customer(app)
    _damage(app, bad, _not_json)
    with app.app_context():
        result = drain_due_timers(clock.now() + timedelta(days=11))
        assert result.advanced == 2
        for case_id in (first, last):
            case = db.session.get(Case, case_id)
            assert "send_reminder" in [t.name for t in case.tasks if t.state == "open"]
        damaged = db.session.get(Case, bad)
        assert CorruptCaseState.is_flag(damaged.broken)
        assert "send_reminder" not in [t.name for t in damaged.tasks]
        # The next tick does not even look at it; an admin's retry re-flags it while damaged.
        assert drain_due_timers(clock.now() + timedelta(days=11)).examined == 0
        assert retry_broken_case(bad, "admin")
        assert drain_due_timers(clock.now() + timedelta(days=11)).advanced == 0
        db.session.refresh(damaged)
        assert CorruptCaseState.is_flag(damaged.broken)


def test_a_migration_skips_a_damaged_case_and_says_why(ctx):
    from pathlib import Path

    from casemgr.engine.drafts import check_migration
    from casemgr.engine.processes import publish

    good_case, _ = _start(ctx)
    bad_case, _ = _start(ctx)
    _damage(ctx, bad_case, _unknown_spec)
    bpmn = Path(ctx.config["WORKFLOWS_DIR"], "bpmn", "credit_application.bpmn").read_text()
    target, errors = publish("credit_application", bpmn, None)
    assert not errors
    assert check_migration(db.session.get(Case, good_case), target).safe
    check = check_migration(db.session.get(Case, bad_case), target)
    assert not check.safe and "stored state is damaged: " in check.reason


def test_a_payment_goes_through_when_a_damaged_case_awaits_it_too(api):
    """Two referrals wait for payment; one's state is damaged. Paying both customers in full
    posts both payments, ends the sound case, and flags the damaged one instead of failing."""
    from tests.test_case_collection_referral import DEMAND, SMALL, add_customer, today

    app = api.app
    waiting = {}
    with app.app_context():
        for number in ("C-300", "C-301"):
            invoices = tuple((f"{number}-{n}", amount, days) for n, amount, days in SMALL)
            add_customer(invoices, number=number)
            case = engine.start_case(
                "collection_referral",
                {"customer_number": number, "trigger": "over_90_days"},
                find_user("spec"),
            )
            task = next(t for t in case.tasks if t.state == "open")
            demand = dict(DEMAND, letter_sent_on=today().isoformat())
            case = engine.complete_task(task.id, demand, find_user("spec"))
            assert case.awaiting == ",payment_received,"
            waiting[number] = case.id
    _damage(app, waiting["C-300"], _unknown_spec)

    for number in ("C-300", "C-301"):
        paid = api.as_("ctrl").post(
            "/api/v1/payments",
            json={"customer_number": number, "amount": "4000.00", "method": "check"},
        )
        assert paid.status_code == 201, paid.get_json()
        assert paid.get_json()["cleared"] is True
    assert paid.get_json()["cases_ended"] == [waiting["C-301"]]

    with app.app_context():
        damaged = db.session.get(Case, waiting["C-300"])
        assert CorruptCaseState.is_flag(damaged.broken) and damaged.status == "open"
        assert db.session.get(Case, waiting["C-301"]).status == "completed"

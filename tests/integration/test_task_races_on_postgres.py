"""Two people acting on one task at the same moment (PostgreSQL, READ COMMITTED).

bench/load.py found this: a claim answered 200, and the same person's completion right after
was refused "this task is claimed by" someone else. The second request had read the task row
before the first claim committed and the case row after it, so the case's version check
passed and the second claim silently took the task over. Each test makes that interleaving
happen on purpose: the second request reads the task row, the first one commits, the second
one goes on.
"""

from __future__ import annotations

import threading

import pytest

from casemgr.accounts import create_user, find_user
from casemgr.engine import cases as engine
from casemgr.engine.errors import Conflict
from casemgr.extensions import db
from casemgr.models import TaskRecord
from tests.conftest import PASSWORD
from tests.credit_data import INTAKE, review
from tests.integration.servers import pg_app


@pytest.fixture
def race(pg_url):
    """(app, task id of an unclaimed specialist review, run(second_action))."""
    app = pg_app(pg_url)
    with app.app_context():
        case = engine.start_case("credit_application", dict(INTAKE), find_user("rep"))
        task_id = next(t.id for t in case.tasks if t.state == "open")
        db.session.remove()

    def run(second) -> str:
        """spec2 reads the task, spec claims it and commits, then spec2 runs ``second``."""
        has_read, first_done = threading.Event(), threading.Event()
        outcome: list[str] = []

        def second_person():
            with app.app_context():
                try:
                    # The request has read the task row (kept: the session holds it weakly).
                    seen = db.session.get(TaskRecord, task_id)
                    assert seen.assignee_id is None
                    has_read.set()
                    first_done.wait(30)
                    second(task_id, find_user("spec2"))
                    outcome.append("done")
                except Conflict as exc:
                    outcome.append(f"409 {exc.message}")
                except Exception as exc:  # noqa: BLE001 - reported below
                    outcome.append(f"failed {exc!r}")
                finally:
                    db.session.remove()

        thread = threading.Thread(target=second_person)
        thread.start()
        assert has_read.wait(30)
        with app.app_context():
            engine.claim_task(task_id, find_user("spec"))
            db.session.remove()
        first_done.set()
        thread.join(60)
        return outcome[0]

    yield app, task_id, run
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def test_many_managers_claiming_one_approval_at_once_leave_one_holder(pg_url):
    """No staging here: real concurrent claims, as the load test makes them. Before the fix
    about half of such rounds had two or three winners."""
    app = pg_app(pg_url)
    people = [f"claimer{i}" for i in range(6)]
    with app.app_context():
        for name in people:
            create_user(name, ["credit_manager"], PASSWORD)
        db.session.commit()
    for _ in range(8):
        with app.app_context():
            case = engine.start_case("credit_application", dict(INTAKE), find_user("rep"))
            review_id = next(t.id for t in case.tasks if t.state == "open")
            case = engine.complete_task(review_id, review(), find_user("spec"))
            task_id = next(t.id for t in case.tasks if t.state == "open")
            db.session.remove()
        start = threading.Barrier(len(people), timeout=30)
        winners: list[str] = []
        others: list[str] = []

        def claim(name: str) -> None:
            with app.app_context():
                who = find_user(name)
                start.wait()
                try:
                    engine.claim_task(task_id, who)
                    winners.append(name)
                except Conflict:
                    pass
                except Exception as exc:  # noqa: BLE001 - reported below
                    others.append(repr(exc))
                finally:
                    db.session.remove()

        threads = [threading.Thread(target=claim, args=(name,)) for name in people]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert others == []
        assert len(winners) == 1, winners
        assert holder(app, task_id) == (winners[0], "open")
    with app.app_context():
        db.engine.dispose()


def holder(app, task_id: int) -> tuple[str | None, str]:
    with app.app_context():
        row = db.session.get(TaskRecord, task_id)
        return (row.assignee.username if row.assignee else None), row.state


def test_a_claim_that_read_the_task_before_another_claim_committed_is_refused(race):
    app, task_id, run = race
    assert run(engine.claim_task).startswith("409 this task is claimed by")
    assert holder(app, task_id) == ("spec", "open")


def test_a_completion_that_read_the_task_before_a_claim_committed_is_refused(race):
    app, task_id, run = race
    outcome = run(lambda tid, who: engine.complete_task(tid, review(), who))
    assert outcome.startswith("409 this task is claimed by")
    assert holder(app, task_id) == ("spec", "open")


def test_a_follow_up_set_from_a_stale_read_does_not_take_the_task_over(race):
    """Setting a follow-up claims a queue task first: it must meet the claim's rule."""
    from datetime import timedelta

    from casemgr.engine import clock, worklist

    app, task_id, run = race
    later = clock.now() + timedelta(days=2)
    outcome = run(lambda tid, who: worklist.set_follow_up(tid, later, who))
    assert outcome.startswith("409 this task is claimed by")
    assert holder(app, task_id) == ("spec", "open")


def test_a_delegation_from_a_stale_read_does_not_take_the_task_over(race):
    from casemgr.engine import worklist

    app, task_id, run = race
    outcome = run(lambda tid, who: worklist.delegate(tid, "dual", who))
    # The fresh read shows the task is spec's: only its assignee (or a manager) may hand it on.
    assert "only the assignee, a credit manager or an admin may delegate" in outcome
    assert holder(app, task_id) == ("spec", "open")

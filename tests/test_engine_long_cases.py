"""Long-running cases and racing people: the properties a case system must not lose."""

from __future__ import annotations

import threading
from pathlib import Path

from casemgr.accounts import find_user
from casemgr.engine import cases as engine
from casemgr.engine.errors import Conflict
from casemgr.engine.processes import publish
from casemgr.extensions import db
from casemgr.models import Case, CaseEvent, TaskRecord

LOOP = (Path(__file__).parent / "bpmn" / "loop.bpmn").read_text()


def test_a_user_task_looped_1000_times_ends_at_its_end_event_with_every_round_recorded(ctx):
    version, errors = publish("loop_test", LOOP, None)
    assert not errors
    spec = find_user("spec")
    case = engine.start_case("loop_test", {"count": 0, "rounds": 1000}, spec)
    sizes = []
    for _ in range(1000):
        task = db.session.execute(
            db.select(TaskRecord).filter_by(case_id=case.id, state="open")
        ).scalar_one()
        case = engine.complete_task(task.id, {}, spec)
        sizes.append(len(case.workflow_json))
    assert case.status == "completed"
    assert case.data["outcome"] == "looped" and case.data["count"] == 1000
    completed = db.session.execute(
        db.select(db.func.count(CaseEvent.id)).filter_by(case_id=case.id, kind="task_completed")
    ).scalar()
    assert completed == 1000
    assert max(sizes[:-1]) < 1.2 * sizes[4]  # the stored state does not grow with history


def test_two_people_completing_one_task_at_once_exactly_one_wins(app):
    with app.app_context():
        from tests.credit_data import INTAKE, review

        case = engine.start_case("credit_application", dict(INTAKE), find_user("rep"))
        task_id = case.tasks[0].id
        case_id = case.id
    barrier = threading.Barrier(2)
    results: list[str] = []

    def work(who: str) -> None:
        with app.app_context():
            user = find_user(who)
            barrier.wait()
            try:
                engine.complete_task(task_id, review(), user)
                results.append("won")
            except Conflict as exc:
                results.append(f"conflict: {exc.message}")
            finally:
                db.session.remove()

    threads = [threading.Thread(target=work, args=(w,)) for w in ("spec", "spec2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.split(":")[0] for r in results) == ["conflict", "won"]
    with app.app_context():
        case = db.session.get(Case, case_id)
        assert [t.name for t in case.tasks if t.state == "open"] == ["manager_approval"]
        done = [e for e in case.events if e.kind == "task_completed"]
        assert len(done) == 1

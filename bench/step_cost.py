"""Step cost against history: a looping user task completed at iterations 5, 50 and 500.

Three figures per iteration, all measured in this run:
- raw: SpiffWorkflow alone, parse-free: deserialize, complete the task, run, serialize
  (the library's own serializer, whole spec included, and no compaction: what the library
  does by itself);
- engine: casemgr's engine step (load, complete, run, compact, index, events, commit);
- api: the same step through the HTTP API (Flask's WSGI stack in-process, with auth and JSON).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from SpiffWorkflow import TaskState

from bench.raw import library_load
from casemgr import create_app
from casemgr.accounts import create_user, issue_token
from casemgr.engine import cases as engine
from casemgr.engine.processes import publish
from casemgr.engine.serialization import serializer
from casemgr.engine.specs import parse_process
from casemgr.engine.workflows import new_workflow
from casemgr.extensions import db
from casemgr.models import TaskRecord, User
from casemgr.setup import init_database

LOOP = (Path(__file__).resolve().parent.parent / "tests" / "bpmn" / "loop.bpmn").read_text()
MARKS = (5, 50, 500)
REPEAT = 15  # samples per case and mark, each of engine and API
CASES = 3  # cases walked through the marks: 45 samples behind each median
RAW_SECONDS = 0.5  # the raw step is repeated for at least this long at each mark


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def _deep_iterator():
    """Let the raw library reach iteration 500: its iterator stops at depth 1000 by default
    (ARCHITECTURE.md), so without this the raw loop silently "completes" near 333."""
    from SpiffWorkflow.bpmn.util.task import BpmnTaskIterator
    from SpiffWorkflow.util.task import TaskIterator

    for cls in (TaskIterator, BpmnTaskIterator):
        defaults = list(cls.__init__.__defaults__)
        defaults[1] = 1_000_000  # (end_at_spec, max_depth, ...)
        cls.__init__.__defaults__ = tuple(defaults)


def raw_costs(app) -> dict[int, float]:
    """The library alone: each sample restarts from the state saved at that iteration."""
    _deep_iterator()
    with app.app_context():
        wf = new_workflow(parse_process(LOOP), {"count": 0, "rounds": 10_000})
        wf.do_engine_steps()
        saved: dict[int, str] = {}
        for i in range(1, max(MARKS) + 1):
            if i in MARKS:
                saved[i] = serializer.serialize_json(wf)
            task = wf.get_tasks(state=TaskState.READY, manual=True)[0]
            task.run()
            wf.do_engine_steps()
        costs = {}
        for mark, text in saved.items():
            samples: list[float] = []
            began = time.perf_counter()
            while len(samples) < REPEAT * CASES or time.perf_counter() - began < RAW_SECONDS:
                start = time.perf_counter()
                w = library_load(text)
                w.get_tasks(state=TaskState.READY, manual=True)[0].run()
                w.do_engine_steps()
                serializer.serialize_json(w)
                samples.append(time.perf_counter() - start)
            costs[mark] = _median_ms(samples)
        return costs


def product_costs(app, token: str) -> tuple[dict[int, float], dict[int, float]]:
    """Engine and API step costs, alternating so both see the same history lengths."""
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    engine_costs: dict[int, list[float]] = {m: [] for m in MARKS}
    api_costs: dict[int, list[float]] = {m: [] for m in MARKS}
    with app.app_context():
        user = db.session.execute(db.select(User).filter_by(username="bench")).scalar_one()
        for _ in range(CASES):
            case = engine.start_case("loop_bench", {"count": 0, "rounds": 10_000}, user)
            _walk(case.id, user, client, headers, engine_costs, api_costs)
    return (
        {m: _median_ms(v) for m, v in engine_costs.items()},
        {m: _median_ms(v) for m, v in api_costs.items()},
    )


def _walk(case_id, user, client, headers, engine_costs, api_costs) -> None:
    """One case through every mark; each step near a mark is timed, by turns as an engine
    call and through the API."""
    done = 0
    while done < max(MARKS) + 2 * REPEAT:
        near = [m for m in MARKS if m <= done < m + 2 * REPEAT]
        task_id = db.session.execute(
            db.select(TaskRecord.id).filter_by(case_id=case_id, state="open")
        ).scalar_one()
        start = time.perf_counter()
        if near and done % 2:
            response = client.post(
                f"/api/v1/tasks/{task_id}/complete", json={"data": {}}, headers=headers
            )
            assert response.status_code == 200, response.get_json()
            api_costs[near[0]].append(time.perf_counter() - start)
        else:
            engine.complete_task(task_id, {}, user)
            if near:
                engine_costs[near[0]].append(time.perf_counter() - start)
        db.session.expire_all()
        done += 1


def main() -> None:
    folder = Path(tempfile.mkdtemp())
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder / 'bench.db'}",
            "SECRET_KEY": "bench",
            "WTF_CSRF_ENABLED": False,
        }
    )
    with app.app_context():
        init_database()
        user = create_user("bench", ["ar_specialist"], "bench-password")
        publish("loop_bench", LOOP, None)
        token = issue_token(user)
        db.session.commit()
    raw = raw_costs(app)
    eng, api = product_costs(app, token)
    samples = REPEAT * CASES
    print(f"Step cost vs history (median ms of {samples} steps each; SQLite file; one process)")
    print(
        f"{'iteration':>10} {'raw':>8} {'engine':>8} {'api':>8} {'engine/raw':>11} {'api/raw':>8}"
    )
    for mark in MARKS:
        print(
            f"{mark:>10} {raw[mark]:>8.2f} {eng[mark]:>8.2f} {api[mark]:>8.2f} "
            f"{eng[mark] / raw[mark]:>11.2f} {api[mark] / raw[mark]:>8.2f}"
        )
    print(
        f"api flatness: iteration {MARKS[-1]} / iteration {MARKS[0]} = "
        f"{api[MARKS[-1]] / api[MARKS[0]]:.2f} (target <= 1.5)"
    )


if __name__ == "__main__":
    main()

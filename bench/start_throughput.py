"""Start throughput: credit applications started one after another through the HTTP API.

One process, one request at a time (Flask's WSGI stack in-process: bearer token, JSON in
and out, the engine's start transaction), on a SQLite file and, when a server is given
(``BENCH_POSTGRES_URL`` or ``TEST_POSTGRES_URL``), on PostgreSQL. Figures, measured in this
run on the same start data:
- raw: SpiffWorkflow alone, parse-free: a new workflow from the cached parsed spec, run to
  its first user task, serialized (no compaction, no database);
- engine: casemgr.engine.cases.start_case (validation, workflow, task index, events, commit);
- api: POST /api/v1/cases.

Run alone: ``python -m bench.start_throughput [--starts N]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from casemgr import create_app
from casemgr.accounts import create_user, find_user, issue_token
from casemgr.engine import cases as engine
from casemgr.engine.processes import parsed_for
from casemgr.engine.serialization import serializer
from casemgr.engine.step import StepContext, current_step
from casemgr.engine.workflows import new_workflow, ready_human_tasks
from casemgr.extensions import db
from casemgr.models import Case, CaseType
from tests import credit_data

STARTS = 300
CASE_TYPE = "credit_application"
# A complete intake: the case goes straight to the specialist queue.
INTAKE = {**credit_data.INTAKE, "sales_rep": "spec"}


def _app(url: str):
    return create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench"})


def _prepare(app) -> str:
    from casemgr.setup import init_database

    with app.app_context():
        init_database()
        user = create_user("spec", ["ar_specialist"], "bench-password-1")
        token = issue_token(user)
        db.session.commit()
    return token


def _samples(fn, count: int) -> tuple[list[float], float]:
    """Each call's seconds and the wall time of them all (after a few warm-up calls)."""
    for _ in range(5):
        fn()
    samples = []
    began = time.perf_counter()
    for _ in range(count):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples, time.perf_counter() - began


def raw_start(app, count: int, username: str = "spec") -> tuple[list[float], float]:
    """The library alone on the same diagram and data (the start data as the engine keeps it)."""
    with app.app_context():
        case_type = db.session.execute(db.select(CaseType).filter_by(key=CASE_TYPE)).scalar_one()
        parsed = parsed_for(case_type.latest())
        data = {**engine._checked_start_data(parsed.start_form, dict(INTAKE))}
        # Service tasks before the first user task read the step context the engine sets.
        probe = Case(id=0, case_type=case_type, data={})
        token = current_step.set(StepContext(probe, find_user(username)))
        try:

            def run():
                wf = new_workflow(parsed, data)
                wf.do_engine_steps()
                assert ready_human_tasks(wf), "the case never reached a user task"
                serializer.serialize_json(wf)

            return _samples(run, count)
        finally:
            current_step.reset(token)
            db.session.rollback()


def engine_start(app, count: int) -> tuple[list[float], float]:
    with app.app_context():
        user = find_user("spec")

        def run():
            engine.start_case(CASE_TYPE, dict(INTAKE), user)

        return _samples(run, count)


def api_start(app, token: str, count: int) -> tuple[list[float], float]:
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    body = {"case_type": CASE_TYPE, "data": INTAKE}

    def run():
        response = client.post("/api/v1/cases", json=body, headers=headers)
        assert response.status_code == 201, response.get_json()

    return _samples(run, count)


def run_database(label: str, url: str, count: int) -> None:
    app = _app(url)
    token = _prepare(app)
    raw = raw_start(app, count)
    rows = [("raw SpiffWorkflow", raw), ("engine", engine_start(app, count))]
    rows.append(("api POST /cases", api_start(app, token, count)))
    raw_ms = statistics.median(raw[0]) * 1000
    print(f"\nStart throughput on {label} ({count} starts each, one at a time, one process)")
    print(f"{'path':>20} {'starts/s':>9} {'median ms':>10} {'p95 ms':>8} {'x raw':>7}")
    for name, (samples, wall) in rows:
        median = statistics.median(samples) * 1000
        p95 = sorted(samples)[int(len(samples) * 0.95)] * 1000
        print(
            f"{name:>20} {count / wall:>9.1f} {median:>10.2f} {p95:>8.2f} {median / raw_ms:>7.2f}"
        )
    with app.app_context():
        started = db.session.execute(db.select(db.func.count(Case.id))).scalar_one()
        db.session.remove()
        db.engine.dispose()
    assert started == 2 * (count + 5), f"{started} cases in the database"


def main(count: int = STARTS) -> None:
    from bench.timers import drop_database, recreate_database

    with tempfile.TemporaryDirectory(prefix="casemgr-bench-") as tmp:
        run_database("SQLite (file, WAL)", f"sqlite:///{Path(tmp) / 'bench.db'}", count)
    base = os.environ.get("BENCH_POSTGRES_URL") or os.environ.get("TEST_POSTGRES_URL")
    if not base:
        print("\nStart throughput on PostgreSQL\n  skipped: no PostgreSQL")
        return
    name = "casemgr_bench_start"
    try:
        run_database("PostgreSQL", recreate_database(base, name), count)
    finally:
        drop_database(base, name)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=STARTS, help="starts per figure")
    main(parser.parse_args().starts)

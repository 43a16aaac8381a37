"""Due timers under real Celery workers on PostgreSQL and Redis: exactly once, whatever runs.

Each test starts its own `celery worker` processes (and beat) with subprocess, on its own
database and Redis DB, bounds every wait, and stops every process it started.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from bench.timers import (
    celery_env,
    due_now,
    fired_per_case,
    flush_redis,
    make_due,
    reminders_per_case,
    seed_due_cases,
    send_tick,
    start_beat,
    start_worker,
    stop,
    tasks_succeeded,
    wait_ready,
)
from casemgr.engine.timers import PAUSE_ENV
from casemgr.extensions import db
from casemgr.models import Case, CaseEvent


@pytest.fixture
def procs():
    """Processes a test starts; all stopped (TERM, then KILL) when it ends, pass or fail."""
    started: list = []
    yield started
    stop(started)


@pytest.fixture
def broker(redis_url):
    flush_redis(redis_url)
    return redis_url


def wait_for(condition: Callable[[], bool], timeout: float, what: str, procs=()) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        for process in procs:
            assert process.poll() is None, f"{process.args} exited: {process.log.read_text()}"
        if time.monotonic() > deadline:
            logs = "\n".join(p.log.read_text(errors="replace")[-2000:] for p in procs)
            raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{logs}")
        time.sleep(0.1)


def beat_heartbeat() -> bool:
    found = db.session.execute(text("SELECT at FROM heartbeats WHERE name = 'beat'")).first()
    db.session.rollback()  # a fresh snapshot at the next look
    return found is not None


def assert_each_fired_once(ids: list[int]) -> None:
    fired = fired_per_case(ids)
    reminders = reminders_per_case(ids)
    assert {k: v for k, v in fired.items() if v != 1} == {}, "timer_fired not exactly once"
    assert {k: v for k, v in reminders.items() if v != 1} == {}, "reminder task not exactly once"
    errors = db.session.execute(
        db.select(db.func.count(CaseEvent.id)).where(CaseEvent.kind == "error")
    ).scalar_one()
    assert errors == 0
    db.session.rollback()


def test_two_workers_and_beat_racing_fire_each_due_timer_exactly_once(
    app, pg_url, broker, procs, tmp_path
):
    with app.app_context():
        ids = seed_due_cases(300, due=False)
        versions = dict(db.session.execute(db.select(Case.id, Case.version)).all())
        # Small batches: every tick fans out helpers, so both workers drain side by side.
        env = celery_env(pg_url, broker, CASEMGR_TIMER_BATCH="10")
        workers = [start_worker(f"w{i}", env, tmp_path) for i in range(2)]
        procs.extend(workers)
        wait_ready(workers)
        procs.append(start_beat(env, tmp_path))
        make_due(ids)
        for _ in range(6):  # extra ticks on top of beat's, all at once
            send_tick(broker)
        wait_for(lambda: due_now() == 0, 120, "every due case to move", procs)
        # The extra ticks may drain every case before beat sends its first: wait for it.
        wait_for(beat_heartbeat, 30, "beat's first tick", procs)
        assert_each_fired_once(ids)
        after = dict(db.session.execute(db.select(Case.id, Case.version)).all())
        assert all(after[i] == versions[i] + 1 for i in ids), "a case was stepped twice"
        stop(procs)
        per_worker = [sum(r["advanced"] for r in tasks_succeeded(w.log)) for w in workers]
        assert sum(per_worker) == len(ids)
        assert all(n > 0 for n in per_worker), f"both workers should have worked: {per_worker}"
        assert beat_heartbeat(), "beat recorded no tick"


def test_a_worker_killed_mid_step_loses_nothing_and_the_case_fires_once(
    app, pg_url, broker, procs, tmp_path
):
    pause = tmp_path / "pause"
    pause.mkdir()
    (pause / "hold").write_text("")
    with app.app_context():
        ids = seed_due_cases(3, due=False)
        before = dict(db.session.execute(db.select(Case.id, Case.version)).all())
        slow = start_worker("slow", celery_env(pg_url, broker, **{PAUSE_ENV: str(pause)}), tmp_path)
        procs.append(slow)
        wait_ready([slow])
        make_due(ids)
        send_tick(broker, fan_out=False)
        wait_for(lambda: any(pause.glob("*.started")), 60, "the step to reach its commit", procs)
        [marker] = list(pause.glob("*.started"))
        victim = int(marker.name.split(".")[0])

        # Mid-step: the step's writes are in the database, uncommitted, its row locked.
        assert fired_per_case([victim])[victim] == 0
        assert_row_locked(pg_url, victim)

        # A second worker meanwhile skips the locked case and wakes the others.
        fast = start_worker("fast", celery_env(pg_url, broker), tmp_path)
        procs.append(fast)
        wait_ready([fast])
        send_tick(broker, fan_out=False)
        others = [i for i in ids if i != victim]
        wait_for(lambda: all(fired_per_case(others).values()), 60, "the other cases", [fast])
        assert fired_per_case([victim])[victim] == 0

        os.kill(slow.pid, signal.SIGKILL)
        slow.wait(10)
        (pause / "hold").unlink()

        # The killed step rolled back with its connection: the next tick does it, once.
        send_tick(broker, fan_out=False)
        wait_for(lambda: due_now() == 0, 60, "the killed step to be redone", [fast])
        assert_each_fired_once(ids)
        after = dict(db.session.execute(db.select(Case.id, Case.version)).all())
        assert all(after[i] == before[i] + 1 for i in ids)
        assert db.session.get(Case, victim).broken is None


def assert_row_locked(url: str, case_id: int) -> None:
    """Another session cannot lock the case row: the paused step holds it."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn, pytest.raises(OperationalError, match="lock"):
            conn.execute(
                text("SELECT id FROM cases WHERE id = :id FOR UPDATE NOWAIT"), {"id": case_id}
            )
    finally:
        engine.dispose()


def test_a_burst_of_a_thousand_due_timers_is_drained_each_case_once(
    app, pg_url, broker, procs, tmp_path
):
    with app.app_context():
        ids = seed_due_cases(1000, due=False)
        env = celery_env(pg_url, broker)
        workers = [start_worker(f"w{i}", env, tmp_path) for i in range(2)]
        procs.extend(workers)
        wait_ready(workers)
        procs.append(start_beat(env, tmp_path))
        make_due(ids)
        started = time.monotonic()
        wait_for(lambda: due_now() == 0, 240, "a thousand due cases to move", procs)
        took = time.monotonic() - started
        assert_each_fired_once(ids)
        print(f"\n1,000 due timers drained by 2 workers in {took:.1f} s")


def test_the_claim_query_uses_the_due_timer_index_on_postgresql(app):
    from casemgr.engine import clock
    from casemgr.engine.timers import claim_next_due
    from tests.test_background import captured_sql

    with app.app_context():
        seed_due_cases(200)
        statement, params = captured_sql(lambda: claim_next_due(clock.now()))
        conn = db.session.connection()
        plan = "\n".join(r[0] for r in conn.exec_driver_sql("EXPLAIN " + statement, params))
        db.session.rollback()
    # An index in wake-up order, read until the first unlocked row: no scan, no sort.
    assert "Index Scan using ix_cases_" in plan, plan
    assert "Seq Scan" not in plan and "Sort" not in plan, plan
    assert "LockRows" in plan  # FOR UPDATE SKIP LOCKED


def test_migrations_give_the_models_schema_on_postgresql(app):
    from tests.test_migrations import schema_differences

    with app.app_context():
        assert schema_differences() == []


def test_the_admin_page_reads_the_redis_queue(app, broker, monkeypatch):
    from casemgr import celery_app
    from casemgr.background.status import background_state

    monkeypatch.setattr(celery_app.celery.conf, "broker_url", broker)
    for _ in range(3):
        send_tick(broker)
    with app.app_context():
        state = background_state()
    assert state.mode == "scale-out" and state.queue_length == 3


def test_the_health_endpoint_on_postgresql(app):
    response = app.test_client().get("/healthz")
    assert response.status_code == 200 and response.get_json()["database"] == "ok"

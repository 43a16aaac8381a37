"""Draining a burst of due timers on PostgreSQL with real Celery workers and beat.

10,000 cases (credit applications waiting on the customer, their 10-day reminder due) become
due at once; the figure is the time from that moment until no case is due, with 1, 2 and 4
`celery worker --pool solo` processes and `celery beat` ticking every second, each run
checked afterwards: every case fired exactly once. The per-case cost is given two ways:
wall time per case, and worker time per case (wall x workers / cases: what one case costs
one worker process, waiting on the database included). A single process draining in-line
(no Celery) gives the engine's own cost per case for comparison.

Needs PostgreSQL and Redis: ``BENCH_POSTGRES_URL``/``BENCH_REDIS_URL`` (or the ``TEST_*``
variables that .ci/run exports). The seeding and process helpers are shared with
tests/integration.
"""

from __future__ import annotations

import ast
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import suppress
from datetime import timedelta
from pathlib import Path

from sqlalchemy import create_engine, func, literal, select, text, update
from sqlalchemy.engine import make_url

from casemgr.engine import clock
from casemgr.extensions import db
from casemgr.models import Case, CaseEvent, TaskRecord

CASES = int(os.environ.get("BENCH_TIMER_CASES", "10000"))
WORKER_COUNTS = (1, 2, 4)
TICK_TASK = "casemgr.wake_due_timers"
READY = re.compile(r"@\S+ ready\.")


# --- seeding -----------------------------------------------------------------------------


def waiting_case(days_ago: int = 11) -> int:
    """One credit application waiting on the customer since ``days_ago`` (its reminder timer
    is due now when days_ago > 10), started and stepped by the engine as a person would."""
    from casemgr.accounts import find_user
    from casemgr.engine import cases as engine
    from tests.credit_data import INTAKE, review

    with clock.as_of(clock.now() - timedelta(days=days_ago)):
        case = engine.start_case("credit_application", dict(INTAKE), find_user("rep"))
        task = next(t for t in case.tasks if t.state == "open")
        case = engine.complete_task(task.id, review(action="request_info"), find_user("spec"))
        return case.id


def clone_case(case_id: int, copies: int) -> list[int]:
    """``copies`` more rows of one case and its task rows, in two INSERT … SELECTs: 10,000
    cases in about a second instead of minutes through the engine."""
    cases, tasks = Case.__table__, TaskRecord.__table__
    before = db.session.execute(select(func.max(cases.c.id))).scalar_one()
    series = select(literal(1).label("n")).cte("series", recursive=True)
    series = series.union_all(select(series.c.n + 1).where(series.c.n < copies))
    case_cols = [c for c in cases.columns if c.name != "id"]
    db.session.execute(
        cases.insert().from_select(
            [c.name for c in case_cols],
            select(*case_cols)
            .select_from(cases.join(series, literal(True)))
            .where(cases.c.id == case_id),
        )
    )
    new_ids = select(cases.c.id.label("new_id")).where(cases.c.id > before).subquery()
    task_cols = [c for c in tasks.columns if c.name not in ("id", "case_id")]
    db.session.execute(
        tasks.insert().from_select(
            ["case_id", *[c.name for c in task_cols]],
            select(new_ids.c.new_id, *task_cols)
            .select_from(tasks.join(new_ids, literal(True)))
            .where(tasks.c.case_id == case_id),
        )
    )
    db.session.commit()
    return list(db.session.execute(select(cases.c.id).where(cases.c.id > before)).scalars())


def seed_due_cases(count: int, due: bool = True) -> list[int]:
    """``count`` cases whose reminder timer is due; with ``due=False`` their index says
    tomorrow, so nothing fires until ``make_due`` (the workers can start first)."""
    first = waiting_case()
    ids = [first, *clone_case(first, count - 1)] if count > 1 else [first]
    if not due:
        push_wake_up(ids, timedelta(days=1))
    if db.engine.dialect.name == "postgresql":
        db.session.execute(text("ANALYZE cases"))
        db.session.commit()
    return ids


def push_wake_up(ids: list[int], delta: timedelta) -> None:
    moment = clock.now() + delta
    for start in range(0, len(ids), 5000):
        chunk = ids[start : start + 5000]
        db.session.execute(update(Case).where(Case.id.in_(chunk)).values(next_wake_at=moment))
    db.session.commit()


def make_due(ids: list[int]) -> None:
    push_wake_up(ids, timedelta(seconds=-1))


def due_now() -> int:
    from casemgr.engine.timers import due_count

    count = due_count()
    db.session.rollback()
    return count


def fired_per_case(ids: list[int]) -> dict[int, int]:
    """timer_fired events per case (each must be exactly 1)."""
    counts = dict.fromkeys(ids, 0)
    query = (
        select(CaseEvent.case_id, func.count())
        .where(CaseEvent.kind == "timer_fired")
        .group_by(CaseEvent.case_id)
    )
    for case_id, n in db.session.execute(query):
        if case_id in counts:
            counts[case_id] = n
    db.session.rollback()
    return counts


def reminders_per_case(ids: list[int]) -> dict[int, int]:
    counts = dict.fromkeys(ids, 0)
    query = (
        select(TaskRecord.case_id, func.count())
        .where(TaskRecord.name == "send_reminder")
        .group_by(TaskRecord.case_id)
    )
    for case_id, n in db.session.execute(query):
        if case_id in counts:
            counts[case_id] = n
    db.session.rollback()
    return counts


# --- databases ----------------------------------------------------------------------------


def database_url(base_url: str, name: str) -> str:
    return make_url(base_url).set(database=name).render_as_string(hide_password=False)


def recreate_database(base_url: str, name: str, template: str | None = None) -> str:
    """Drop and create database ``name`` on the server of ``base_url`` (from a template)."""
    admin = create_engine(database_url(base_url, "postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            suffix = f' TEMPLATE "{template}"' if template else ""
            conn.execute(text(f'CREATE DATABASE "{name}"{suffix}'))
    finally:
        admin.dispose()
    return database_url(base_url, name)


def drop_database(base_url: str, name: str) -> None:
    admin = create_engine(database_url(base_url, "postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def flush_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


# --- Celery processes ---------------------------------------------------------------------


def celery_env(database: str, broker: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database,
        CELERY_BROKER_URL=broker,
        CASEMGR_EMBEDDED_WORKER="0",
        CASEMGR_TIMER_TICK_SECONDS="1",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def start_process(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """A Celery command in its own process group, its output in ``log``."""
    with log.open("ab") as out:
        return subprocess.Popen(  # noqa: S603 - our interpreter, fixed arguments
            [sys.executable, "-m", "celery", "-A", "casemgr.celery_app", *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def start_worker(name: str, env: dict[str, str], folder: Path) -> subprocess.Popen:
    log = folder / f"{name}.log"
    args = ["worker", "--pool", "solo", "--hostname", f"{name}@%h", "--loglevel", "INFO"]
    args += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
    process = start_process(args, env, log)
    process.log = log  # type: ignore[attr-defined]
    return process


def start_beat(env: dict[str, str], folder: Path) -> subprocess.Popen:
    log = folder / "beat.log"
    args = ["beat", "--loglevel", "INFO", "--schedule", str(folder / "beat-schedule")]
    process = start_process(args, env, log)
    process.log = log  # type: ignore[attr-defined]
    return process


def log_text(process: subprocess.Popen) -> str:
    return process.log.read_text(errors="replace")  # type: ignore[attr-defined]


def wait_ready(processes: list[subprocess.Popen], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    for process in processes:
        while not READY.search(log_text(process)):
            if process.poll() is not None:
                raise RuntimeError(f"worker exited: {log_text(process)[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"worker not ready: {log_text(process)[-3000:]}")
            time.sleep(0.1)


def stop(processes: list[subprocess.Popen], timeout: float = 15.0) -> None:
    """TERM (a warm shutdown), then KILL whatever is left, for the whole process group."""
    for process in processes:
        if process.poll() is None:
            with _gone():
                os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for process in processes:
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with _gone():
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _gone():
    """Signalling a process that already exited is fine."""
    return suppress(ProcessLookupError)


def send_tick(broker: str, fan_out: bool = True) -> None:
    from celery import Celery

    sender = Celery("casemgr-bench", broker=broker)
    try:
        sender.send_task(TICK_TASK, kwargs={"fan_out": fan_out})
    finally:
        sender.close()


def tasks_succeeded(log: Path) -> list[dict]:
    """The drain results a worker logged ("Task … succeeded in …: {…}")."""
    found = []
    for line in log.read_text(errors="replace").splitlines():
        match = re.search(r"succeeded in [\d.]+s: (\{.*'advanced'.*\})", line)
        if match:
            found.append(ast.literal_eval(match.group(1)))
    return found


# --- the benchmark --------------------------------------------------------------------------


def _app(url: str):
    from casemgr import create_app

    return create_app({"SQLALCHEMY_DATABASE_URI": url})


def _template(base_url: str) -> str:
    """A database with the schema, the diagrams and two users, copied for each run."""
    from casemgr.accounts import create_user
    from casemgr.setup import init_database

    name = "casemgr_bench_template"
    url = recreate_database(base_url, name)
    app = _app(url)
    with app.app_context():
        init_database()
        create_user("rep", ["sales_rep"], "bench-password-1")
        create_user("spec", ["ar_specialist"], "bench-password-1")
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    return name


def inline_drain(base_url: str, template: str, cases: int) -> float:
    """Seconds per case for one process draining in-line: the engine's own cost."""
    from casemgr.engine.timers import drain_due_timers

    url = recreate_database(base_url, "casemgr_bench_timers", template)
    app = _app(url)
    with app.app_context():
        seed_due_cases(cases)
        started = time.perf_counter()
        result = drain_due_timers()
        took = time.perf_counter() - started
        assert result.advanced == cases, result
        db.session.remove()
        db.engine.dispose()
    return took / cases


def celery_drain(base_url: str, broker: str, template: str, workers: int, cases: int) -> float:
    """Seconds from "all due" to "none due" with ``workers`` worker processes and beat."""
    url = recreate_database(base_url, "casemgr_bench_timers", template)
    app = _app(url)
    flush_redis(broker)
    with tempfile.TemporaryDirectory(prefix="casemgr-bench-") as tmp, app.app_context():
        folder = Path(tmp)
        ids = seed_due_cases(cases, due=False)
        env = celery_env(url, broker)
        procs = [start_worker(f"w{i}", env, folder) for i in range(workers)]
        try:
            wait_ready(procs)
            procs.append(start_beat(env, folder))
            make_due(ids)
            started = time.perf_counter()
            send_tick(broker)
            while due_now():
                time.sleep(0.05)
            took = time.perf_counter() - started
        finally:
            stop(procs)
        fired = fired_per_case(ids)
        wrong = {k: v for k, v in fired.items() if v != 1}
        assert not wrong, f"{len(wrong)} case(s) did not fire exactly once"
        db.session.remove()
        db.engine.dispose()
    return took


def main() -> None:
    base = os.environ.get("BENCH_POSTGRES_URL") or os.environ.get("TEST_POSTGRES_URL")
    broker = os.environ.get("BENCH_REDIS_URL") or os.environ.get("TEST_REDIS_URL")
    print(f"\nDue timers drained on PostgreSQL ({CASES:,} cases due at once)")
    if not base or not broker:
        print("  skipped: set BENCH_POSTGRES_URL and BENCH_REDIS_URL (or run inside .ci/run)")
        return
    broker = broker.rstrip("/") + "/9" if broker.count("/") < 3 else broker
    template = _template(base)
    try:
        per_case = inline_drain(base, template, min(CASES, 2000))
        print(f"  one process in-line, no Celery: {per_case * 1000:6.2f} ms per case")
        print("  workers   seconds   cases/s   wall ms/case   worker ms/case   speed-up")
        first = None
        for workers in WORKER_COUNTS:
            took = celery_drain(base, broker, template, workers, CASES)
            first = first or took
            print(
                f"  {workers:>7}   {took:7.1f}   {CASES / took:7.0f}   {took / CASES * 1000:12.2f}"
                f"   {took * workers / CASES * 1000:14.2f}   {first / took:7.2f}x"
            )
    finally:
        drop_database(base, "casemgr_bench_timers")
        drop_database(base, template)


if __name__ == "__main__":
    main()

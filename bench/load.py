"""The load test: gunicorn (4 workers) on PostgreSQL with Celery running, 50 simulated users.

The servers are the production ones (Procfile): `gunicorn --workers 4 'casemgr:create_app()'`
on a free loopback port, a `celery -A casemgr.celery_app worker` (prefork, concurrency 2)
and `celery beat`, all on a fresh PostgreSQL database (`flask init-db`) and Redis.
Simulated users, one thread each with zero think time (maximum pressure), work credit
applications through API v1 for ``--seconds`` (default 120):
- specialists start a case, list their inbox, open a task from its first page, claim it and
  complete the review (four in five go to a credit manager, one is approved automatically);
- credit managers list their inbox, open an approval, claim it and approve it.
Everyone picks from the same first page, so people collide: a 409 (someone claimed or
completed it first) is counted as a conflict, apart from errors (5xx, connection errors;
target zero). A completion refused 409 right after the same person's successful claim is a
lost claim (someone took over a task they held; target zero).

Afterwards every case is checked (casemgr.engine.consistency): the task index matches the
ready user tasks of the deserialized workflow, each completed task has exactly one
task_completed event, and the clients' successful starts and completions match the rows.

Raw figures beside the latencies, measured in this run on the same database before the load:
SpiffWorkflow alone, parse-free (deserialize, run the step, serialize) for a start, a review
and an approval; for the inbox, loading every open case to find its ready tasks (what the
library offers without casemgr's task index).

Needs ``BENCH_POSTGRES_URL``/``BENCH_REDIS_URL`` or the ``TEST_*`` variables of .ci/run.
Run alone: ``python -m bench.load --seconds 20``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from abc import ABCMeta, abstractmethod
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from bench.timers import (
    drop_database,
    flush_redis,
    recreate_database,
    start_process,
    stop,
    wait_ready,
)
from tests import credit_data

SECONDS = float(os.environ.get("BENCH_LOAD_SECONDS", "120"))
USERS = int(os.environ.get("BENCH_LOAD_USERS", "50"))
MANAGER_SHARE = 0.3
WEB_WORKERS = 4
DATABASE = "casemgr_bench_load"
PASSWORD = "bench-password-1"
BIN = Path(sys.executable).parent
KINDS = ("start", "inbox", "open task", "claim", "complete review", "complete approval")
INTAKE = credit_data.INTAKE


def review(automatic: bool) -> dict:
    """A specialist's review: 8,000 with a good score is approved without a person."""
    return {
        "bureau_source": "dnb",
        "bureau_score": 760 if automatic else 720,
        "bureau_report_date": "2026-11-01",
        "trade_refs_verified": 3,
        "fraud_flags": [],
        "review_action": "recommend",
        "recommended_limit": "8000.00" if automatic else "20000.00",
        "recommended_terms_days": 30,
    }


# --- the simulated users --------------------------------------------------------------------


@dataclass
class Stats:
    """One thread's figures, merged after the run (no locking while it runs)."""

    seconds: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    outcomes: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    failures: Counter = field(default_factory=Counter)  # "kind: status/exception" for errors
    conflicts: Counter = field(default_factory=Counter)  # "kind: reason" for 409s
    idle: int = 0
    lost_claims: list = field(default_factory=list)  # (task id, person, answer): must be none

    def merge(self, other: Stats) -> None:
        for kind, values in other.seconds.items():
            self.seconds[kind] += values
        for kind, counts in other.outcomes.items():
            self.outcomes[kind].update(counts)
        self.failures.update(other.failures)
        self.conflicts.update(other.conflicts)
        self.idle += other.idle
        self.lost_claims += other.lost_claims


def outcome_of(status: int | None) -> str:
    if status is None or status >= 500:
        return "error"
    if status == 409:
        return "conflict"
    if status >= 400:
        return "refused"
    return "ok"


class Person(threading.Thread, metaclass=ABCMeta):
    """One person working through the API until the deadline, on one HTTP connection (kept
    alive where the server allows; gunicorn's sync workers close it after each response)."""

    def __init__(self, name: str, token: str, port: int, deadline: float, seed: int):
        super().__init__(name=name, daemon=True)
        self.token = token
        self.port = port
        self.deadline = deadline
        self.rng = random.Random(seed)
        self.stats = Stats()
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.crash: BaseException | None = None  # a fault of this script, raised after the run

    def call(self, kind: str, method: str, path: str, body: dict | None = None):
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        payload = None
        if body is not None:
            payload = json.dumps(body)
            headers["Content-Type"] = "application/json"
        started = time.perf_counter()
        try:
            self.conn.request(method, f"/api/v1{path}", body=payload, headers=headers)
            response = self.conn.getresponse()
            raw = response.read()
            status = response.status
        except (OSError, http.client.HTTPException) as exc:
            self.conn.close()  # the next request opens a new connection
            self.stats.seconds[kind].append(time.perf_counter() - started)
            self.stats.outcomes[kind]["error"] += 1
            self.stats.failures[f"{kind}: {type(exc).__name__}"] += 1
            return None, None
        self.stats.seconds[kind].append(time.perf_counter() - started)
        outcome = outcome_of(status)
        self.stats.outcomes[kind][outcome] += 1
        if outcome in ("error", "refused"):
            self.stats.failures[f"{kind}: {status} {raw[:160].decode(errors='replace')}"] += 1
        try:
            answer = json.loads(raw) if raw else None
        except ValueError:
            answer = None
        if outcome == "conflict":
            reason = str((answer or {}).get("error", "")).split(" by ")[0]
            self.stats.conflicts[f"{kind}: {reason}"] += 1
        return status, answer

    def run(self) -> None:
        try:
            while time.monotonic() < self.deadline:
                self.iteration()
        except Exception as exc:  # noqa: BLE001 - kept and raised by main()
            self.crash = exc
        finally:
            self.conn.close()

    @abstractmethod
    def iteration(self) -> None:
        """One round of this person's work."""

    def work_one(self, step: str, kind: str, data: dict) -> None:
        """Inbox, open one task of ``step`` from the first page, claim it, complete it."""
        status, page = self.call("inbox", "GET", "/tasks?limit=50")
        tasks = [t for t in page or [] if t.get("name") == step] if status == 200 else []
        if not tasks:
            self.stats.idle += 1
            time.sleep(0.05)  # nothing to do yet: look again shortly
            return
        task_id = self.rng.choice(tasks)["id"]
        status, _ = self.call("open task", "GET", f"/tasks/{task_id}")
        if status != 200:
            return
        status, _ = self.call("claim", "POST", f"/tasks/{task_id}/claim")
        if status != 200:
            return
        status, answer = self.call(kind, "POST", f"/tasks/{task_id}/complete", {"data": data})
        if status == 409:  # someone took over or completed a task this person held
            self.stats.lost_claims.append((task_id, self.name, (answer or {}).get("error")))


class Specialist(Person):
    def iteration(self) -> None:
        number = self.rng.randrange(10**6)
        data = dict(INTAKE, legal_name=f"Load {self.name} {number} LLC")
        self.call("start", "POST", "/cases", {"case_type": "credit_application", "data": data})
        self.work_one("specialist_review", "complete review", review(self.rng.random() < 0.2))


class Manager(Person):
    def iteration(self) -> None:
        self.work_one("manager_approval", "complete approval", {"decision": "approve"})


# --- servers --------------------------------------------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(database: str, broker: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database,
        "CELERY_BROKER_URL": broker,
        "SECRET_KEY": "bench-load",
        "CASEMGR_EMBEDDED_WORKER": "0",
        "CASEMGR_TIMER_TICK_SECONDS": "1",
        "PYTHONUNBUFFERED": "1",
    }


def init_db(env: dict[str, str]) -> None:
    done = subprocess.run(
        [str(BIN / "flask"), "--app", "casemgr", "init-db"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode:
        raise RuntimeError(f"flask init-db failed:\n{done.stdout}\n{done.stderr}")


def start_gunicorn(env: dict[str, str], port: int, folder: Path) -> subprocess.Popen:
    log = folder / "gunicorn.log"
    with log.open("ab") as out:
        server = subprocess.Popen(
            [str(BIN / "gunicorn"), "--workers", str(WEB_WORKERS)]
            + ["--bind", f"127.0.0.1:{port}", "casemgr:create_app()"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server.log = log  # type: ignore[attr-defined]
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
                if json.loads(r.read()).get("database") == "ok":
                    return server
        except OSError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            stop([server])
            raise RuntimeError(f"gunicorn did not come up:\n{log.read_text()[-3000:]}")
        time.sleep(0.3)


def start_celery(env: dict[str, str], folder: Path) -> list[subprocess.Popen]:
    worker_log, beat_log = folder / "worker.log", folder / "beat.log"
    worker = start_process(
        ["worker", "--concurrency", "2", "--loglevel", "INFO", "--hostname", "load@%h"]
        + ["--without-gossip", "--without-mingle"],
        env,
        worker_log,
    )
    worker.log = worker_log  # type: ignore[attr-defined]
    wait_ready([worker])
    beat = start_process(
        ["beat", "--loglevel", "INFO", "--schedule", str(folder / "beat-schedule")], env, beat_log
    )
    beat.log = beat_log  # type: ignore[attr-defined]
    return [worker, beat]


def log_problems(processes: list[subprocess.Popen]) -> tuple[dict[str, int], str]:
    """Tracebacks and ERROR lines each server wrote (the server side of "no errors"), and the
    end of the first traceback, which names the failing line."""
    found, first = {}, ""
    for process in processes:
        text = process.log.read_text(errors="replace")  # type: ignore[attr-defined]
        name = process.log.name  # type: ignore[attr-defined]
        found[name] = text.count("Traceback") + text.count("] ERROR")
        if not first and "Traceback" in text:
            tail = text[text.index("Traceback") :].splitlines()
            end = next((i for i, line in enumerate(tail) if line and line[0] != " "), 0)
            end = next((i for i in range(1, len(tail)) if tail[i] and tail[i][0] != " "), end)
            first = "\n".join(tail[max(0, end - 8) : end + 1])
    return found, first


# --- setup and checks in this process --------------------------------------------------------


def make_users(app, specialists: int, managers: int) -> tuple[dict, dict]:
    from casemgr.accounts import create_user, issue_token
    from casemgr.extensions import db

    with app.app_context():
        create_user("rep", ["sales_rep"], PASSWORD)
        specs = {f"spec{i:02d}": ["ar_specialist"] for i in range(specialists)}
        mgrs = {f"mgr{i:02d}": ["credit_manager"] for i in range(managers)}
        tokens = {}
        for name, roles in {**specs, **mgrs}.items():
            tokens[name] = issue_token(create_user(name, roles, PASSWORD))
        db.session.commit()
    return (
        {n: tokens[n] for n in specs},
        {n: tokens[n] for n in mgrs},
    )


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def raw_costs(app, repeat: int = 30) -> dict[str, float]:
    """SpiffWorkflow alone, parse-free, on the same diagram and data (median ms)."""
    from bench.raw import library_load, library_state
    from bench.start_throughput import raw_start
    from casemgr import forms
    from casemgr.accounts import find_user
    from casemgr.engine import cases as engine
    from casemgr.engine.serialization import serializer
    from casemgr.engine.step import StepContext, current_step
    from casemgr.engine.workflows import ready_human_tasks
    from casemgr.extensions import db
    from casemgr.models import TaskRecord

    costs = {"start": _median_ms(raw_start(app, repeat, "spec00")[0])}
    with app.app_context():
        spec, mgr = find_user("spec00"), find_user("mgr00")
        case = engine.start_case("credit_application", dict(INTAKE), spec)
        steps = (
            ("complete review", spec, review(False)),
            ("complete approval", mgr, {"decision": "approve"}),
        )
        for kind, user, data in steps:
            row = db.session.execute(
                db.select(TaskRecord).filter_by(case_id=case.id, state="open")
            ).scalar_one()
            clean, errors = forms.validate(
                forms.get_form_class(row.form_key), data, context=case.data
            )
            assert not errors, errors
            text, spiff_id = library_state(case), row.spiff_id
            samples = []
            for _ in range(repeat):
                token = current_step.set(StepContext(case, user))
                try:
                    started = time.perf_counter()
                    wf = library_load(text)
                    task = next(t for t in ready_human_tasks(wf) if str(t.id) == spiff_id)
                    task.data.update(clean)
                    task.run()
                    wf.do_engine_steps()
                    serializer.serialize_json(wf)
                    samples.append(time.perf_counter() - started)
                finally:
                    current_step.reset(token)
                    db.session.rollback()  # the approval's ledger writes are not kept
            costs[kind] = _median_ms(samples)
            case = engine.complete_task(row.id, data, user)
        assert case.status == "completed", case.status
        samples = []
        for _ in range(repeat):
            started = time.perf_counter()
            ready_human_tasks(library_load(text))  # the case as it waited for its approval
            samples.append(time.perf_counter() - started)
        costs["one case's ready tasks"] = _median_ms(samples)
        db.session.remove()
    return costs


def task_story(task_id: int) -> list[str]:
    """The case timeline around one task, to see who took it from whom."""
    from casemgr.extensions import db
    from casemgr.models import CaseEvent, TaskRecord

    row = db.session.get(TaskRecord, task_id)
    events = db.session.execute(
        db.select(CaseEvent).where(CaseEvent.case_id == row.case_id).order_by(CaseEvent.id)
    ).scalars()
    return [
        f"{e.at:%H:%M:%S.%f} {e.actor} {e.kind} {(e.detail or {}).get('task', '')}"
        for e in events
        if e.kind.startswith("task_")
    ]


def check_after(app, stats: Stats) -> tuple[dict[str, int], list[str], list[str]]:
    """Counts of what the run left, every consistency problem, and the timelines of the
    first lost claims."""
    from casemgr.engine.consistency import check_cases
    from casemgr.extensions import db
    from casemgr.models import Case, TaskRecord

    with app.app_context():
        ids = list(db.session.execute(db.select(Case.id).order_by(Case.id)).scalars())
        statuses = Counter(db.session.execute(db.select(Case.status)).scalars())
        completed_rows = Counter(
            db.session.execute(
                db.select(TaskRecord.name).where(TaskRecord.state == "completed")
            ).scalars()
        )
        open_rows = db.session.execute(
            db.select(db.func.count(TaskRecord.id)).where(TaskRecord.state == "open")
        ).scalar_one()
        problems = check_cases(ids)
        stories = []
        for task_id, who, answer in stats.lost_claims[:3]:
            stories.append(f"lost claim: {who} claimed task {task_id}, then was told {answer!r}")
            stories += [f"    {line}" for line in task_story(task_id)]
        db.session.remove()
        db.engine.dispose()
    ok = {kind: stats.outcomes[kind]["ok"] for kind in KINDS}
    setup_cases = 1  # raw_costs() started one case and completed its two tasks
    expected = {
        "cases": ok["start"] + setup_cases,
        "specialist_review": ok["complete review"] + setup_cases,
        "manager_approval": ok["complete approval"] + setup_cases,
    }
    found = {
        "cases": len(ids),
        "specialist_review": completed_rows["specialist_review"],
        "manager_approval": completed_rows["manager_approval"],
    }
    for what, n in expected.items():
        if found[what] != n:
            problems.append(
                f"{what}: the clients were answered {n} successes, the database has {found[what]}"
            )
    counts = {
        "cases": len(ids),
        "open cases": statuses["open"],
        "completed cases": statuses["completed"],
        "open tasks": open_rows,
        "completed tasks": sum(completed_rows.values()),
    }
    return counts, problems, stories


# --- report ---------------------------------------------------------------------------------


def _pct(ordered: list[float], p: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))] * 1000


def report(stats: Stats, seconds: float, raw: dict[str, float], open_cases: int) -> None:
    raw = dict(raw)
    raw["inbox"] = raw["one case's ready tasks"] * max(open_cases, 1)
    head = f"{'request':>18} {'count':>7} {'ok':>7} {'409':>6} {'4xx':>5} {'errors':>6}"
    print(head + f" {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'raw ms':>8} {'p50/raw':>8}")
    everything: list[float] = []
    totals: Counter = Counter()
    for kind in (*KINDS, "all"):
        if kind == "all":
            samples, counts = everything, totals
        else:
            samples, counts = stats.seconds.get(kind, []), stats.outcomes.get(kind, Counter())
            everything += samples
            totals.update(counts)
        if not samples:
            print(f"{kind:>18} {0:>7}")
            continue
        ordered = sorted(samples)
        p50 = statistics.median(ordered) * 1000
        base = raw.get(kind)
        ratio = f"{p50 / base:>8.2f}" if base else f"{'-':>8}"
        base_text = f"{base:>8.2f}" if base else f"{'-':>8}"
        print(
            f"{kind:>18} {len(samples):>7} {counts['ok']:>7} {counts['conflict']:>6}"
            f" {counts['refused']:>5} {counts['error']:>6} {p50:>8.1f} {_pct(ordered, 0.95):>8.1f}"
            f" {_pct(ordered, 0.99):>8.1f} {base_text} {ratio}"
        )
    print(
        f"throughput: {len(everything) / seconds:.1f} requests/s; errors: {totals['error']}"
        f" (target 0); conflicts (409): {totals['conflict']}; refused (other 4xx):"
        f" {totals['refused']}; idle looks at an empty inbox: {stats.idle}"
    )
    print(
        "lost claims (claimed, then the completion refused 409): "
        f"{len(stats.lost_claims)} (target 0)"
    )
    print(
        "raw: SpiffWorkflow alone, parse-free, measured before the load; for the inbox, "
        f"loading each of the {open_cases:,} open cases to find its ready tasks"
    )
    for failure, n in stats.failures.most_common(10):
        print(f"  error {n} x {failure}")
    for conflict, n in stats.conflicts.most_common(10):
        print(f"  409 {n} x {conflict}")


def main(seconds: float = SECONDS, users: int = USERS) -> None:
    base = os.environ.get("BENCH_POSTGRES_URL") or os.environ.get("TEST_POSTGRES_URL")
    broker = os.environ.get("BENCH_REDIS_URL") or os.environ.get("TEST_REDIS_URL")
    managers = max(1, round(users * MANAGER_SHARE))
    specialists = users - managers
    print(
        f"\nLoad: gunicorn ({WEB_WORKERS} sync workers) on PostgreSQL, Celery worker "
        f"(prefork, 2) and beat on Redis; {users} users ({specialists} specialists, "
        f"{managers} credit managers), zero think time, {seconds:.0f} s"
    )
    if not base or not broker:
        print("  skipped: set BENCH_POSTGRES_URL and BENCH_REDIS_URL (or run inside .ci/run)")
        return
    if specialists < 1:
        raise SystemExit("--users must be at least 2 (specialists and a manager)")
    from casemgr import create_app

    broker = broker.rstrip("/") + "/10" if broker.count("/") < 3 else broker
    url = recreate_database(base, DATABASE)
    env = server_env(url, broker)
    processes: list[subprocess.Popen] = []
    try:
        flush_redis(broker)
        init_db(env)
        app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench-load"})
        spec_tokens, mgr_tokens = make_users(app, specialists, managers)
        raw = raw_costs(app)
        folder = Path(tempfile.mkdtemp(prefix="casemgr-load-"))  # kept if a server failed
        processes += start_celery(env, folder)
        port = free_port()
        processes.append(start_gunicorn(env, port, folder))
        deadline = time.monotonic() + seconds
        crowd: list[Person] = [
            Specialist(name, token, port, deadline, seed)
            for seed, (name, token) in enumerate(spec_tokens.items())
        ]
        crowd += [
            Manager(name, token, port, deadline, 1000 + seed)
            for seed, (name, token) in enumerate(mgr_tokens.items())
        ]
        load_before = os.getloadavg()[0]
        began = time.monotonic()
        for person in crowd:
            person.start()
        for person in crowd:
            person.join()
        crashed = [person.crash for person in crowd if person.crash is not None]
        if crashed:
            raise RuntimeError(f"{len(crashed)} simulated user(s) failed") from crashed[0]
        took = time.monotonic() - began
        load_after = os.getloadavg()[0]
        stats = Stats()
        for person in crowd:
            stats.merge(person.stats)
        time.sleep(2)  # let Celery finish what the last steps queued
        server_problems, first_traceback = log_problems(processes)
        stop(processes)
        processes = []
        if not first_traceback:
            shutil.rmtree(folder, ignore_errors=True)
        counts, problems, stories = check_after(app, stats)
        report(stats, took, raw, counts["open cases"])
        print(
            f"load average {load_before:.1f} before, {load_after:.1f} at the end, on "
            f"{os.cpu_count()} cores (clients, gunicorn, Celery and PostgreSQL share them)"
        )
        print(
            "server logs (tracebacks + ERROR lines): "
            + ", ".join(f"{name} {n}" for name, n in server_problems.items())
        )
        if first_traceback:
            print(f"first server traceback (logs kept in {folder}):\n{first_traceback}")
        print("after the run: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
        print(f"consistency: {counts['cases']:,} cases checked, {len(problems)} problems")
        for line in problems[:20] + stories:
            print(f"  {line}")
    finally:
        stop(processes)
        drop_database(base, DATABASE)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=SECONDS, help="how long users work")
    parser.add_argument("--users", type=int, default=USERS, help="simulated users")
    args = parser.parse_args()
    main(args.seconds, args.users)

"""The embedded background worker of `make run`: real Celery, no server.

With ``CASEMGR_EMBEDDED_WORKER=1`` the web process starts one child process,
``celery -A casemgr.celery_app worker --beat --pool solo``, on kombu's SQLAlchemy transport
over a SQLite file in the instance folder. It is the same Celery app, tasks and beat
schedule as scale-out, so the timers, nightly jobs, retries and the admin page behave the
same; only the broker and the number of processes differ. One worker with the solo pool is
what SQLite wants: a single writer for the background work beside the web app's requests.

The child dies with its parent (Linux parent-death signal, plus a stop at exit), and a
pidfile keeps a second web process (the debug reloader) from starting another worker.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

from flask import Flask

log = logging.getLogger(__name__)
PR_SET_PDEATHSIG = 1


def embedded_worker_command(instance: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "casemgr.celery_app",
        "worker",
        "--beat",
        "--pool",
        "solo",
        "--concurrency",
        "1",
        "--loglevel",
        os.environ.get("CASEMGR_WORKER_LOGLEVEL", "INFO"),
        "--hostname",
        "embedded@%h",
        "--pidfile",
        str(instance / "celery-worker.pid"),
        "--schedule",
        str(instance / "celerybeat-schedule"),
    ]


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the web process goes, however it goes."""
    with contextlib.suppress(OSError):  # not Linux: the atexit stop still applies
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def start_embedded_worker(app: Flask, state_dir: Path | None = None) -> subprocess.Popen:
    """Start the worker child for this web process, on the same database. Its pidfile and
    beat's schedule file go to ``state_dir`` (default: the instance folder)."""
    instance = state_dir or Path(app.instance_path)
    instance.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["CASEMGR_EMBEDDED_WORKER"] = "0"  # the worker's own create_app starts nothing
    env["DATABASE_URL"] = app.config["SQLALCHEMY_DATABASE_URI"]
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and fixed arguments
        embedded_worker_command(instance), env=env, preexec_fn=_die_with_parent
    )
    atexit.register(stop_embedded_worker, process)
    log.info("embedded Celery worker started (pid %s)", process.pid)
    return process


def stop_embedded_worker(process: subprocess.Popen, timeout: float = 10.0) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()

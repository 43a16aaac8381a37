"""The embedded background worker for `make run`: wakes due timers every few seconds.

It calls the same engine function as `flask timers run`, in a daemon thread, so a single
process on a SQLite file needs no broker. (Scale-out runs Celery workers instead.)
"""

from __future__ import annotations

import threading

from flask import Flask
from sqlalchemy.exc import SQLAlchemyError

from casemgr.extensions import db

INTERVAL_SECONDS = 5.0


def start_embedded_worker(app: Flask, interval: float = INTERVAL_SECONDS) -> threading.Thread:
    stop = threading.Event()

    def loop() -> None:
        from casemgr.engine.cases import run_due_timers

        while not stop.wait(interval):
            with app.app_context():
                try:
                    run_due_timers()
                except SQLAlchemyError:
                    db.session.rollback()
                    app.logger.exception("timer tick failed; retrying at the next tick")
                finally:
                    db.session.remove()

    thread = threading.Thread(target=loop, name="casemgr-timers", daemon=True)
    thread.stop_event = stop  # type: ignore[attr-defined]
    thread.start()
    return thread

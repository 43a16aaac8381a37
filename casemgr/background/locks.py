"""One runner at a time for the jobs that work on the whole ledger, not one case.

Timers lock their case row (SKIP LOCKED); a job such as "review promises" has no row to lock,
so on PostgreSQL it takes a session-level advisory lock on its own connection for the job's
whole run, across the job's several commits. A worker that dies closes that connection and
PostgreSQL drops the lock with it. SQLite runs a single worker, so there it always succeeds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text

from casemgr.extensions import db


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for pg_advisory_lock from a job's name."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


@contextmanager
def singleton(name: str) -> Iterator[bool]:
    """Yield True when this process may run job ``name`` now, False when another runs it."""
    if db.engine.dialect.name != "postgresql":
        yield True
        return
    key = lock_key(name)
    with db.engine.connect() as conn:
        got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())
        conn.commit()
        try:
            yield got
        finally:
            if got:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()


@contextmanager
def exclusive(name: str) -> Iterator[None]:
    """Wait until no other process holds ``name``, then hold it (PostgreSQL; a no-op on
    SQLite). `init-db` runs under it, so web hosts starting together migrate one at a time."""
    if db.engine.dialect.name != "postgresql":
        yield
        return
    key = lock_key(name)
    with db.engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
        conn.commit()
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            conn.commit()

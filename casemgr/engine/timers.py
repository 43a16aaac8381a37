"""Waking cases whose timers are due: exactly once, whatever number of workers run at once.

A worker claims one due case at a time and wakes it in the same transaction:

* On PostgreSQL the claim is ``SELECT … FOR UPDATE SKIP LOCKED``: the row stays locked until
  the step commits, so a second worker (or beat's next tick, or `flask timers run`) skips it
  and takes the next due case instead of waiting or firing it again. A worker that dies
  mid-step loses its connection; PostgreSQL rolls the transaction back and releases the
  lock, and the case is simply due again at the next tick.
* On SQLite there are no row locks: one worker runs the timers (the embedded mode), and the
  case's optimistic version check still refuses a second commit of the same step.

The claim reads an index in wake-up order and stops at the first unlocked due row (the
partial index ``ix_cases_due_timers`` holds only open, unbroken cases with a wake-up), so a
tick costs what is due, never a scan of the open cases.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import event, func, literal_column, select
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session

from casemgr.engine import clock
from casemgr.engine.cases import wake_case
from casemgr.engine.errors import CaseBroken, CorruptCaseState
from casemgr.extensions import db
from casemgr.models import Case, CaseEvent

log = logging.getLogger(__name__)

# Test-only: a directory; when set, every timer step writes `<case id>.started` there after
# its changes reached the database and then waits, before committing, for as long as a file
# `hold` exists in it. The integration test kills the worker at that point (SIGKILL).
PAUSE_ENV = "CASEMGR_TEST_PAUSE_TIMER_STEP"

# The database errors worth a retry: the server, the connection or a lock, not the case.
TRANSIENT_DB_ERRORS = (OperationalError, InterfaceError)


@dataclass(frozen=True)
class DrainResult:
    advanced: int = 0
    examined: int = 0
    # True when the drain stopped at its case or time budget (cases may still be due).
    stopped_early: bool = False


def _due_filter(moment: datetime) -> tuple:
    """The partial index's predicate, written so each database uses that index.

    The constant is a literal, not a bound parameter, so PostgreSQL matches the predicate in
    every plan, generic or custom. SQLite, without ANALYZE statistics, would rather use the
    status index and sort all open cases; ``likely()`` (a no-op for the result) tells it the
    status term filters little, and it takes the partial index in wake-up order instead.
    """
    is_open = Case.status == literal_column("'open'")
    if db.session.get_bind().dialect.name == "sqlite":
        is_open = func.likely(is_open)
    return (
        Case.next_wake_at.is_not(None),
        is_open,
        Case.broken.is_(None),
        Case.next_wake_at <= moment,
    )


def claim_next_due(moment: datetime, skip: Collection[int] = ()) -> int | None:
    """The id of the earliest due case nobody else holds, locked until the next commit."""
    query = select(Case.id).where(*_due_filter(moment)).order_by(Case.next_wake_at).limit(1)
    if skip:
        query = query.where(Case.id.not_in(list(skip)))
    if db.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=Case)
    return db.session.execute(query).scalar()


def due_count(moment: datetime | None = None, cap: int | None = None) -> int:
    """How many cases are due (stops counting at ``cap``, so a huge backlog costs ``cap``)."""
    inner = select(Case.id).where(*_due_filter(moment or clock.now()))
    if cap is not None:
        inner = inner.limit(cap)
    return db.session.execute(select(func.count()).select_from(inner.subquery())).scalar_one()


def drain_due_timers(
    as_of: datetime | None = None,
    *,
    max_cases: int | None = None,
    max_seconds: float | None = None,
) -> DrainResult:
    """Wake due cases one transaction at a time until none is due (or a budget is spent).

    ``as_of`` freezes the moment (``timers run --as-of``); without it each case is woken at
    the real time of its claim, so a long drain never fires a timer early or late.
    """
    started = time.monotonic()
    advanced = examined = 0
    seen: set[int] = set()
    stuck: set[int] = set()
    while True:
        if max_cases is not None and examined >= max_cases:
            return DrainResult(advanced, examined, stopped_early=True)
        if max_seconds is not None and time.monotonic() - started >= max_seconds:
            return DrainResult(advanced, examined, stopped_early=True)
        moment = as_of or clock.now()
        case_id = claim_next_due(moment, stuck)
        if case_id is None:
            # A row another worker committed while this claim ran is re-checked and dropped
            # by PostgreSQL, which can make LIMIT 1 come back empty once; ask again.
            case_id = claim_next_due(moment, stuck)
        if case_id is None:
            db.session.rollback()
            return DrainResult(advanced, examined)
        examined += 1
        if case_id in seen:
            # Woken once in this drain and still due: leave it to the next tick rather than
            # spin on it (a timer SpiffWorkflow will not fire yet).
            stuck.add(case_id)
            db.session.rollback()
            continue
        seen.add(case_id)
        if _wake_one(case_id, moment):
            advanced += 1


def _wake_one(case_id: int, moment: datetime) -> bool:
    """Transient database errors propagate (the job retries with backoff); any other failure
    of one case stops that case, for an admin to see, instead of blocking every timer due
    after it at each tick."""
    try:
        with _paused_before_commit(case_id):
            return wake_case(case_id, moment)
    except TRANSIENT_DB_ERRORS:
        db.session.rollback()
        raise
    except Exception as exc:
        db.session.rollback()
        log.exception("waking case %s failed", case_id)
        flag_broken(case_id, f"the timer could not be processed: {type(exc).__name__}: {exc}")
        return False


def flag_broken(case_id: int, message: str) -> None:
    """Stop a case's timers with a message, in its own transaction (the failed step is undone)."""
    case = db.session.get(Case, case_id)
    if case is None:
        return
    mark_broken(case, message)
    db.session.commit()


def mark_broken(case: Case, message: str) -> None:
    """Flag a case for an admin in the current transaction (once per distinct message)."""
    if case.broken == message[:2000]:
        return
    case.broken = message[:2000]
    db.session.add(
        CaseEvent(
            case=case, at=clock.now(), actor="system", kind="error", detail={"message": message}
        )
    )


def flag_damaged(exc: CaseBroken) -> None:
    """After a request failed on a case whose stored state does not load: roll the request
    back and flag the case for an admin (its own transaction). Other failures: nothing."""
    if isinstance(exc, CorruptCaseState) and exc.case_id is not None:
        db.session.rollback()
        flag_broken(exc.case_id, exc.flag_message)


def retry_broken_case(case_id: int, actor: str) -> bool:
    """An admin clears a case's error so the next tick tries its timers again."""
    case = db.session.get(Case, case_id)
    if case is None or case.broken is None:
        return False
    previous = case.broken
    case.broken = None
    case.updated_at = clock.now()
    db.session.add(
        CaseEvent(
            case=case,
            at=clock.now(),
            actor=actor,
            kind="error_cleared",
            detail={"message": previous},
        )
    )
    db.session.commit()
    return True


def broken_cases(limit: int = 50) -> list[Case]:
    query = (
        select(Case)
        .where(Case.status == "open", Case.broken.is_not(None))
        .order_by(Case.updated_at.desc())
        .limit(limit)
    )
    return list(db.session.execute(query).scalars())


class _paused_before_commit:
    """The test hook of PAUSE_ENV: a no-op unless that variable is set."""

    def __init__(self, case_id: int):
        self.case_id = case_id
        self.folder = os.environ.get(PAUSE_ENV)

    def _hold(self, session: Session) -> None:
        session.flush()  # the step's writes are in the database, uncommitted
        folder = Path(self.folder)
        (folder / f"{self.case_id}.started").write_text(str(os.getpid()))
        while (folder / "hold").exists():
            time.sleep(0.05)

    def __enter__(self) -> None:
        if self.folder:
            event.listen(db.session(), "before_commit", self._hold)

    def __exit__(self, *_exc) -> None:
        if self.folder:
            event.remove(db.session(), "before_commit", self._hold)

"""The dashboard's figures, from the task index and the case rows only (never a workflow).

Each function returns plain rows (dicts of str/int/float) so that the page's tables and the
JSON behind its charts are the same numbers. Money stays a string of a Decimal.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from datetime import datetime, timedelta

from sqlalchemy import case as when
from sqlalchemy import func, select

from casemgr.extensions import db
from casemgr.ledger.aging import BUCKETS, aging_report
from casemgr.models import ROLES, Case, CaseType, TaskRecord, User

WAITING_STEP = "Waiting (timer or message)"


def type_names() -> dict[str, str]:
    return dict(db.session.execute(select(CaseType.key, CaseType.name)).all())


def open_by_step() -> list[dict]:
    """Open cases per case type and the step (open task) they are at; a case with several
    open tasks counts at each; an open case with none waits for a timer or a message."""
    names = type_names()
    steps = db.session.execute(
        select(
            TaskRecord.case_type_key,
            TaskRecord.title,
            func.count(func.distinct(TaskRecord.case_id)),
            func.min(TaskRecord.created_at),
        )
        .join(Case, Case.id == TaskRecord.case_id)
        .where(TaskRecord.state == "open", Case.status == "open")
        .group_by(TaskRecord.case_type_key, TaskRecord.title)
    ).all()
    rows = [
        {
            "case_type": key,
            "case_type_name": names.get(key, key),
            "step": title,
            "open_cases": count,
            "oldest": oldest.isoformat() if oldest else None,
        }
        for key, title, count, oldest in steps
    ]
    rows.extend(_waiting_rows(names))
    return sorted(rows, key=lambda r: (r["case_type_name"], -r["open_cases"], r["step"]))


def _waiting_rows(names: dict[str, str]) -> list[dict]:
    has_task = (
        select(TaskRecord.id)
        .where(TaskRecord.case_id == Case.id, TaskRecord.state == "open")
        .exists()
    )
    waiting = db.session.execute(
        select(CaseType.key, func.count(Case.id), func.min(Case.created_at))
        .join(CaseType, CaseType.id == Case.case_type_id)
        .where(Case.status == "open", ~has_task)
        .group_by(CaseType.key)
    ).all()
    return [
        {
            "case_type": key,
            "case_type_name": names.get(key, key),
            "step": WAITING_STEP,
            "open_cases": count,
            "oldest": oldest.isoformat() if oldest else None,
        }
        for key, count, oldest in waiting
    ]


def open_by_type() -> list[dict]:
    names = type_names()
    counts = db.session.execute(
        select(CaseType.key, func.count(Case.id))
        .join(CaseType, CaseType.id == Case.case_type_id)
        .where(Case.status == "open")
        .group_by(CaseType.key)
    ).all()
    return sorted(
        ({"case_type": k, "case_type_name": names.get(k, k), "open_cases": n} for k, n in counts),
        key=lambda r: r["case_type_name"],
    )


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile: a value that occurred, as people expect of "90% within"."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def time_to_resolve(since: datetime) -> list[dict]:
    """Median and 90th percentile, in days, of cases completed since ``since``, per type."""
    names = type_names()
    durations: dict[str, list[float]] = defaultdict(list)
    rows = db.session.execute(
        select(CaseType.key, Case.created_at, Case.completed_at)
        .join(CaseType, CaseType.id == Case.case_type_id)
        .where(Case.status == "completed", Case.completed_at >= since)
    )
    for key, created, completed in rows:
        if created is not None and completed is not None:
            durations[key].append(max(0.0, (completed - created).total_seconds() / 86400))
    return [
        {
            "case_type": key,
            "case_type_name": names.get(key, key),
            "resolved": len(values),
            "median_days": round(statistics.median(values), 2),
            "p90_days": round(percentile(values, 0.9), 2),
        }
        for key, values in sorted(durations.items(), key=lambda kv: names.get(kv[0], kv[0]))
    ]


def sla_breaches(now: datetime, since: datetime) -> list[dict]:
    """Per case type: open tasks past their due time now, and tasks completed since
    ``since`` after their due time (and, for scale, those completed in time)."""
    names = type_names()
    open_late = dict(
        db.session.execute(
            select(TaskRecord.case_type_key, func.count(TaskRecord.id))
            .where(TaskRecord.state == "open", TaskRecord.due_at < now)
            .group_by(TaskRecord.case_type_key)
        ).all()
    )
    late = when((TaskRecord.completed_at > TaskRecord.due_at, 1), else_=0)
    done = db.session.execute(
        select(TaskRecord.case_type_key, func.sum(late), func.count(TaskRecord.id))
        .where(
            TaskRecord.state == "completed",
            TaskRecord.due_at.is_not(None),
            TaskRecord.completed_at >= since,
        )
        .group_by(TaskRecord.case_type_key)
    ).all()
    completed = {key: (int(late_count or 0), int(total)) for key, late_count, total in done}
    keys = sorted(set(open_late) | set(completed), key=lambda k: names.get(k, k))
    return [
        {
            "case_type": key,
            "case_type_name": names.get(key, key),
            "open_overdue": int(open_late.get(key, 0)),
            "completed_late": completed.get(key, (0, 0))[0],
            "completed_on_time": completed.get(key, (0, 0))[1] - completed.get(key, (0, 0))[0],
        }
        for key in keys
    ]


def approvals_waiting(now: datetime) -> list[dict]:
    """Open approval tasks (those with a four-eyes rule) per assignee, or per role queue
    while nobody has claimed them, with the age of the oldest."""
    four_eyes = func.coalesce(func.json_array_length(TaskRecord.four_eyes), 0)
    rows = db.session.execute(
        select(
            TaskRecord.assignee_id,
            TaskRecord.role,
            func.count(TaskRecord.id),
            func.min(TaskRecord.created_at),
        )
        .where(TaskRecord.state == "open", four_eyes > 0)
        .group_by(TaskRecord.assignee_id, TaskRecord.role)
    ).all()
    labels = _user_labels({r[0] for r in rows if r[0] is not None})
    result = []
    for assignee_id, role, count, oldest in rows:
        if assignee_id is None:
            approver, kind = f"{ROLES.get(role, role)} queue (unclaimed)", "queue"
        else:
            approver, kind = labels.get(assignee_id, "?"), "person"
        result.append(
            {
                "approver": approver,
                "kind": kind,
                "role": role,
                "waiting": count,
                "oldest": oldest.isoformat() if oldest else None,
                "oldest_days": round((now - oldest).total_seconds() / 86400, 1) if oldest else None,
            }
        )
    return sorted(result, key=lambda r: (-r["waiting"], r["approver"]))


def _user_labels(ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return {
        u.id: u.label for u in db.session.execute(select(User).where(User.id.in_(ids))).scalars()
    }


def aging_totals(now: datetime) -> dict:
    report = aging_report(now.date())
    return {
        "as_of": report.as_of.isoformat(),
        "buckets": list(BUCKETS),
        "totals": {bucket: f"{report.totals[bucket]:.2f}" for bucket in BUCKETS},
        "total": f"{report.total:.2f}",
    }


def figures(now: datetime, days: int) -> dict:
    since = now - timedelta(days=days)
    return {
        "as_of": now.isoformat(timespec="seconds"),
        "days": days,
        "open_by_type": open_by_type(),
        "open_by_step": open_by_step(),
        "time_to_resolve": time_to_resolve(since),
        "sla": sla_breaches(now, since),
        "approvals": approvals_waiting(now),
        "aging": aging_totals(now),
    }

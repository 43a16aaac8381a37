"""Helpers the case-type suites share: a case's open tasks, counting rows, firing timers."""

from __future__ import annotations

from datetime import datetime

from casemgr.extensions import db


def open_task(case, name=None):
    """The case's one open task (of that name): anything else is a failed expectation."""
    db.session.refresh(case)
    tasks = [t for t in case.tasks if t.state == "open" and (name is None or t.name == name)]
    assert len(tasks) == 1, [(t.name, t.state) for t in case.tasks]
    return tasks[0]


def open_names(case) -> list[str]:
    db.session.refresh(case)
    return sorted(t.name for t in case.tasks if t.state == "open")


def count(model) -> int:
    return db.session.execute(db.select(db.func.count(model.id))).scalar()


def run_timers(app, moment: datetime) -> str:
    """`flask timers run --as-of MOMENT`, as an operator would run it."""
    result = app.test_cli_runner().invoke(args=["timers", "run", "--as-of", moment.isoformat()])
    assert result.exit_code == 0, result.output
    return result.output

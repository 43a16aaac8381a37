"""JSON shapes of tasks and process versions (API.md), shared with the web UI; the case
document with its timeline is casemgr.web.api.case_document.

Only plain reads of loaded rows happen here; nothing decides anything. Times are ISO 8601
UTC ending in "Z" and money is a string with two decimals, so that no client meets a float.
"""

from __future__ import annotations

from casemgr import forms
from casemgr.models import CaseType, ProcessVersion, TaskRecord, User
from casemgr.models.task_json import task_summary as summary_of
from casemgr.models.types import iso


def username(user: User | None) -> str | None:
    return user.username if user is not None else None


def task_summary(row: TaskRecord) -> dict:
    """The contract's task summary, plus the inbox's customer, amount and four-eyes columns."""
    return summary_of(row, username(row.assignee), username(row.completed_by))


def form_json(form_key: str | None) -> dict:
    """The task's form as the API describes it; a task without a form key has no fields."""
    return forms.describe(form_key, forms.get_form_class(form_key))


def task_json(row: TaskRecord) -> dict:
    """A task summary plus its form and the title of its case (what a worker needs to act)."""
    body = task_summary(row)
    body["case_title"] = row.case.title
    body["form"] = form_json(row.form_key)
    return body


def case_type_json(case_type: CaseType) -> dict:
    latest = case_type.latest()
    return {
        "key": case_type.key,
        "name": case_type.name,
        "version": latest.version if latest is not None else None,
    }


def version_json(version: ProcessVersion) -> dict:
    return {
        "version": version.version,
        "published_at": iso(version.published_at),
        "published_by": username(version.published_by),
        "sha256": version.sha256,
        "process_id": version.process_id,
    }

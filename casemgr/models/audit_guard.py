"""The case timeline is append-only: the ORM refuses to change or delete a case event.

Row-by-row changes (`event.kind = ...`, `session.delete(event)`) are stopped by mapper events;
bulk statements (`update(CaseEvent)`, `delete(CaseEvent)`) by a session hook, because they
bypass the mapper. Deleting a whole case would delete its events too, so it is refused as
well: casemgr never deletes a case (the API and the pages offer no way to).
"""

from __future__ import annotations

from sqlalchemy import Delete, Update, event
from sqlalchemy.orm import ORMExecuteState, Session

from casemgr.models.cases import CaseEvent


class AuditTrailError(PermissionError):
    """Raised on any attempt to change or delete a case event."""


@event.listens_for(CaseEvent, "before_update")
def _no_update(_mapper, _connection, _target) -> None:
    raise AuditTrailError("case events are append-only: they cannot be changed")


@event.listens_for(CaseEvent, "before_delete")
def _no_delete(_mapper, _connection, _target) -> None:
    raise AuditTrailError("case events are append-only: they cannot be deleted")


@event.listens_for(Session, "do_orm_execute")
def _no_bulk_change(state: ORMExecuteState) -> None:
    statement = state.statement
    if isinstance(statement, Update | Delete) and statement.table.name == CaseEvent.__tablename__:
        raise AuditTrailError("case events are append-only: no bulk update or delete")

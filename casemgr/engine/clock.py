"""The engine's clock, so `timers run --as-of` can wake what is due at any moment.

SpiffWorkflow's timer events call ``datetime.now(timezone.utc)`` on their module's own
``datetime`` name and offer no clock hook, so we give that one module a datetime subclass
whose ``now()`` reads our context variable. Nothing else in the process is affected.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

from SpiffWorkflow.bpmn.specs.event_definitions import timer as _spiff_timer

_frozen: ContextVar[datetime | None] = ContextVar("casemgr_engine_now", default=None)


def now() -> datetime:
    """The engine's current moment: the frozen one inside `as_of`, else the real UTC time."""
    return _frozen.get() or datetime.now(UTC)


@contextmanager
def as_of(moment: datetime | None) -> Iterator[None]:
    if moment is None:
        yield
        return
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    token = _frozen.set(moment.astimezone(UTC))
    try:
        yield
    finally:
        _frozen.reset(token)


class _EngineDatetime(datetime):
    @classmethod
    def now(cls, tz=None):  # noqa: D102 - same contract as datetime.now
        moment = now()
        return moment.astimezone(tz) if tz else moment.replace(tzinfo=None)


_spiff_timer.datetime = _EngineDatetime

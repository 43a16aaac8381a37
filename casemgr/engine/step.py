"""What one engine step knows about itself: the case, who acts, and what it records."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field

from casemgr.models import Case, User


@dataclass
class StepContext:
    case: Case
    actor: User | None
    events: list[tuple[str, dict]] = field(default_factory=list)
    # The data of the task a service operation runs for (the case row is indexed only after
    # the step, so operations read fresh values such as customer_number from here).
    task_data: dict = field(default_factory=dict)

    @property
    def actor_name(self) -> str:
        return self.actor.username if self.actor else "system"

    def record(self, kind: str, /, **detail) -> None:
        self.events.append((kind, detail))


current_step: ContextVar[StepContext | None] = ContextVar("casemgr_step", default=None)


def step_context() -> StepContext:
    ctx = current_step.get()
    if ctx is None:
        raise RuntimeError("a service task ran outside an engine step")
    return ctx

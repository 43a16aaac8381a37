"""Work management: saved inbox views, and the priority scale of the task index.

Delegation and follow-up dates are columns of the task index itself (``TaskRecord``:
``delegated_from_id``, ``follow_up_at``), so the inbox filters on them without a join.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import JSON, CheckConstraint, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from casemgr.extensions import db
from casemgr.models.types import UTCDateTime, utcnow
from casemgr.models.users import User

# A task's priority, higher is more urgent. The inbox sorts and filters on the number.
PRIORITIES: dict[int, str] = {1: "low", 2: "normal", 3: "high", 4: "urgent"}
NORMAL = 2
HIGH = 3
# A new task starts "high" when its case is about this much money or more (the new credit
# limit a manager may grant alone ends at 50,000: above it the controller is involved).
HIGH_PRIORITY_AMOUNT = Decimal("50000")


def default_priority(context) -> int:
    """The priority of a new task row, from the amount of its case (a column default, so every
    writer of the task index gets it without knowing about priorities)."""
    amount = context.get_current_parameters().get("amount")
    try:
        if amount is not None and Decimal(str(amount)) >= HIGH_PRIORITY_AMOUNT:
            return HIGH
    except ArithmeticError:
        return NORMAL
    return NORMAL


class SavedView(db.Model):
    """A named set of inbox query parameters: a user's own, or shared with everyone of a role."""

    __tablename__ = "saved_views"
    __table_args__ = (
        UniqueConstraint("owner_id", "name", name="uq_saved_views_owner_name"),
        UniqueConstraint("role", "name", name="uq_saved_views_role_name"),
        CheckConstraint("(owner_id IS NULL) <> (role IS NULL)", name="saved_view_owner_xor_role"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[str | None] = mapped_column(String(40), index=True)
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    owner: Mapped[User | None] = relationship(foreign_keys=[owner_id])
    created_by: Mapped[User | None] = relationship(foreign_keys=[created_by_id])

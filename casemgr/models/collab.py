"""What people add to a case besides task data: comments and attached documents.

Both are kept apart from the workflow (ARCHITECTURE.md, "Task data holds small values"): a
POD or a credit report never enters task data, and each addition is also a case event, so
the timeline stays the one audit trail.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from casemgr.extensions import db
from casemgr.models.cases import Case
from casemgr.models.types import UTCDateTime, utcnow
from casemgr.models.users import User


class Comment(db.Model):
    __tablename__ = "case_comments"
    __table_args__ = (Index("ix_case_comments_case_created", "case_id", "created_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    case: Mapped[Case] = relationship()
    author: Mapped[User | None] = relationship()


class Attachment(db.Model):
    """A stored file. ``storage_key`` names it on disk (random); ``filename`` is for people."""

    __tablename__ = "case_attachments"
    __table_args__ = (Index("ix_case_attachments_case_created", "case_id", "created_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(120))
    size: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    storage_key: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    case: Mapped[Case] = relationship()
    uploaded_by: Mapped[User | None] = relationship()

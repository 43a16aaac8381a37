"""Case types and their published diagram versions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from casemgr.extensions import db
from casemgr.models.types import UTCDateTime, utcnow
from casemgr.models.users import User


class CaseType(db.Model):
    __tablename__ = "case_types"
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(80), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    versions: Mapped[list[ProcessVersion]] = relationship(
        back_populates="case_type", order_by="ProcessVersion.version"
    )

    def latest(self) -> ProcessVersion | None:
        return self.versions[-1] if self.versions else None


class ProcessVersion(db.Model):
    """One published diagram. The decision tables it calls are pinned with it."""

    __tablename__ = "process_versions"
    __table_args__ = (UniqueConstraint("case_type_id", "version"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    case_type_id: Mapped[int] = mapped_column(ForeignKey("case_types.id"), index=True)
    version: Mapped[int]
    process_id: Mapped[str] = mapped_column(String(200))
    bpmn_xml: Mapped[str] = mapped_column(Text)
    dmn_xml: Mapped[list[str]] = mapped_column(JSON, default=list)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    published_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    published_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    case_type: Mapped[CaseType] = relationship(back_populates="versions")
    published_by: Mapped[User | None] = relationship()

"""What each person wants to hear about, and the e-mail outbox that sends each message once.

The outbox is filled inside the transaction that caused the message (an engine step, the
promise review) and drained after it commits (``casemgr.notify.mail.send_pending``): a step
that rolls back leaves no row, so it sends nothing, and a failing SMTP server never undoes
a step. ``dedupe_key`` names (event, user, channel), so the same event can never queue a
second e-mail, whoever tries and however often.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from casemgr.extensions import db
from casemgr.models.types import UTCDateTime, utcnow


class NotificationPreference(db.Model):
    """One choice of one person: for ``kind``, is ``channel`` on (and, for the digest
    channel, how often). No row means the default of ``casemgr.notify.prefs.DEFAULTS``."""

    __tablename__ = "notification_preferences"
    __table_args__ = (UniqueConstraint("user_id", "kind", "channel"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    # in_app | email | digest
    channel: Mapped[str] = mapped_column(String(20))
    enabled: Mapped[bool] = mapped_column(default=False)
    # For the digest channel: hour | day.
    period: Mapped[str | None] = mapped_column(String(10))


class EmailOutbox(db.Model):
    """One e-mail to one person, or one digest entry waiting for its batch.

    ``mode`` ``now`` rows are sent by themselves; ``digest`` rows wait until their
    ``period`` (hour or day, UTC) has ended, then ``build_digests`` makes one ``now`` row of
    them all and points each at it with ``batch_id``.
    """

    __tablename__ = "email_outbox"
    __table_args__ = (
        # The sender's scan: unsent rows of one mode, oldest first.
        Index("ix_email_outbox_pending", "mode", "sent_at", "available_at"),
        # The digest builder's scan: unbatched digest entries per person.
        Index("ix_email_outbox_digest", "mode", "batch_id", "user_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    recipient: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id", ondelete="SET NULL"))
    mode: Mapped[str] = mapped_column(String(10), default="now")
    period: Mapped[str | None] = mapped_column(String(10))
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("email_outbox.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Not before this moment (a retry's backoff).
    available_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # A sender's claim: set with a conditional UPDATE, so two senders never take one row.
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claim_token: Mapped[str | None] = mapped_column(String(32))
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)

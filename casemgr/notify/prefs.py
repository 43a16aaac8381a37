"""Who wants what: each person's choice per kind of notification, with the defaults.

A choice is two things: whether it shows in the app (the bell), and how it arrives by
e-mail: not at all, each one as it happens, or batched in an hourly or daily digest.

Two sources feed the kinds. Notices casemgr derives from engine facts (a new task in a
queue, an escalation, a decision on one's request) and the broken-promise review are kinds
of their own. Everything a process diagram or a colleague sends (a diagram's ``notify``
operation, whatever kind it names, delegations) is "other". The defaults keep the app's
behaviour from before preferences existed: messages that processes send ring the bell, the
derived notices are opt-in in the app (a busy queue must not flood every member's bell), and
escalations and decisions are e-mailed to those with an address.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from casemgr.extensions import db
from casemgr.models import NotificationPreference

# The kinds a person chooses for, in the order the preferences page lists them.
KINDS: dict[str, str] = {
    "task": "A task arrives in my queue or is assigned to me",
    "escalation": "An escalation: work left too long, a deadline or a follow-up timer",
    "decision": "A decision on my request (an approval, a rejection, a send-back)",
    "promise_broken": "A customer broke a promise to pay",
    "other": "Messages a process or a colleague sends me (outcomes, consultations, delegations)",
}
EMAIL_MODES: dict[str, str] = {
    "none": "No e-mail",
    "now": "E-mail each one",
    "hour": "Hourly digest",
    "day": "Daily digest",
}
# Kinds another module already e-mails on its own (the weekly past-due report): in-app only.
EMAILED_ELSEWHERE = frozenset({"report"})


@dataclass(frozen=True)
class Choice:
    in_app: bool
    email: str  # a key of EMAIL_MODES

    @property
    def digest(self) -> bool:
        return self.email in ("hour", "day")

    @property
    def wants_anything(self) -> bool:
        return self.in_app or self.email != "none"


DEFAULTS: dict[str, Choice] = {
    "task": Choice(in_app=False, email="none"),
    "escalation": Choice(in_app=False, email="now"),
    "decision": Choice(in_app=False, email="now"),
    "promise_broken": Choice(in_app=True, email="none"),
    "other": Choice(in_app=True, email="none"),
}


def group_of_row(kind: str) -> str:
    """The preference a Notification row made by other code falls under: the promise review's
    own kind, else "other" (a diagram may name any kind, "decision" or "escalation" too)."""
    return "promise_broken" if kind == "promise_broken" else "other"


def choices_for(user_ids: Iterable[int]) -> dict[int, dict[str, Choice]]:
    """Every kind's choice for each of the users, in one query."""
    ids = sorted(set(user_ids))
    result = {uid: dict(DEFAULTS) for uid in ids}
    if not ids:
        return result
    rows = db.session.execute(
        db.select(NotificationPreference).where(NotificationPreference.user_id.in_(ids))
    ).scalars()
    raw: dict[tuple[int, str], dict[str, NotificationPreference]] = {}
    for row in rows:
        if row.kind in KINDS:
            raw.setdefault((row.user_id, row.kind), {})[row.channel] = row
    for (uid, kind), channels in raw.items():
        result[uid][kind] = _merge(DEFAULTS[kind], channels)
    return result


def _merge(default: Choice, channels: dict[str, NotificationPreference]) -> Choice:
    in_app = channels["in_app"].enabled if "in_app" in channels else default.in_app
    email = default.email
    if "email" in channels or "digest" in channels:
        email = "none"
        digest = channels.get("digest")
        if channels.get("email") is not None and channels["email"].enabled:
            email = "now"
        elif digest is not None and digest.enabled and digest.period in ("hour", "day"):
            email = digest.period
    return Choice(in_app=in_app, email=email)


def save_choices(user_id: int, choices: dict[str, Choice]) -> None:
    """Store a person's choices as rows per channel (no commit: the caller's transaction)."""
    existing = {
        (row.kind, row.channel): row
        for row in db.session.execute(
            db.select(NotificationPreference).where(NotificationPreference.user_id == user_id)
        ).scalars()
    }
    for kind, choice in choices.items():
        wanted = {
            "in_app": (choice.in_app, None),
            "email": (choice.email == "now", None),
            "digest": (choice.digest, choice.email if choice.digest else None),
        }
        for channel, (enabled, period) in wanted.items():
            row = existing.get((kind, channel))
            if row is None:
                row = NotificationPreference(user_id=user_id, kind=kind, channel=channel)
                db.session.add(row)
            row.enabled = enabled
            row.period = period

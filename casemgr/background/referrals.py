"""Starting collection referrals on their own, for accounts past a threshold. Off by default.

``REFERRAL_AFTER_DAYS`` (app config, or ``CASEMGR_REFERRAL_AFTER_DAYS``) turns it on: each
night, a customer whose oldest open invoice is that many days past due, with at least
``REFERRAL_MIN_BALANCE`` past due (default 0.01), gets a collection referral case, as does a
customer with ``REFERRAL_BROKEN_PROMISES`` (default 2; 0 turns that off) broken promises
and anything past due. The case starts as if a specialist had filled in its start form, so
its first task lands in the specialists' queue.

One referral per delinquency: a customer is skipped while a referral is open or when one was
started since its oldest past-due invoice fell due, so a referral that ended (paid, sent to
an agency, rejected) is not restarted every night for the same debt.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal

from sqlalchemy import func, or_, select

from casemgr.background.mail import setting
from casemgr.engine.cases import start_in_transaction
from casemgr.engine.errors import EngineError
from casemgr.extensions import db
from casemgr.ledger.aging import ZERO, InvoiceFacts, days_past_due, load_invoice_facts, money
from casemgr.models import Case, CaseType, Customer, PromiseToPay

log = logging.getLogger(__name__)
CASE_TYPE = "collection_referral"


@dataclass(frozen=True)
class Candidate:
    customer_number: str
    oldest_days: int
    oldest_due: date
    past_due: Decimal
    trigger: str


@dataclass(frozen=True)
class ReferralRules:
    after_days: int
    min_balance: Decimal = Decimal("0.01")
    broken_promises: int = 2


def rules() -> ReferralRules | None:
    """The configured rules, or None when automatic referrals are off."""
    raw = setting("REFERRAL_AFTER_DAYS").strip()
    if not raw:
        return None
    return ReferralRules(
        after_days=int(raw),
        min_balance=Decimal(setting("REFERRAL_MIN_BALANCE", "0.01") or "0.01"),
        broken_promises=int(setting("REFERRAL_BROKEN_PROMISES", "2") or "0"),
    )


def candidates(
    invoices: Iterable[InvoiceFacts],
    as_of: date,
    rule: ReferralRules,
    broken_counts: dict[str, int] | None = None,
) -> list[Candidate]:
    """Customers the rules refer, from already loaded invoices (pure, so testable by hand)."""
    oldest: dict[str, tuple[int, date]] = {}
    past_due: dict[str, Decimal] = {}
    for inv in invoices:
        days = days_past_due(inv.due_date, as_of)
        balance = inv.open_on(as_of)
        if days <= 0 or balance <= 0:
            continue
        past_due[inv.customer] = past_due.get(inv.customer, ZERO) + balance
        if inv.customer not in oldest or days > oldest[inv.customer][0]:
            oldest[inv.customer] = (days, inv.due_date)
    found = []
    for number, (days, due) in sorted(oldest.items()):
        amount = money(past_due[number])
        promises = (broken_counts or {}).get(number, 0)
        if days >= rule.after_days and amount >= rule.min_balance:
            trigger = "over_120_days" if days >= 120 else "over_90_days"
        elif rule.broken_promises and promises >= rule.broken_promises:
            trigger = "broken_promises"
        else:
            continue
        found.append(Candidate(number, days, due, amount, trigger))
    return found


def auto_start_referrals(as_of: date) -> list[int]:
    """Start the referrals the rules call for; returns the new case ids (one commit each)."""
    rule = rules()
    if rule is None or _case_type() is None:
        return []
    started = []
    for candidate in candidates(load_invoice_facts(as_of), as_of, rule, _broken_counts()):
        if _already_referred(candidate):
            continue
        case_id = _start(candidate, rule)
        if case_id is not None:
            started.append(case_id)
    return started


def _case_type() -> CaseType | None:
    return db.session.execute(select(CaseType).where(CaseType.key == CASE_TYPE)).scalar()


def _broken_counts() -> dict[str, int]:
    query = (
        select(Customer.number, func.count(PromiseToPay.id))
        .join(Customer, PromiseToPay.customer_id == Customer.id)
        .where(PromiseToPay.status == "broken")
        .group_by(Customer.number)
    )
    return dict(db.session.execute(query).all())


def _already_referred(candidate: Candidate) -> bool:
    since = datetime.combine(candidate.oldest_due, time.min, tzinfo=UTC)
    query = (
        select(Case.id)
        .join(CaseType, Case.case_type_id == CaseType.id)
        .where(
            CaseType.key == CASE_TYPE,
            Case.customer_number == candidate.customer_number,
            or_(Case.status == "open", Case.created_at >= since),
        )
        .limit(1)
    )
    return db.session.execute(query).first() is not None


def _start(candidate: Candidate, rule: ReferralRules) -> int | None:
    notes = (
        f"Started automatically by casemgr: the oldest open invoice is {candidate.oldest_days} "
        f"days past due and {candidate.past_due:,.2f} is past due (rule: {rule.after_days} days"
        + (f" or {rule.broken_promises} broken promises" if rule.broken_promises else "")
        + ")."
    )
    data = {
        "customer_number": candidate.customer_number,
        "trigger": candidate.trigger,
        "notes": notes,
    }
    try:
        case = start_in_transaction(CASE_TYPE, data, None)
        db.session.commit()
    except EngineError as exc:
        db.session.rollback()
        log.warning("no referral for %s: %s", candidate.customer_number, exc.message)
        return None
    except Exception:
        db.session.rollback()
        raise
    log.info("collection referral %s started for %s", case.id, candidate.customer_number)
    return case.id

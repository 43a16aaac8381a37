"""What a broken promise to pay raises.

A person must call the customer, and the account's history must show the promise failed.
A whole case type for that one call would be ceremony, so a newly broken promise:

* notifies the customer's sales rep and every AR specialist, in the app and by e-mail as
  each of them chose (``casemgr.notify.notify_broken_promise``, kind ``promise_broken``,
  linked to the case that recorded the promise, if any),
* leaves a note on the account, which the customer page and every case of the customer show,
* appends ``promise_broken`` to the timeline of the case that recorded the promise,
* delivers the BPMN message ``promise_broken`` to the customer's open cases that wait for
  it, so a diagram can make it a real task (an event-based gateway, a boundary message),
* counts towards the collection referral's "two broken promises" trigger
  (``casemgr.background.referrals``).

Everything, including the promise's new status, commits in one transaction: the next review
finds the promise already broken and raises nothing again.
"""

from __future__ import annotations

from datetime import date

from casemgr.engine import clock
from casemgr.engine.messages import cases_awaiting, deliver_in_transaction
from casemgr.extensions import db
from casemgr.ledger.operations import review_promises
from casemgr.models import AccountNote, Case, CaseEvent, PromiseToPay

MESSAGE = "promise_broken"


def follow_up_broken_promises(today: date) -> list[PromiseToPay]:
    """Settle open promises as of ``today`` and raise the follow-up of each newly broken one."""
    try:
        broken = review_promises(today)
        for promise in broken:
            _follow_up(promise)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return broken


def _follow_up(promise: PromiseToPay) -> None:
    from casemgr.notify import notify_broken_promise

    customer = promise.customer
    notify_broken_promise(promise)
    text = (
        f"Promise to pay broken: {promise.amount:,.2f} promised by "
        f"{promise.promised_date.isoformat()} was not paid. The sales rep and the AR "
        "specialists were notified."
    )
    db.session.add(AccountNote(customer=customer, author="system", text=text))
    detail = {
        "promise_id": promise.id,
        "amount": f"{promise.amount:.2f}",
        "promised_date": promise.promised_date.isoformat(),
    }
    if promise.case_id is not None and db.session.get(Case, promise.case_id) is not None:
        db.session.add(
            CaseEvent(
                case_id=promise.case_id,
                at=clock.now(),
                actor="system",
                kind=MESSAGE,
                detail=detail,
            )
        )
    for case in cases_awaiting(MESSAGE, customer.number):
        deliver_in_transaction(case, MESSAGE, detail, None)

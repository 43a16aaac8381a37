"""Notifications: in the bell and by e-mail through a real SMTP server on 127.0.0.1, each as
its recipient chose, each e-mail sent once, nothing for a step that did not happen."""

from __future__ import annotations

import socket
import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from email import message_from_string, policy

import pytest

from casemgr.accounts import find_user
from casemgr.engine import cases as engine
from casemgr.engine.timers import drain_due_timers
from casemgr.extensions import db
from casemgr.models import (
    Customer,
    EmailOutbox,
    Invoice,
    Notification,
    Payment,
    PromiseToPay,
)
from casemgr.notify import notify_broken_promise, register, send_pending
from casemgr.notify.mail import build_digests
from casemgr.notify.prefs import Choice, save_choices

TODAY = date.today()
CUSTOMER = "C-71001"
INVOICE = "INV-71001"


# --- a mail server and people with addresses ------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Inbox:
    """What the SMTP server received: (recipients, message text)."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], str]] = []
        self.lock = threading.Lock()

    def to(self, address: str) -> list[str]:
        """Each message to the address as "Subject: …" and its body, headers unfolded."""
        with self.lock:
            raw = [text for rcpt, text in self.messages if address in rcpt]
        parsed = [message_from_string(text, policy=policy.default) for text in raw]
        return [f"Subject: {m['Subject']}\n\n{m.get_content()}" for m in parsed]

    def __len__(self) -> int:
        with self.lock:
            return len(self.messages)


@pytest.fixture
def smtp(ctx):
    from aiosmtpd.controller import Controller

    inbox = Inbox()

    class Handler:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802
            with inbox.lock:
                inbox.messages.append(
                    (list(envelope.rcpt_tos), envelope.content.decode("utf-8", "replace"))
                )
            return "250 OK"

    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    ctx.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=port, MAIL_FROM="casemgr@example.com")
    try:
        yield inbox
    finally:
        controller.stop()


@pytest.fixture(autouse=True)
def addresses(request):
    if "ctx" not in request.fixturenames:
        return
    request.getfixturevalue("ctx")
    for name in ("spec", "spec2", "dual", "mgr", "mgr2", "ctrl", "rep"):
        find_user(name).email = f"{name}@example.com"
    db.session.commit()


def user(name):
    return find_user(name)


def choose(name: str, **kinds: tuple[bool, str]) -> None:
    """choose("spec2", task=(True, "now")): in-app on, e-mail each one."""
    save_choices(user(name).id, {k: Choice(in_app=v[0], email=v[1]) for k, v in kinds.items()})
    db.session.commit()


def outbox() -> list[EmailOutbox]:
    return list(db.session.execute(db.select(EmailOutbox).order_by(EmailOutbox.id)).scalars())


def bell(name: str, kind: str | None = None) -> list[Notification]:
    query = db.select(Notification).where(Notification.user_id == user(name).id)
    if kind:
        query = query.where(Notification.kind == kind)
    return list(db.session.execute(query).scalars())


# --- a dispute, the case type with a queue, an approval and a day-20 escalation ------------


def add_ledger() -> None:
    customer = Customer(number=CUSTOMER, name="Globex Retail", sales_rep="rep")
    db.session.add_all(
        [
            customer,
            Invoice(
                customer=customer,
                number=INVOICE,
                invoice_date=TODAY - timedelta(days=40),
                due_date=TODAY - timedelta(days=10),
                amount=Decimal("30000.00"),
            ),
        ]
    )
    db.session.commit()


def start_dispute(who: str = "spec"):
    data = {
        "customer_number": CUSTOMER,
        "invoice_number": INVOICE,
        "disputed_amount": "800.00",
        "reason_code": "duplicate_billing",
        "source": "short_payment",
        "description": "Line 3 was billed twice.",
    }
    return engine.start_case("dispute_resolution", data, user(who))


def open_task(case, name):
    db.session.refresh(case)
    [task] = [t for t in case.tasks if t.state == "open" and t.name == name]
    return task


def resolved(amount: str = "500.00", who: str = "spec"):
    case = start_dispute(who)
    research = {"pod_found": True, "allowance_on_file": False, "research_notes": "POD checked."}
    case = engine.complete_task(open_task(case, "research_dispute").id, research, user(who))
    resolution = {
        "resolution": "credit_memo",
        "credit_memo_amount": amount,
        "resolution_notes": "Duplicate line confirmed.",
    }
    return engine.complete_task(open_task(case, "resolve_dispute").id, resolution, user(who))


# --- a task arriving in a queue ---------------------------------------------------------


def test_a_new_task_emails_the_opted_in_members_of_its_queue_once(ctx, smtp):
    add_ledger()
    choose("spec2", task=(True, "now"))
    choose("spec", task=(True, "now"))  # opted in, but it is their own doing
    start_dispute("spec")

    assert len(outbox()) == 1 and len(smtp) == 0  # queued in the step, not yet sent
    result = send_pending()
    assert result.sent == 1
    [mail] = smtp.to("spec2@example.com")
    assert "Subject: [casemgr] New task: Research the dispute" in mail
    assert "/cases/" in mail
    assert smtp.to("spec@example.com") == [] and smtp.to("dual@example.com") == []
    [note] = bell("spec2", "task")
    assert "Research the dispute" in note.message
    assert bell("dual", "task") == []  # the default: new tasks are opt-in

    assert send_pending().sent == 0  # a second run finds nothing new
    assert len(smtp) == 1
    assert outbox()[0].sent_at is not None and outbox()[0].attempts == 0


def test_concurrent_senders_send_each_e_mail_once(app, smtp):
    with app.app_context():
        add_ledger()
        choose("spec2", task=(False, "now"))
        choose("dual", task=(False, "now"))
        for _ in range(3):
            start_dispute("spec")
        assert len(outbox()) == 6
    results = []

    def sender():
        with app.app_context():
            results.append(send_pending().sent)
            db.session.remove()

    threads = [threading.Thread(target=sender) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sum(results) == 6
    assert len(smtp) == 6
    assert len({text.split("Message-ID: ")[1].split()[0] for _, text in smtp.messages}) == 6


def test_a_claim_held_by_another_sender_is_left_alone(ctx, smtp):
    add_ledger()
    choose("spec2", task=(False, "now"))
    start_dispute("spec")
    [row] = outbox()
    row.claimed_at = datetime.now(UTC)  # another sender is on it right now
    db.session.commit()
    assert send_pending().sent == 0 and len(smtp) == 0
    # Past the lease, a claim whose sender died is taken over.
    assert send_pending(datetime.now(UTC) + timedelta(minutes=20)).sent == 1


def test_a_rolled_back_step_sends_nothing(ctx, smtp):
    add_ledger()
    choose("spec2", task=(True, "now"))
    engine.start_in_transaction(
        "dispute_resolution",
        {
            "customer_number": CUSTOMER,
            "invoice_number": INVOICE,
            "disputed_amount": "800.00",
            "reason_code": "duplicate_billing",
            "source": "short_payment",
            "description": "Never committed.",
        },
        user("spec"),
    )
    db.session.rollback()
    assert send_pending().sent == 0
    assert outbox() == [] and bell("spec2") == [] and len(smtp) == 0
    # The next step that does commit is told as usual, and only itself.
    start_dispute("spec")
    assert send_pending().sent == 1 and len(smtp.to("spec2@example.com")) == 1


def test_preferences_decide_who_hears_and_how(ctx, smtp):
    add_ledger()
    choose("spec2", task=(False, "none"))
    choose("dual", task=(True, "none"))
    start_dispute("spec")
    send_pending()
    assert bell("spec2") == [] and len(smtp) == 0
    assert [n.kind for n in bell("dual")] == ["task"]


def test_a_person_without_an_address_gets_the_bell_but_no_mail(ctx, smtp):
    add_ledger()
    find_user("spec2").email = None
    db.session.commit()
    choose("spec2", task=(True, "now"))
    start_dispute("spec")
    assert outbox() == [] and [n.kind for n in bell("spec2")] == ["task"]


# --- digests --------------------------------------------------------------------------------


def test_an_hourly_digest_batches_several_tasks_into_one_e_mail(ctx, smtp):
    add_ledger()
    choose("spec2", task=(False, "hour"))
    for _ in range(3):
        start_dispute("spec")
    assert [r.mode for r in outbox()] == ["digest"] * 3
    assert send_pending().sent == 0  # this hour is not over yet
    later = datetime.now(UTC) + timedelta(hours=1)
    result = send_pending(later)
    assert (result.digests, result.sent) == (1, 1)
    [mail] = smtp.to("spec2@example.com")
    assert "Your hourly digest: 3 notifications" in mail
    assert mail.count("New task: Research the dispute") == 3
    assert send_pending(later + timedelta(hours=2)).sent == 0  # nothing twice
    assert all(r.sent_at is not None for r in outbox())


def test_the_cli_sends_digests_only_when_asked(ctx, smtp):
    register(ctx)
    add_ledger()
    choose("spec2", task=(False, "day"), decision=(False, "now"))
    start_dispute("spec")
    runner = ctx.test_cli_runner()
    result = runner.invoke(args=["notify", "send"])
    assert result.exit_code == 0 and "sent 0" in result.output
    build_digests(datetime.now(UTC) + timedelta(days=1))  # as tomorrow's run would
    result = runner.invoke(args=["notify", "send", "--digest"])
    assert result.exit_code == 0 and "sent 1" in result.output, result.output
    assert "Your daily digest: 1 notification" in smtp.to("spec2@example.com")[0]


# --- decisions and escalations --------------------------------------------------------------


def test_a_decision_on_my_request_reaches_whoever_asked(ctx, smtp):
    add_ledger()
    choose("spec", decision=(True, "now"))
    case = resolved("500.00", who="spec")
    approval = open_task(case, "specialist_approval")
    engine.complete_task(approval.id, {"decision": "approve"}, user("spec2"))
    send_pending()
    [mail] = smtp.to("spec@example.com")
    assert "Decision: Approve" in mail
    [note] = bell("spec", "decision")
    assert "Approve" in note.message and "Spec2" in note.message
    assert smtp.to("spec2@example.com") == []  # the approver is not told of their own act
    # The diagram's own message to the sales rep still rings the bell as before.
    assert len(bell("rep")) == 1


def test_a_timer_escalation_reaches_the_managers(ctx, smtp):
    add_ledger()
    choose("mgr", escalation=(True, "now"))
    choose("mgr2", escalation=(False, "none"))
    start_dispute("spec")
    send_pending()
    drain_due_timers(datetime.now(UTC) + timedelta(days=20, hours=1))
    send_pending()
    [mail] = smtp.to("mgr@example.com")
    assert "Escalation: Dispute open 20 days" in mail
    [note] = bell("mgr", "escalation")
    assert note.message.startswith("Escalation:")
    assert smtp.to("mgr2@example.com") == [] and bell("mgr2") == []
    assert len(smtp.to("dual@example.com")) == 1  # the default: escalations by e-mail


def test_an_escalation_the_diagram_announces_rings_once_and_mails_once(ctx, smtp):
    """The hold release tells the managers itself (a `notify` of kind "escalation"): its
    entry is the bell, casemgr's own notice of the escalated task carries the e-mail."""
    customer = Customer(number="C-100", name="Globex", credit_limit=Decimal("20000.00"))
    db.session.add_all(
        [
            customer,
            Invoice(
                customer=customer,
                number="INV-1",
                invoice_date=TODAY - timedelta(days=20),
                due_date=TODAY + timedelta(days=10),
                amount=Decimal("8500.00"),
            ),
        ]
    )
    db.session.commit()
    order = {
        "order_number": "SO-1001",
        "customer_number": "C-100",
        "amount": "12500.00",
        "reason": "over_limit",
    }
    engine.start_case("credit_hold_release", order, user("spec"))
    drain_due_timers(datetime.now(UTC) + timedelta(days=3))
    send_pending()
    for name in ("mgr", "mgr2", "dual"):
        assert [n.kind for n in bell(name)] == ["escalation"]
        [mail] = smtp.to(f"{name}@example.com")
        assert "Escalation: Decide the held order" in mail


# --- notifications other code makes -----------------------------------------------------


def test_a_diagrams_message_follows_the_recipients_preferences(ctx, smtp):
    add_ledger()
    choose("rep", other=(False, "now"))
    case = resolved("500.00", who="spec")
    engine.complete_task(
        open_task(case, "specialist_approval").id, {"decision": "approve"}, user("spec2")
    )
    assert bell("rep") == []  # the rep chose e-mail only
    send_pending()
    [mail] = smtp.to("rep@example.com")
    assert "credit memo of 500.00 posted" in mail


def test_a_broken_promise_is_told_once_by_each_persons_choice(ctx, smtp):
    add_ledger()
    customer = db.session.execute(db.select(Customer).filter_by(number=CUSTOMER)).scalar_one()
    promise = PromiseToPay(
        customer=customer,
        amount=Decimal("1000.00"),
        promised_date=TODAY - timedelta(days=1),
        status="broken",
    )
    db.session.add(promise)
    db.session.flush()
    choose("spec", promise_broken=(True, "now"))
    choose("rep", promise_broken=(False, "now"))
    notify_broken_promise(promise)
    notify_broken_promise(promise)  # a second call in the same transaction adds nothing
    db.session.commit()
    send_pending()
    assert len(smtp.to("spec@example.com")) == 1 and len(smtp.to("rep@example.com")) == 1
    assert "Broken promise to pay: Globex Retail" in smtp.to("rep@example.com")[0]
    assert len(bell("spec", "promise_broken")) == 1 and bell("rep") == []
    assert len(bell("spec2", "promise_broken")) == 1  # the default: in the app
    notify_broken_promise(promise)  # even in a later transaction: no second e-mail
    db.session.commit()
    assert send_pending().sent == 0


def test_rows_the_caller_added_are_reused_not_doubled(ctx):
    add_ledger()
    customer = db.session.execute(db.select(Customer).filter_by(number=CUSTOMER)).scalar_one()
    promise = PromiseToPay(
        customer=customer, amount=Decimal("10.00"), promised_date=TODAY, status="broken"
    )
    db.session.add(promise)
    db.session.add(Notification(user_id=user("spec").id, kind="promise_broken", message="x"))
    notify_broken_promise(promise, [user("spec")])
    db.session.commit()
    assert [n.message for n in bell("spec")] == ["x"]


# --- failures never break a step ------------------------------------------------------------


def test_a_mail_server_that_is_down_keeps_the_mail_for_later(ctx):
    add_ledger()
    choose("spec2", task=(False, "now"))
    ctx.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=free_port())  # nobody listens
    case = start_dispute("spec")
    assert case.id is not None and open_task(case, "research_dispute")
    result = send_pending()
    assert (result.sent, result.failed) == (0, 1)
    [row] = outbox()
    assert row.attempts == 1 and row.sent_at is None and "Refused" in row.last_error
    assert row.available_at > datetime.now(UTC)  # retried later, with backoff


def test_one_malformed_address_does_not_stop_the_others(ctx, smtp):
    add_ledger()
    find_user("spec2").email = "spec2@example.com\nBcc: everyone@example.com"
    db.session.commit()
    choose("spec2", task=(False, "now"))
    choose("dual", task=(False, "now"))
    start_dispute("spec")
    result = send_pending()
    assert (result.sent, result.failed) == (1, 1)
    assert len(smtp) == 1 and smtp.to("dual@example.com")
    bad = next(r for r in outbox() if r.sent_at is None)
    assert bad.attempts >= 6 and bad.last_error  # not retried: it can never be sent


def test_notices_that_cannot_be_worked_out_leave_the_step_done(ctx, monkeypatch):
    add_ledger()
    choose("spec2", task=(True, "now"))

    def broken(*_args, **_kwargs):
        raise RuntimeError("a defect in working out who hears of it")

    monkeypatch.setattr("casemgr.notify.events._task_notices", broken)
    case = start_dispute("spec")
    db.session.expire_all()
    assert open_task(case, "research_dispute").state == "open"  # the step is committed
    assert bell("spec2") == [] and outbox() == []


def test_notices_that_cannot_be_written_leave_the_step_done(ctx, monkeypatch):
    add_ledger()
    choose("spec2", task=(True, "now"))

    def broken(notice, _choice):
        db.session.add(Notification(user_id=notice.user.id, kind=None, message="x"))
        db.session.flush()  # NOT NULL kind: the savepoint is rolled back, not the step

    monkeypatch.setattr("casemgr.notify.dispatch.enqueue", broken)
    case = start_dispute("spec")
    db.session.expire_all()
    assert open_task(case, "research_dispute").state == "open"
    assert bell("spec2") == [] and outbox() == []


def test_without_a_server_the_mail_waits(ctx):
    add_ledger()
    choose("spec2", task=(False, "now"))
    ctx.config.update(SMTP_HOST="")
    start_dispute("spec")
    assert send_pending().waiting == 1 and outbox()[0].sent_at is None


def test_a_payment_that_settles_nothing_notifies_nobody(ctx, smtp):
    """Sanity: ledger writes alone (no engine step, no notification) queue nothing."""
    add_ledger()
    invoice = db.session.execute(db.select(Invoice).filter_by(number=INVOICE)).scalar_one()
    db.session.add(
        Payment(
            customer=invoice.customer,
            reference="LBX-1",
            received_date=TODAY,
            amount=Decimal("1.00"),
            method="lockbox",
            invoice=invoice,
        )
    )
    db.session.commit()
    assert outbox() == [] and send_pending().sent == 0


# --- the preferences page -------------------------------------------------------------------


def web(app, name):
    client = app.test_client()
    response = client.post("/login", data={"username": name, "password": "correct-horse-1"})
    assert response.status_code == 302
    return client


def test_the_preferences_page_saves_each_choice(app):
    client = web(app, "spec2")
    page = client.get("/preferences").get_data(as_text=True)
    assert 'name="task-email"' in page and "no e-mail address" in page
    response = client.post(
        "/preferences",
        data={"task-in_app": "1", "task-email": "day", "decision-email": "now"},
    )
    assert response.status_code == 302
    page = client.get("/preferences").get_data(as_text=True)
    assert '<option value="day" selected>' in page
    with app.app_context():
        from casemgr.notify.prefs import choices_for

        mine = choices_for([find_user("spec2").id])[find_user("spec2").id]
        assert mine["task"] == Choice(True, "day")
        assert mine["decision"] == Choice(False, "now")
        assert mine["other"] == Choice(False, "none")  # unticked: nothing in the app


def test_a_tampered_preferences_post_is_a_422_not_a_500(app):
    client = web(app, "spec")
    response = client.post("/preferences", data={"task-email": "fax"})
    assert response.status_code == 422
    assert "choose one of the e-mail options" in response.get_data(as_text=True)

"""Background work on SQLite: the Celery tasks called in-process, and the embedded worker.

The same task functions run under real Celery workers on PostgreSQL in tests/integration.
"""

from __future__ import annotations

import time
from datetime import date, timedelta
from decimal import Decimal
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from casemgr import celery_app, jobs
from casemgr.accounts import find_user
from casemgr.background import ledger_history, past_due, referrals
from casemgr.background.status import background_state, record_heartbeat
from casemgr.engine import cases as engine
from casemgr.engine import clock, timers
from casemgr.extensions import db
from casemgr.ledger import aging, operations
from casemgr.models import (
    AccountNote,
    AgingSnapshot,
    Case,
    CaseEvent,
    Customer,
    DsoHistory,
    Heartbeat,
    Invoice,
    JobFailure,
    Notification,
    PromiseToPay,
    ReportDelivery,
)
from tests.conftest import PASSWORD
from tests.credit_data import INTAKE, review


@pytest.fixture
def eager(ctx):
    """Tasks sent with apply_async run at once, here, instead of going to a broker."""
    conf = celery_app.celery.conf
    saved = conf.task_always_eager
    conf.task_always_eager = True
    yield ctx
    conf.task_always_eager = saved


def waiting_case(days_ago: int = 11) -> Case:
    """A credit application waiting on the customer since ``days_ago``: its 10-day reminder
    timer is due now when days_ago > 10."""
    with clock.as_of(clock.now() - timedelta(days=days_ago)):
        case = engine.start_case("credit_application", dict(INTAKE), find_user("rep"))
        task = [t for t in case.tasks if t.state == "open"][0]
        return engine.complete_task(task.id, review(action="request_info"), find_user("spec"))


def fired(case_id: int) -> int:
    query = db.select(db.func.count(CaseEvent.id)).where(
        CaseEvent.case_id == case_id, CaseEvent.kind == "timer_fired"
    )
    return db.session.execute(query).scalar_one()


def open_task_names(case_id: int) -> list[str]:
    case = db.session.get(Case, case_id)
    db.session.refresh(case)
    return sorted(t.name for t in case.tasks if t.state == "open")


def add_customer(number="C-900", rep="rep", invoices=(("INV-9001", "1500.00", 45),)):
    customer = Customer(
        number=number, name=f"Customer {number}", credit_limit=Decimal("50000"), sales_rep=rep
    )
    db.session.add(customer)
    db.session.flush()
    for invoice, amount, days_past in invoices:
        due = date.today() - timedelta(days=days_past)
        db.session.add(
            Invoice(
                customer=customer,
                number=invoice,
                invoice_date=due - timedelta(days=30),
                due_date=due,
                amount=Decimal(amount),
            )
        )
    db.session.commit()
    return customer


def web_client(app, name):
    client = app.test_client()
    response = client.post("/login", data={"username": name, "password": PASSWORD})
    assert response.status_code == 302
    return client


# --- timers ----------------------------------------------------------------------------------


def test_the_tick_wakes_a_due_case_once_and_records_its_heartbeat(eager):
    case = waiting_case()
    result = jobs.wake_due_timers.apply().get()
    assert result["advanced"] == 1
    assert open_task_names(case.id) == ["await_customer_info", "send_reminder"]
    assert jobs.wake_due_timers.apply().get()["advanced"] == 0
    assert fired(case.id) == 1
    tick = db.session.get(Heartbeat, "tick")
    assert tick is not None and tick.detail["advanced"] == 0


def test_a_timer_not_yet_due_is_left_alone(eager):
    case = waiting_case(days_ago=3)
    assert jobs.wake_due_timers.apply().get()["advanced"] == 0
    assert fired(case.id) == 0


def test_a_backlog_calls_helpers_and_every_case_moves_once(eager, monkeypatch):
    monkeypatch.setenv("CASEMGR_TIMER_BATCH", "2")
    ids = [waiting_case().id for _ in range(5)]
    result = jobs.wake_due_timers.apply().get()
    assert result["helpers"] == 2  # five due, two per worker: the tick and two helpers
    assert [fired(i) for i in ids] == [1] * 5


def test_helpers_grow_with_the_backlog_up_to_the_fanout():
    assert jobs.helpers_for(due=150, batch=200, fanout=8) == 0
    assert jobs.helpers_for(due=201, batch=200, fanout=8) == 1
    assert jobs.helpers_for(due=10_000, batch=200, fanout=8) == 8


def captured_sql(run) -> tuple[str, object]:
    """The last statement ``run()`` sent to the database, with its parameters."""
    from sqlalchemy import event

    seen = []

    def capture(_conn, _cursor, statement, parameters, _context, _many):
        seen.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", capture)
    try:
        run()
    finally:
        event.remove(db.engine, "before_cursor_execute", capture)
    return seen[-1]


def test_the_claim_reads_only_the_due_timer_index(ctx):
    waiting_case()
    statement, params = captured_sql(lambda: timers.claim_next_due(clock.now()))
    conn = db.session.connection()
    plan = str(conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params).all())
    assert "ix_cases_due_timers" in plan and "SCAN cases" not in plan


def test_a_case_that_stays_due_after_waking_does_not_hold_up_the_drain(ctx, monkeypatch):
    stuck, other = waiting_case(), waiting_case()
    real_wake = timers.wake_case

    def wake(case_id, moment):
        return True if case_id == stuck.id else real_wake(case_id, moment)

    monkeypatch.setattr(timers, "wake_case", wake)
    result = timers.drain_due_timers()
    assert fired(other.id) == 1
    assert result.advanced == 2 and result.examined == 3  # stuck: claimed twice, then skipped


def test_a_case_failing_unexpectedly_is_stopped_and_the_others_still_fire(ctx, monkeypatch):
    bad, good = waiting_case(), waiting_case()
    real_wake = timers.wake_case

    def wake(case_id, moment):
        if case_id == bad.id:
            raise RuntimeError("boom")
        return real_wake(case_id, moment)

    monkeypatch.setattr(timers, "wake_case", wake)
    assert timers.drain_due_timers().advanced == 1
    assert fired(good.id) == 1
    bad_case = db.session.get(Case, bad.id)
    assert "RuntimeError: boom" in bad_case.broken
    assert [c.id for c in timers.broken_cases()] == [bad.id]
    monkeypatch.setattr(timers, "wake_case", real_wake)
    assert timers.retry_broken_case(bad.id, "admin")
    assert timers.drain_due_timers().advanced == 1
    assert fired(bad.id) == 1


def test_a_database_error_is_retried_then_kept_for_the_admin(eager, monkeypatch):
    waiting_case()
    calls = []

    def down(case_id, moment):
        calls.append(case_id)
        raise OperationalError("UPDATE cases", {}, Exception("server closed the connection"))

    monkeypatch.setattr(timers, "wake_case", down)
    result = jobs.wake_due_timers.apply()
    assert isinstance(result.result, OperationalError)
    assert len(calls) == 1 + jobs.TICK_RETRY["max_retries"]
    failure = db.session.execute(db.select(JobFailure)).scalar_one()
    assert failure.task_name == "casemgr.wake_due_timers"
    assert "server closed the connection" in failure.error
    assert db.session.execute(db.select(Case.broken)).scalar() is None  # not the case's fault


# --- promises --------------------------------------------------------------------------------


def broken_promise_setup(case_id=None):
    customer = add_customer()
    promise = PromiseToPay(
        customer=customer,
        amount=Decimal("500.00"),
        promised_date=date.today() - timedelta(days=2),
        status="open",
        case_id=case_id,
    )
    db.session.add(promise)
    db.session.commit()
    return customer, promise


def notifications(kind: str) -> list[Notification]:
    return list(db.session.execute(db.select(Notification).filter_by(kind=kind)).scalars())


def test_a_broken_promise_notifies_the_rep_and_specialists_once(eager):
    case = waiting_case(days_ago=1)
    customer, promise = broken_promise_setup(case.id)
    assert jobs.review_promises.apply().get() == {"broken": [promise.id]}
    db.session.refresh(promise)
    assert promise.status == "broken"
    notified = sorted(find_user_name(n.user_id) for n in notifications("promise_broken"))
    assert notified == ["dual", "rep", "spec", "spec2"]  # the rep and every AR specialist
    note = db.session.execute(db.select(AccountNote).filter_by(customer_id=customer.id)).scalar()
    assert "Promise to pay broken" in note.text and "500.00" in note.text
    events = db.session.execute(
        db.select(CaseEvent).filter_by(case_id=case.id, kind="promise_broken")
    ).scalars()
    assert [e.detail["promise_id"] for e in events] == [promise.id]
    assert jobs.review_promises.apply().get() == {"broken": []}
    assert len(notifications("promise_broken")) == 4


def find_user_name(user_id: int) -> str:
    from casemgr.models import User

    return db.session.get(User, user_id).username


def test_a_kept_promise_raises_nothing(eager):
    customer, promise = broken_promise_setup()
    operations.post_payment(
        customer.number,
        "500.00",
        received_date=date.today() - timedelta(days=3),
        invoice_number="INV-9001",
    )
    promise.created_at = clock.now() - timedelta(days=5)
    db.session.commit()
    jobs.review_promises.apply().get()
    db.session.refresh(promise)
    assert promise.status == "kept" and notifications("promise_broken") == []


# --- nightly ledger history --------------------------------------------------------------------


def test_the_nightly_job_keeps_each_day_once_with_that_days_figures(eager):
    add_customer()
    today = date.today()
    result = jobs.nightly_ledger_history.apply(kwargs={"as_of": today.isoformat()}).get()
    assert len(result["days"]) == ledger_history.BACKFILL_DAYS
    yesterday = today - timedelta(days=1)
    snap = db.session.execute(db.select(AgingSnapshot).filter_by(as_of=yesterday)).scalar_one()
    expected = aging.aging_report(yesterday)
    assert snap.total == expected.total == Decimal("1500.00")
    assert snap.days_31_60 == expected.totals["31-60"] == Decimal("1500.00")
    assert snap.customers_past_due == 1
    dso = db.session.execute(db.select(DsoHistory).filter_by(as_of=yesterday)).scalar_one()
    assert dso.period_days == 90 and dso.ar_balance == Decimal("1500.00")
    assert jobs.nightly_ledger_history.apply().get() == {"days": []}  # a rerun adds nothing
    tomorrow = (today + timedelta(days=1)).isoformat()
    assert jobs.nightly_ledger_history.apply(kwargs={"as_of": tomorrow}).get() == {
        "days": [today.isoformat()]
    }


# --- weekly past-due report --------------------------------------------------------------------


@pytest.fixture
def outbox(ctx, tmp_path):
    ctx.config["MAIL_OUTBOX"] = str(tmp_path / "outbox")
    rep = find_user("rep")
    rep.email = "rep@example.com"
    db.session.commit()
    return tmp_path / "outbox"


def test_each_rep_gets_the_weekly_report_once_per_week(eager, outbox):
    add_customer()
    add_customer("C-901", rep="mgr", invoices=(("INV-9101", "80.00", 10),))
    add_customer("C-902", rep="rep", invoices=(("INV-9201", "99.00", -5),))  # not yet due
    monday = date.today() - timedelta(days=date.today().weekday())
    result = jobs.weekly_past_due_reports.apply(kwargs={"as_of": monday.isoformat()}).get()
    assert result == {"sent": ["mgr", "rep"]}
    mails = sorted(outbox.glob("*.eml"))
    assert len(mails) == 1  # mgr has no e-mail address: the page and the bell only
    mail = message_from_bytes(mails[0].read_bytes(), policy=policy.default)
    assert mail["To"] == "rep@example.com" and "1 invoice(s)" in mail["Subject"]
    text = mail.get_body(("plain",)).get_content()
    assert "INV-9001" in text and "1,500.00" in text and "INV-9201" not in text
    assert "/reports/past-due?sales_rep=rep" in text
    deliveries = db.session.execute(db.select(ReportDelivery).order_by("recipient")).scalars()
    assert [(d.recipient, d.email, d.items) for d in deliveries] == [
        ("mgr", None, 1),
        ("rep", "rep@example.com", 1),
    ]
    assert len(notifications("report")) == 2
    thursday = (monday + timedelta(days=3)).isoformat()
    assert jobs.weekly_past_due_reports.apply(kwargs={"as_of": thursday}).get() == {"sent": []}
    assert len(list(outbox.glob("*.eml"))) == 1


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_report_goes_through_a_real_smtp_server(ctx, outbox):
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Sink

    received = []

    class Handler(Sink):
        async def handle_DATA(self, server, session, envelope):  # noqa: N802
            received.append(envelope)
            return "250 OK"

    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        ctx.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=str(port))
        add_customer()
        assert [d.recipient for d in past_due.send_weekly_reports(date.today())] == ["rep"]
    finally:
        controller.stop()
    assert [e.rcpt_tos for e in received] == [["rep@example.com"]]
    assert b"INV-9001" in received[0].content
    assert not outbox.exists()


def test_the_past_due_page_shows_a_rep_their_own_customers_only(app):
    with app.app_context():
        add_customer()
        add_customer("C-901", rep="mgr", invoices=(("INV-9101", "80.00", 10),))
    page = web_client(app, "rep").get("/reports/past-due?sales_rep=mgr").get_data(as_text=True)
    assert "INV-9001" in page and "INV-9101" not in page
    summary = web_client(app, "ctrl").get("/reports/past-due").get_data(as_text=True)
    assert 'data-rep="mgr"' in summary and 'data-rep="rep"' in summary
    other = web_client(app, "ctrl").get("/reports/past-due?sales_rep=mgr").get_data(as_text=True)
    assert "INV-9101" in other and "INV-9001" not in other
    assert web_client(app, "ctrl").get("/reports/past-due?as_of=soon").status_code == 422
    assert web_client(app, "ctrl").get("/reports/past-due?sales_rep=nobody").status_code == 404
    assert web_client(app, "owner").get("/reports/past-due").status_code == 200


# --- referrals -------------------------------------------------------------------------------


def referral_cases() -> list[Case]:
    from casemgr.models import CaseType

    query = db.select(Case).join(CaseType).where(CaseType.key == "collection_referral")
    return list(db.session.execute(query).scalars())


def test_automatic_referrals_are_off_unless_configured(eager):
    add_customer(invoices=(("INV-9001", "1500.00", 200),))
    assert jobs.auto_start_referrals.apply().get() == {"started": []}
    assert referral_cases() == []


def test_an_account_past_the_threshold_is_referred_once(eager):
    eager.config["REFERRAL_AFTER_DAYS"] = "90"
    add_customer(invoices=(("INV-9001", "1500.00", 100),))
    add_customer("C-901", invoices=(("INV-9101", "80.00", 60),))
    started = jobs.auto_start_referrals.apply().get()["started"]
    [case] = referral_cases()
    assert started == [case.id]
    assert case.customer_number == "C-900" and case.data["trigger"] == "over_90_days"
    assert case.started_by is None
    assert [t.role for t in case.tasks if t.state == "open"] == ["ar_specialist"]
    assert jobs.auto_start_referrals.apply().get() == {"started": []}


def test_two_broken_promises_refer_an_account_under_the_day_threshold(ctx):
    ctx.config["REFERRAL_AFTER_DAYS"] = "120"
    customer = add_customer(invoices=(("INV-9001", "1500.00", 20),))
    for days in (30, 10):
        db.session.add(
            PromiseToPay(
                customer=customer,
                amount=Decimal("100"),
                promised_date=date.today() - timedelta(days=days),
                status="broken",
            )
        )
    db.session.commit()
    referrals.auto_start_referrals(date.today())
    assert [c.data["trigger"] for c in referral_cases()] == ["broken_promises"]


def test_the_referral_rules_by_hand():
    rule = referrals.ReferralRules(after_days=90, min_balance=Decimal("100"))
    today = date(2024, 6, 30)
    facts = [
        aging.InvoiceFacts("A", "1", date(2024, 1, 1), date(2024, 3, 1), Decimal("500")),
        aging.InvoiceFacts("B", "2", date(2024, 1, 1), date(2024, 3, 1), Decimal("50")),
        aging.InvoiceFacts("C", "3", date(2024, 5, 1), date(2024, 6, 1), Decimal("900")),
    ]
    found = referrals.candidates(facts, today, rule, {"C": 2})
    assert [(c.customer_number, c.trigger) for c in found] == [
        ("A", "over_120_days"),
        ("C", "broken_promises"),
    ]


# --- payment messages --------------------------------------------------------------------------


def test_a_balance_cleared_by_a_credit_memo_ends_the_referral_wait(eager):
    add_customer(invoices=(("INV-9001", "1500.00", 100),))
    case = engine.start_case(
        "collection_referral",
        {"customer_number": "C-900", "trigger": "over_90_days"},
        find_user("spec"),
    )
    task = [t for t in case.tasks if t.state == "open" and t.name == "final_demand"][0]
    case = engine.complete_task(
        task.id,
        {"letter_sent_on": date.today().isoformat(), "letter_channel": "registered_mail"},
        find_user("spec"),
    )
    assert case.awaiting == ",payment_received,"
    assert jobs.deliver_payment_messages.apply().get() == []  # still owes
    operations.post_credit_memo("C-900", "INV-9001", "1500.00", "settled")
    db.session.commit()
    assert jobs.deliver_payment_messages.apply().get() == [case.id]
    db.session.refresh(case)
    assert (case.status, case.outcome) == ("completed", "paid_in_full")


# --- the admin page and the health endpoint ---------------------------------------------------


def test_the_admin_sees_the_background_state_and_retries_a_failed_job(app, monkeypatch, tmp_path):
    with app.app_context():
        waiting_case()
        record_heartbeat("beat")
        db.session.add(
            JobFailure(
                task_name="casemgr.review_promises",
                args=[],
                kwargs={"as_of": "2024-01-01"},
                error="OperationalError: database is locked",
            )
        )
        db.session.commit()
    sent = []

    class Sent:
        id = "abc-123"

    def send_task(name, args=None, kwargs=None):
        sent.append((name, args, kwargs))
        return Sent()

    monkeypatch.setattr(celery_app.celery, "send_task", send_task)
    broker = f"sqla+sqlite:///{tmp_path / 'broker.sqlite'}"
    monkeypatch.setattr(celery_app.celery.conf, "broker_url", broker)
    client = web_client(app, "admin")
    page = client.get("/admin/background").get_data(as_text=True)
    assert 'data-testid="due-timers">1<' in page
    assert 'data-testid="queue-length">0 waiting<' in page
    assert "database is locked" in page and "never" in page  # no worker ran a tick yet
    assert 'data-testid="background-warning"' in page
    with app.app_context():
        failure_id = db.session.execute(db.select(JobFailure.id)).scalar_one()
    response = client.post(f"/admin/background/failures/{failure_id}/retry")
    assert response.status_code == 302
    assert sent == [("casemgr.review_promises", [], {"as_of": "2024-01-01"})]
    again = client.post(f"/admin/background/failures/{failure_id}/retry")
    assert again.status_code == 404 and len(sent) == 1
    assert "Recently retried" in client.get("/admin/background").get_data(as_text=True)


def test_only_an_admin_sees_the_background_page(app):
    assert web_client(app, "mgr").get("/admin/background").status_code == 403
    assert app.test_client().get("/admin/background").status_code == 302  # to the login


def test_the_state_reports_an_unreachable_broker(ctx, monkeypatch):
    monkeypatch.setattr(celery_app.celery.conf, "broker_url", "redis://:s3cret@127.0.0.1:1/0")
    state = background_state()
    assert state.mode == "scale-out" and state.broker == "redis://:***@127.0.0.1:1/0"
    assert state.queue_length is None and "refused" in state.queue_error.lower()


def test_the_health_endpoint_needs_no_login_and_says_when_the_database_is_gone(app, monkeypatch):
    client = app.test_client()
    ok = client.get("/healthz")
    assert ok.status_code == 200 and ok.get_json()["status"] == "ok"

    def down(*_a, **_k):
        raise OperationalError("SELECT 1", {}, Exception("no route to host"))

    monkeypatch.setattr(db.session, "execute", down)
    bad = client.get("/healthz")
    assert bad.status_code == 503 and bad.get_json()["database"] == "unreachable"


def test_beat_records_its_heartbeat_when_it_sends_a_tick(ctx, monkeypatch):
    monkeypatch.setattr(celery_app, "_flask_app", ctx)
    monkeypatch.setattr(celery_app, "_in_beat", True)
    celery_app._beat_heartbeat(sender="casemgr.review_promises")
    assert db.session.get(Heartbeat, "beat") is None
    celery_app._beat_heartbeat(sender=celery_app.TICK_TASK)
    db.session.expire_all()
    assert db.session.get(Heartbeat, "beat") is not None


def test_the_broker_housekeeping_deletes_delivered_messages_only(ctx, monkeypatch, tmp_path):
    from datetime import datetime

    from kombu.transport.sqlalchemy.models import metadata
    from sqlalchemy import create_engine, text

    path = tmp_path / "broker.sqlite"
    monkeypatch.setenv("CELERY_BROKER_URL", f"sqla+sqlite:///{path}")
    engine = create_engine(f"sqlite:///{path}")
    metadata.create_all(engine)
    old = datetime.now() - timedelta(hours=3)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO kombu_queue (id, name) VALUES (1, 'celery')"))
        for visible in (0, 1):
            conn.execute(
                text(
                    'INSERT INTO kombu_message (visible, "timestamp", payload, version, queue_id)'
                    " VALUES (:v, :t, '{}', 1, 1)"
                ),
                {"v": visible, "t": old},
            )
    assert jobs.broker_housekeeping.apply().get() == 1
    with engine.connect() as conn:
        assert conn.execute(text("SELECT visible FROM kombu_message")).scalars().all() == [1]
    engine.dispose()


# --- the embedded worker -----------------------------------------------------------------------


def test_the_embedded_worker_is_real_celery_with_beat_on_a_sqlite_broker(
    app, tmp_path, monkeypatch
):
    """What `make run` starts: one `celery worker --beat --pool solo` child, no server."""
    from casemgr.worker import start_embedded_worker, stop_embedded_worker

    with app.app_context():
        case_id = waiting_case().id
    monkeypatch.setenv("CELERY_BROKER_URL", f"sqla+sqlite:///{tmp_path / 'broker.sqlite'}")
    monkeypatch.setenv("CASEMGR_TIMER_TICK_SECONDS", "1")
    monkeypatch.setenv("CASEMGR_WORKER_LOGLEVEL", "WARNING")
    process = start_embedded_worker(app, state_dir=tmp_path / "state")
    try:
        deadline = time.monotonic() + 60
        with app.app_context():
            while time.monotonic() < deadline and fired(case_id) == 0:
                assert process.poll() is None, "the embedded worker exited"
                time.sleep(0.5)
                db.session.remove()
            assert fired(case_id) == 1
            beat = db.session.get(Heartbeat, "beat")
            assert beat is not None  # beat ran inside the worker (-B) and recorded its ticks
    finally:
        stop_embedded_worker(process)
    assert process.returncode is not None
    assert Path(tmp_path / "state" / "celerybeat-schedule").exists() or any(
        (tmp_path / "state").glob("celerybeat-schedule*")
    )


# --- the schedule ------------------------------------------------------------------------------


def test_the_beat_schedule_wakes_timers_every_five_seconds_and_refers_only_when_asked(
    monkeypatch,
):
    schedule = celery_app.beat_schedule()
    tick = schedule["wake-due-timers"]
    assert tick["task"] == celery_app.TICK_TASK
    assert tick["schedule"].run_every == timedelta(seconds=5)
    assert tick["options"]["expires"] == 10  # a tick nobody took in time is dropped
    assert {e["task"] for e in schedule.values()} >= {
        "casemgr.review_promises",
        "casemgr.nightly_ledger_history",
        "casemgr.weekly_past_due_reports",
        "casemgr.deliver_payment_messages",
        "casemgr.send_email_outbox",
    }
    assert "auto-start-referrals" not in schedule
    monkeypatch.setenv("CASEMGR_REFERRAL_AFTER_DAYS", "120")
    assert "auto-start-referrals" in celery_app.beat_schedule()


def test_the_outbox_job_runs_casemgr_notify_sender(eager):
    assert jobs.send_email_outbox.apply().get() == {"sent": 0, "failed": 0, "digests": 0}

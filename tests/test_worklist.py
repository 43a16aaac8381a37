"""Work management in the engine: follow-up dates, priority, delegation with the owner kept
informed, reassigning everything of a person who is out, saved views, approval decisions."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from casemgr import forms
from casemgr.accounts import find_user
from casemgr.engine import cases as engine
from casemgr.engine import clock, worklist
from casemgr.engine.errors import Conflict, Forbidden, Invalid, NotFound
from casemgr.engine.inbox import inbox, parse_params
from casemgr.extensions import db
from casemgr.models import CaseEvent, Customer, Invoice, Notification, SavedView, TaskRecord
from tests.credit_data import INTAKE, review

# --- helpers ----------------------------------------------------------------------------------


def u(name):
    return find_user(name)


def review_task(**data) -> int:
    case = engine.start_case("credit_application", dict(INTAKE, **data), u("rep"))
    return next(t.id for t in case.tasks if t.state == "open")


def approval(recommender="spec", limit="20000.00", **data) -> int:
    case = engine.complete_task(review_task(**data), review(limit), u(recommender))
    return next(t.id for t in case.tasks if t.state == "open")


def task(task_id) -> TaskRecord:
    db.session.expire_all()
    return db.session.get(TaskRecord, task_id)


def events(task_id, kind):
    row = task(task_id)
    return [
        e
        for e in db.session.execute(
            db.select(CaseEvent).where(CaseEvent.case_id == row.case_id, CaseEvent.kind == kind)
        ).scalars()
    ]


def notes(name) -> list[str]:
    who = u(name)
    return [
        n.message
        for n in db.session.execute(
            db.select(Notification).where(Notification.user_id == who.id).order_by(Notification.id)
        ).scalars()
    ]


def inbox_ids(name, **args) -> list[int]:
    params = parse_params(args)[0]
    return [r.id for r in inbox(u(name), params, clock.now())[0]]


def later(days=3):
    return clock.now() + timedelta(days=days)


# --- follow-up dates --------------------------------------------------------------------------


def test_a_follow_up_date_claims_the_task_and_hides_it_until_then(ctx):
    task_id = review_task()
    worklist.set_follow_up(task_id, later(), u("spec"), "call back Thursday")
    row = task(task_id)
    assert row.assignee.username == "spec" and row.follow_up_at is not None
    assert task_id not in inbox_ids("spec")
    assert task_id not in inbox_ids("spec2")  # claimed, so no longer in the shared queue
    assert task_id in inbox_ids("spec", follow_up="only")
    (ev,) = events(task_id, "follow_up_set")
    assert ev.actor == "spec" and ev.detail["reason"] == "call back Thursday"
    with clock.as_of(later(4)):
        assert task_id in inbox_ids("spec")


def test_clearing_a_follow_up_shows_the_task_again(ctx):
    task_id = review_task()
    worklist.set_follow_up(task_id, later(), u("spec"))
    worklist.set_follow_up(task_id, None, u("spec"), "customer called early")
    assert task_id in inbox_ids("spec")
    assert events(task_id, "follow_up_cleared")[0].detail["reason"] == "customer called early"


@pytest.mark.parametrize("days", [-1, 0, 400])
def test_a_follow_up_in_the_past_or_beyond_a_year_is_refused(ctx, days):
    task_id = review_task()
    with pytest.raises(Invalid):
        worklist.set_follow_up(task_id, clock.now() + timedelta(days=days), u("spec"))
    db.session.rollback()
    assert task(task_id).assignee is None and task(task_id).follow_up_at is None


def test_a_follow_up_on_someone_elses_or_a_forbidden_task_is_refused(ctx):
    task_id = review_task()
    engine.claim_task(task_id, u("spec2"))
    with pytest.raises(Conflict):
        worklist.set_follow_up(task_id, later(), u("spec"))
    with pytest.raises(Forbidden):
        worklist.set_follow_up(task_id, later(), u("rep"))
    dual_approval = approval(recommender="dual")
    with pytest.raises(Forbidden, match="four-eyes"):
        worklist.set_follow_up(dual_approval, later(), u("dual"))


@pytest.mark.parametrize(
    ("raw", "ok"),
    [("2026-05-07", True), ("2026-05-07T09:30:00Z", True), ("", True), (None, True),
     ("next week", False), (5, False), ("2026-13-40", False)],
)  # fmt: skip
def test_follow_up_dates_parse_from_a_day_or_a_time(raw, ok):
    if ok:
        moment = worklist.parse_follow_up(raw)
        assert moment is None or moment.tzinfo is not None
    else:
        with pytest.raises(Invalid):
            worklist.parse_follow_up(raw)


# --- priority ---------------------------------------------------------------------------------


def test_the_assignee_or_a_manager_sets_the_priority_with_a_reason(ctx):
    task_id = review_task()
    with pytest.raises(Forbidden):
        worklist.set_priority(task_id, "urgent", u("spec"))  # not theirs yet
    engine.claim_task(task_id, u("spec"))
    worklist.set_priority(task_id, "urgent", u("spec"), "customer escalated")
    assert task(task_id).priority == 4
    worklist.set_priority(task_id, 1, u("mgr"))
    assert task(task_id).priority == 1
    kinds = [(e.actor, e.detail["now"]) for e in events(task_id, "task_priority")]
    assert kinds == [("spec", "urgent"), ("mgr", "low")]
    with pytest.raises(Invalid):
        worklist.set_priority(task_id, "asap", u("mgr"))


# --- delegation -------------------------------------------------------------------------------


def test_delegating_keeps_the_owner_informed_until_the_delegate_completes(ctx):
    task_id = review_task()
    engine.claim_task(task_id, u("spec"))
    worklist.delegate(task_id, "spec2", u("spec"), "I am out on Friday")
    row = task(task_id)
    assert (row.assignee.username, row.delegated_from.username) == ("spec2", "spec")
    assert task_id in inbox_ids("spec2") and task_id in inbox_ids("spec", delegated="1")
    assert notes("spec2") == ["Spec delegated “Review credit and recommend a limit” to you: "
                              "I am out on Friday"]  # fmt: skip
    (ev,) = events(task_id, "task_delegated")
    assert ev.actor == "spec" and ev.detail["to"] == "spec2" and ev.detail["owner"] == "spec"
    engine.complete_task(task_id, review(), u("spec2"))
    assert notes("spec") == [
        "Spec2 completed “Review credit and recommend a limit”, which you delegated"
    ]
    assert task(task_id).delegated_from.username == "spec"  # the record stays


def test_a_manager_delegating_tells_the_owner(ctx):
    task_id = review_task()
    engine.claim_task(task_id, u("spec"))
    worklist.delegate(task_id, "spec2", u("mgr"), "spec is in a meeting all day")
    assert notes("spec") == [
        "Mgr delegated your task “Review credit and recommend a limit” to Spec2: spec is in a "
        "meeting all day"
    ]


def test_the_owner_hears_when_the_delegate_hands_the_task_back_to_the_queue(ctx):
    task_id = review_task()
    engine.claim_task(task_id, u("spec"))
    worklist.delegate(task_id, "spec2", u("spec"))
    engine.unclaim_task(task_id, u("spec2"), "not mine")
    row = task(task_id)
    assert row.assignee is None and row.delegated_from is None
    assert notes("spec")[-1] == "“Review credit and recommend a limit”, which you delegated, " \
        "is back in its queue"  # fmt: skip


def test_the_owner_takes_a_delegated_task_back(ctx):
    task_id = review_task()
    engine.claim_task(task_id, u("spec"))
    worklist.delegate(task_id, "spec2", u("spec"))
    with pytest.raises(Forbidden):
        worklist.take_back(task_id, u("ctrl"))
    worklist.take_back(task_id, u("spec"), "back early")
    row = task(task_id)
    assert (row.assignee.username, row.delegated_from) == ("spec", None)
    assert notes("spec2")[-1] == "Spec took back “Review credit and recommend a limit” from you"
    assert events(task_id, "delegation_ended")[0].detail["reason"] == "back early"
    with pytest.raises(Conflict):
        worklist.take_back(task_id, u("spec"))


def test_a_delegate_who_passes_it_on_keeps_the_first_owner(ctx):
    task_id = review_task()
    engine.claim_task(task_id, u("spec"))
    worklist.delegate(task_id, "spec2", u("spec"))
    worklist.delegate(task_id, "dual", u("spec2"), "I am swamped")
    row = task(task_id)
    assert (row.assignee.username, row.delegated_from.username) == ("dual", "spec")
    assert notes("spec")[-1].startswith("Spec2 delegated your task")
    worklist.delegate(task_id, "spec", u("dual"))  # back to the owner: no longer delegated
    assert task(task_id).delegated_from is None
    assert notes("spec")[-1].startswith("Dual gave back")


def test_delegating_needs_the_tasks_role_and_the_four_eyes_rule(ctx):
    task_id = review_task()
    engine.claim_task(task_id, u("spec"))
    for name in ("mgr", "nobody", "spec"):
        with pytest.raises(Invalid):
            worklist.delegate(task_id, name, u("spec"))
    with pytest.raises(Forbidden):
        worklist.delegate(task_id, "dual", u("spec2"))  # not theirs
    approval_id = approval(recommender="dual")
    engine.claim_task(approval_id, u("mgr"))
    with pytest.raises(Invalid, match="four-eyes"):
        worklist.delegate(approval_id, "dual", u("mgr"))
    assert task(approval_id).assignee.username == "mgr"


def test_delegating_from_the_queue_claims_first(ctx):
    task_id = review_task()
    worklist.delegate(task_id, "spec2", u("spec"))
    row = task(task_id)
    assert (row.assignee.username, row.delegated_from.username) == ("spec2", "spec")


# --- a person who is out ----------------------------------------------------------------------


def test_everything_of_a_person_who_is_out_moves_in_one_action(ctx):
    held = [review_task() for _ in range(3)]
    for task_id in held:
        engine.claim_task(task_id, u("spec"))
    other = review_task()
    result = worklist.reassign_all("spec", "spec2", u("mgr"), "out sick")
    assert (result["moved"], result["queued"], result["failed"]) == (3, 0, 0)
    assert all(task(t).assignee.username == "spec2" for t in held)
    assert task(other).assignee is None
    ev = events(held[0], "task_assigned")[-1]
    assert ev.actor == "mgr" and ev.detail["from"] == "spec" and "out sick" in ev.detail["reason"]


def test_what_the_colleague_may_not_take_goes_back_to_its_queue_and_says_why(ctx):
    review_id = review_task()
    engine.claim_task(review_id, u("dual"))
    blocked = approval(recommender="dual")
    engine.claim_task(blocked, u("mgr"))
    engine.assign_task(blocked, "mgr2", u("mgr"))
    second = approval(recommender="spec")
    engine.claim_task(second, u("mgr2"))
    result = worklist.reassign_all("mgr2", "dual", u("mgr"), "holiday")
    assert result["results"][str(second)] == {"status": 200, "to": "dual"}
    back = result["results"][str(blocked)]
    assert back["status"] == 200 and back["to"] is None and "four-eyes" in back["note"]
    assert task(blocked).assignee is None
    assert (result["moved"], result["queued"]) == (1, 1)


def test_reassigning_to_nobody_returns_everything_to_the_queues(ctx):
    held = [review_task() for _ in range(2)]
    for task_id in held:
        engine.claim_task(task_id, u("spec"))
    result = worklist.reassign_all("spec", None, u("admin"), "left the company")
    assert result["queued"] == 2 and all(task(t).assignee is None for t in held)


def test_only_managers_reassign_and_names_must_exist(ctx):
    with pytest.raises(Forbidden):
        worklist.reassign_all("spec", "spec2", u("spec2"), "")
    with pytest.raises(NotFound):
        worklist.reassign_all("ghost", "spec2", u("mgr"), "")
    with pytest.raises(Invalid):
        worklist.reassign_all("spec", "ghost", u("mgr"), "")
    with pytest.raises(Invalid):
        worklist.reassign_all("spec", "spec", u("mgr"), "")


def test_the_workload_lists_who_holds_what(ctx):
    for _ in range(2):
        engine.claim_task(review_task(), u("spec"))
    rows = {p.username: (n, late) for p, n, late in worklist.workload(u("mgr"))}
    assert rows["spec"] == (2, 0) and rows["spec2"] == (0, 0) and "owner" not in rows
    with pytest.raises(Forbidden):
        worklist.workload(u("spec"))


# --- saved views ------------------------------------------------------------------------------


def test_saved_views_are_personal_or_shared_with_a_role(ctx):
    worklist.save_view(u("spec"), "Big ones", {"amount_min": "10000", "sort": "-amount"})
    overdue = {"case_type": "dispute_resolution", "due": "overdue"}
    worklist.save_view(u("mgr"), "Overdue disputes", overdue, "ar_specialist")
    assert [v.name for v in worklist.views_for(u("spec"))] == ["Big ones", "Overdue disputes"]
    assert [v.name for v in worklist.views_for(u("spec2"))] == ["Overdue disputes"]
    assert [v.name for v in worklist.views_for(u("mgr"))] == []  # shared with specialists only
    again = worklist.save_view(u("spec"), "Big ones", {"amount_min": "20000"})
    assert again.params == {"amount_min": "20000"}
    assert db.session.execute(db.select(db.func.count(SavedView.id))).scalar_one() == 2


def test_a_view_is_shared_only_with_ones_own_roles_unless_a_manager(ctx):
    with pytest.raises(Forbidden):
        worklist.save_view(u("spec"), "Mine for managers", {}, "credit_manager")
    worklist.save_view(u("spec"), "Team view", {"due": "today"}, "ar_specialist")
    with pytest.raises(Forbidden):  # someone else's shared view
        worklist.save_view(u("spec2"), "Team view", {"due": "overdue"}, "ar_specialist")


@pytest.mark.parametrize(
    ("name", "params", "field"),
    [("", {}, "name"), ("x" * 81, {}, "name"), ("ok", {"limit": "5"}, "params"),
     ("ok", {"sort": "amount"}, "params"), ("ok", [], "params"), ("ok", {"q": {"a": 1}}, "params")],
)  # fmt: skip
def test_a_view_with_wrong_values_is_refused_by_field(ctx, name, params, field):
    with pytest.raises(Invalid) as err:
        worklist.save_view(u("spec"), name, params)
    assert field in err.value.errors


def test_deleting_views(ctx):
    own = worklist.save_view(u("spec"), "Mine", {})
    shared = worklist.save_view(u("spec"), "Shared", {}, "ar_specialist")
    with pytest.raises(NotFound):
        worklist.delete_view(own.id, u("spec2"))
    with pytest.raises(Forbidden):
        worklist.delete_view(shared.id, u("spec2"))
    worklist.delete_view(shared.id, u("dual"))  # a manager holding the role may
    worklist.delete_view(own.id, u("spec"))
    assert worklist.views_for(u("spec")) == []


# --- approvals --------------------------------------------------------------------------------


def test_each_approval_form_maps_the_inline_actions_to_its_own_choices():
    expected = {
        "credit_approval": ("decision", "approve", "decline", "send_back", "comment"),
        "dispute_credit_approval": ("decision", "approve", "reject", "send_back", "comment"),
        "credit_hold_decision": ("manager_decision", "release", "refuse", None,
                                 "manager_comment"),
        "collection_referral_approval": ("referral_decision", "approve", "reject", None,
                                         "referral_comment"),
        "freight_write_off_approval": ("decision", "approve", None, "send_back", "comment"),
    }  # fmt: skip
    for key, (field, approve, reject, send_back, comment) in expected.items():
        if key not in forms.FORMS:
            continue
        found = worklist.decision_form(key)
        assert found.decision_field == field, key
        assert found.values.get("approve") == approve, key
        assert found.values.get("reject") == reject, key
        assert found.values.get("send_back") == send_back, key
        assert found.comment_field == comment, key
    assert worklist.decision_form("credit_review").decision_field is None
    assert worklist.decision_form(None).data("approve", "") is None


def test_a_batch_of_approvals_fails_only_where_a_rule_says_no(ctx):
    good = [approval() for _ in range(3)]
    blocked = approval(recommender="dual")
    results = worklist.decide([*good, blocked, 999999, "x"], "approve", u("dual"))
    assert all(results[str(t)] == {"status": 200, "action": "approve"} for t in good)
    assert results[str(blocked)]["status"] == 403
    assert "four-eyes" in results[str(blocked)]["error"]
    assert results["999999"]["status"] == 404 and results["x"]["status"] == 404
    assert task(blocked).state == "open" and task(blocked).assignee is None
    assert all(task(t).state == "completed" for t in good)
    assert task(good[0]).case.outcome == "approved"


def test_an_approval_outside_my_authority_fails_alone_and_says_why(ctx):
    high = approval(limit="60000.00", requested_limit="60000.00")  # above 50,000: controller
    normal = approval()
    assert task(high).role == "controller"
    results = worklist.decide([high, normal], "approve", u("mgr"))
    assert results[str(high)]["status"] == 403
    assert results[str(high)]["error"] == (
        "outside your authority: this approval needs the Controller role"
    )
    assert results[str(normal)]["status"] == 200
    assert worklist.decide([high], "approve", u("ctrl"))[str(high)]["status"] == 200


def test_reject_and_send_back_need_the_comment_the_form_asks_for(ctx):
    first, second = approval(), approval()
    results = worklist.decide([first], "reject", u("mgr"))
    assert results[str(first)]["status"] == 422 and "comment" in results[str(first)]["errors"]
    assert task(first).state == "open"
    results = worklist.decide(
        [first, second], "send_back", u("mgr"), "", {str(first): "Need bank statements"}
    )
    assert results[str(first)]["status"] == 200 and results[str(second)]["status"] == 422
    ev = events(first, "task_completed")[-1]
    assert ev.detail["data"]["decision"] == "send_back"
    assert ev.detail["data"]["comment"] == "Need bank statements"
    results = worklist.decide([second], "reject", u("mgr"), "Bureau score too low")
    assert results[str(second)]["status"] == 200
    assert task(second).case.outcome not in ("approved", None)


def held_order_approval() -> int:
    customer = Customer(number="C-100", name="Globex Corporation", credit_limit=Decimal("20000"),
                        terms_days=30, sales_rep="rep")  # fmt: skip
    db.session.add(customer)
    db.session.flush()
    due = clock.now().date() + timedelta(days=10)
    db.session.add(Invoice(customer=customer, number="INV-1", invoice_date=due - timedelta(30),
                           due_date=due, amount=Decimal("10000.00")))  # fmt: skip
    db.session.commit()
    order = {"order_number": "SO-1001", "customer_number": "C-100", "amount": "12500.00",
             "reason": "over_limit"}  # fmt: skip
    case = engine.start_case("credit_hold_release", order, u("spec"))
    review_id = next(t.id for t in case.tasks if t.state == "open")
    case = engine.complete_task(review_id, {"review_action": "release"}, u("spec"))
    return next(t.id for t in case.tasks if t.state == "open")


def test_an_approval_whose_form_has_no_such_choice_says_so(ctx):
    held = held_order_approval()
    results = worklist.decide([held], "send_back", u("mgr"))
    assert results[str(held)]["status"] == 422
    assert "no “send back” choice" in results[str(held)]["error"]
    assert worklist.decide([held], "approve", u("mgr"))[str(held)]["status"] == 200
    assert task(held).case.outcome == "released"


def test_the_facts_of_an_approval(ctx):
    credit = approval()
    held = held_order_approval()
    rows = [task(credit), task(held)]
    facts = worklist.approval_facts(rows, u("mgr"))
    rec = facts[credit].recommendation
    assert (rec.by, rec.task_title) == ("Spec", "Review credit and recommend a limit")
    assert rec.data["recommended_limit"] == "20000.00"
    assert facts[credit].requested == Decimal("25000.00") and facts[credit].exposure is None
    assert facts[credit].actions == ("approve", "reject", "send_back")
    hold = facts[held]
    assert (hold.credit_limit, hold.exposure) == (Decimal("20000.00"), Decimal("22500.00"))
    assert hold.available == Decimal("-2500.00") and hold.reasons
    assert hold.actions == ("approve", "reject") and hold.blocked is None
    assert "four-eyes" in worklist.approval_facts([task(held)], u("spec"))[held].blocked

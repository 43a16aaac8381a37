"""The credit application through the engine: every route, four-eyes, the ledger outcome."""

from __future__ import annotations

from decimal import Decimal

import pytest

from casemgr.accounts import find_user
from casemgr.engine import cases as engine
from casemgr.engine.errors import Conflict, Forbidden, Invalid
from casemgr.extensions import db
from casemgr.models import Customer, Notification
from tests.credit_data import INTAKE, review


def user(name):
    return find_user(name)


def open_task(case, name=None):
    tasks = [t for t in case.tasks if t.state == "open" and (name is None or t.name == name)]
    assert len(tasks) == 1, [(t.name, t.state) for t in case.tasks]
    return tasks[0]


def start(data=None, who="rep"):
    return engine.start_case(
        "credit_application", dict(INTAKE if data is None else data), user(who)
    )


def reviewed(limit="20000.00", score=720, flags=(), who="spec"):
    case = start()
    task = open_task(case, "specialist_review")
    return engine.complete_task(task.id, review(limit, score, flags), user(who))


def customer(number):
    return db.session.execute(db.select(Customer).filter_by(number=number)).scalar_one()


def test_a_complete_intake_goes_straight_to_the_specialist_queue(ctx):
    case = start()
    task = open_task(case)
    assert (task.name, task.role, task.assignee) == ("specialist_review", "ar_specialist", None)
    assert task.due_at is not None
    assert case.customer_name == "Acme Widgets LLC"
    assert case.amount == Decimal("25000.00")


def test_an_incomplete_intake_asks_the_starter_for_the_rest(ctx):
    partial = {k: v for k, v in INTAKE.items() if k not in ("tax_id", "bank_reference")}
    case = start(partial, who="spec")
    task = open_task(case, "complete_intake")
    assert task.assignee.username == "spec"
    case = engine.complete_task(task.id, INTAKE, user("spec"))
    assert open_task(case).name == "specialist_review"


def test_wrong_values_at_start_are_refused_and_nothing_is_created(ctx):
    bad = dict(INTAKE, tax_id="123", requested_limit="-5")
    with pytest.raises(Invalid) as err:
        start(bad)
    assert set(err.value.errors) == {"tax_id", "requested_limit"}
    from casemgr.models import Case

    assert db.session.execute(db.select(db.func.count(Case.id))).scalar() == 0


def test_up_to_50000_the_credit_manager_approves_and_the_customer_is_set_up(ctx):
    case = reviewed("20000.00")
    task = open_task(case, "manager_approval")
    assert task.role == "credit_manager"
    case = engine.complete_task(task.id, {"decision": "approve"}, user("mgr"))
    assert (case.status, case.outcome) == ("completed", "approved")
    new = customer(case.customer_number)
    assert (new.name, new.credit_limit, new.terms_days) == (
        "Acme Widgets LLC",
        Decimal("20000.00"),
        30,
    )
    assert new.sales_rep == "rep" and new.tax_id == "12-3456789"
    note = db.session.execute(db.select(Notification)).scalar_one()
    assert note.user_id == user("rep").id and "approved" in note.message
    kinds = [e.kind for e in case.events]
    assert kinds[0] == "case_started" and kinds[-1] == "case_completed"
    assert "ledger" in kinds and kinds.count("task_completed") == 2


def test_above_50000_the_controller_decides(ctx):
    case = start(dict(INTAKE, requested_limit="90000.00"))
    case = engine.complete_task(open_task(case).id, review("75000.00"), user("spec"))
    task = open_task(case, "controller_approval")
    with pytest.raises(Forbidden):
        engine.complete_task(task.id, {"decision": "approve"}, user("mgr"))
    case = engine.complete_task(
        task.id,
        {"decision": "reduce", "approved_limit": "60000", "comment": "start lower"},
        user("ctrl"),
    )
    assert customer(case.customer_number).credit_limit == Decimal("60000.00")


def test_small_limits_with_good_scores_are_approved_without_a_person(ctx):
    case = reviewed("8000.00", score=760)
    assert case.status == "completed" and case.outcome == "approved"
    assert customer(case.customer_number).credit_limit == Decimal("8000.00")


@pytest.mark.parametrize(
    ("score", "flags"), [(500, ()), (720, ("tax_id_mismatch", "free_mail_domain"))]
)
def test_poor_results_set_the_customer_up_on_cash_in_advance(ctx, score, flags):
    case = reviewed("20000.00", score=score, flags=flags)
    assert case.outcome == "cash_in_advance"
    new = customer(case.customer_number)
    assert new.cash_in_advance and new.credit_limit == Decimal("0.00")


def test_a_declined_application_sets_up_no_customer(ctx):
    case = reviewed()
    case = engine.complete_task(
        open_task(case).id, {"decision": "decline", "comment": "too risky"}, user("mgr")
    )
    assert case.outcome == "declined" and case.customer_number is None
    assert db.session.execute(db.select(db.func.count(Customer.id))).scalar() == 0


def test_send_back_returns_the_case_to_the_specialist_with_the_comment(ctx):
    case = reviewed()
    case = engine.complete_task(
        open_task(case).id, {"decision": "send_back", "comment": "check the bank"}, user("mgr")
    )
    task = open_task(case, "specialist_review")
    assert case.data["comment"] == "check the bank"
    case = engine.complete_task(task.id, review("15000.00"), user("spec2"))
    case = engine.complete_task(open_task(case).id, {"decision": "approve"}, user("mgr"))
    assert customer(case.customer_number).credit_limit == Decimal("15000.00")


def test_a_reduced_limit_must_be_below_the_recommendation_and_explained(ctx):
    case = reviewed("20000.00")
    task = open_task(case)
    with pytest.raises(Invalid) as err:
        engine.complete_task(
            task.id, {"decision": "reduce", "approved_limit": "25000"}, user("mgr")
        )
    assert set(err.value.errors) == {"approved_limit", "comment"}
    db.session.refresh(task)
    assert task.state == "open" and task.assignee is None


def test_the_recommender_cannot_approve_even_holding_the_manager_role(ctx):
    case = reviewed(who="dual")
    task = open_task(case, "manager_approval")
    with pytest.raises(Forbidden, match="four-eyes"):
        engine.complete_task(task.id, {"decision": "approve"}, user("dual"))
    with pytest.raises(Forbidden, match="four-eyes"):
        engine.claim_task(task.id, user("dual"))
    with pytest.raises(Invalid, match="four-eyes"):
        engine.assign_task(task.id, "dual", user("mgr"))
    db.session.refresh(task)
    assert task.state == "open" and task.assignee is None
    engine.complete_task(task.id, {"decision": "approve"}, user("mgr"))


def test_a_completed_task_cannot_be_completed_again(ctx):
    case = start()
    task = open_task(case)
    engine.complete_task(task.id, review(), user("spec"))
    with pytest.raises(Conflict, match="already completed by Spec"):
        engine.complete_task(task.id, review(), user("spec2"))


def test_a_task_claimed_by_another_cannot_be_taken(ctx):
    case = start()
    task = open_task(case)
    engine.claim_task(task.id, user("spec"))
    with pytest.raises(Conflict, match="claimed by Spec"):
        engine.claim_task(task.id, user("spec2"))
    with pytest.raises(Conflict):
        engine.complete_task(task.id, review(), user("spec2"))
    with pytest.raises(Forbidden):
        engine.unclaim_task(task.id, user("spec2"))
    engine.unclaim_task(task.id, user("mgr"), reason="spec is out")
    engine.claim_task(task.id, user("spec2"))
    kinds = [(e.kind, e.actor) for e in task.case.events]
    assert ("task_unclaimed", "mgr") in kinds and ("task_claimed", "spec2") in kinds


def test_a_sales_rep_cannot_start_a_credit_hold_case_type_they_lack(ctx):
    with pytest.raises(Invalid):
        engine.start_case("no_such_type", {}, user("rep"))

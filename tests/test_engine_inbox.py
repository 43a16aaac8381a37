"""The one inbox query (casemgr.engine.inbox), as the API and the web inbox both use it.

Most tests write task rows straight into the index (as the bench does) so that a queue of a
few hundred varied tasks is cheap; the page the query returns is then checked against the
same order computed in Python over every row, for each sort and across page boundaries.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from casemgr.accounts import find_user
from casemgr.engine import cases as engine
from casemgr.engine.inbox import (
    SORTS,
    InboxQuery,
    count,
    inbox,
    parked_count,
    parse_params,
    view_params,
)
from casemgr.extensions import db
from casemgr.models import Case, CaseType, TaskRecord
from tests.credit_data import INTAKE, review

NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
TYPES = ("credit_application", "dispute_resolution", "credit_hold_release")


def make_tasks(n: int, seed: int = 3, **fixed) -> list[int]:
    """n open tasks with varied due dates (some none), amounts, customers and owners."""
    rng = random.Random(seed)
    spec, spec2, dual = (find_user(u) for u in ("spec", "spec2", "dual"))
    types = {ct.key: ct for ct in db.session.execute(db.select(CaseType)).scalars()}
    ids = []
    for i in range(n):
        key = TYPES[i % len(TYPES)]
        ct = types[key]
        owner = rng.choice([None, None, None, spec.id, spec2.id, dual.id])
        role = rng.choice(["ar_specialist", "ar_specialist", "credit_manager"])
        number = rng.choice([None, f"C-{rng.randrange(100, 130)}"])
        name = rng.choice([None, f"Customer {rng.randrange(1, 40)} Inc"])
        due = rng.choice([None, NOW + timedelta(hours=rng.randrange(-200, 200))])
        amount = rng.choice([None, Decimal(rng.randrange(100, 90000))])
        case = Case(
            case_type=ct,
            process_version=ct.latest(),
            status="open",
            title=f"{ct.name}: {name or number or 'case'}",
            customer_number=number,
            customer_name=name,
            amount=amount,
            data={},
            workflow_json="{}",
            created_at=NOW,
            updated_at=NOW,
        )
        db.session.add(case)
        db.session.flush()
        if not (name or number):
            case.title = f"{ct.name}: case {case.id}"
        values = {
            "case_id": case.id,
            "spiff_id": f"{case.id:036d}",
            "name": "step",
            "title": f"Step {i}",
            "role": role,
            "state": "open",
            "assignee_id": owner,
            "due_at": due,
            "created_at": NOW - timedelta(minutes=rng.randrange(0, 5000)),
            "case_type_key": key,
            "customer_number": number,
            "customer_name": name,
            "amount": amount,
            "priority": rng.choice([1, 2, 2, 3, 4]),
            "four_eyes": rng.choice([[], [], ["specialist_review"]]),
            "follow_up_at": rng.choice([None] * 6 + [NOW + timedelta(days=2), NOW - timedelta(1)]),
        }
        values.update(fixed)
        row = TaskRecord(**values)
        db.session.add(row)
        db.session.flush()
        ids.append(row.id)
    db.session.commit()
    return ids


def visible(user, params: InboxQuery) -> list[TaskRecord]:
    """Every open task the parameters select, by brute force in Python."""
    rows = db.session.execute(db.select(TaskRecord).where(TaskRecord.state == "open")).scalars()
    out = []
    for t in rows:
        mine = t.assignee_id == user.id
        queue = t.assignee_id is None and t.role in user.role_keys
        if not (mine or queue):
            continue
        if params.follow_up == "hide" and t.follow_up_at and t.follow_up_at > NOW:
            continue
        if params.follow_up == "only" and not (t.follow_up_at and t.follow_up_at > NOW):
            continue
        out.append(t)
    return out


def python_key(sort: str):
    big = datetime.max.replace(tzinfo=UTC)

    def key(t: TaskRecord):
        due = (t.due_at is None, t.due_at or big)
        if sort == "-created_at":
            return (-t.created_at.timestamp(), -t.id)
        if sort == "created_at":
            return (t.created_at, t.id)
        if sort == "-amount":
            return (t.amount is None, -(t.amount or 0), t.id)
        if sort == "-due_at":
            return (t.due_at is None, -(t.due_at or big).timestamp(), t.id)
        if sort == "-priority":
            return (-t.priority, *due, t.id)
        if sort == "customer":  # names in the database's collation: see the test
            return (t.customer_name is None, t.customer_number is None, t.customer_number or "",
                    *due, t.id)  # fmt: skip
        return (*due, t.id)

    return key


@pytest.mark.parametrize("sort", SORTS)
def test_every_page_of_every_sort_matches_the_full_order(ctx, sort):
    make_tasks(160)
    dual = find_user("dual")  # two roles and own tasks: three branches to merge
    params = parse_params({"sort": sort, "follow_up": "all"})[0]
    expected = [t.id for t in sorted(visible(dual, params), key=python_key(sort))]
    if sort == "customer":
        # Names sort in the database's collation (PostgreSQL's locale differs from Python's
        # code points): check the rest of the order within each name, and the names' order
        # against the one the database gives when asked for everything at once.
        everything = [r.id for r in inbox(dual, params.with_(limit=500), NOW)[0]]
        rows = {t.id: t for t in visible(dual, params)}
        names = [rows[i].customer_name for i in everything]
        runs = [n for i, n in enumerate(names) if i == 0 or n != names[i - 1]]
        assert len(runs) == len(set(runs)) and runs[-1] is None  # grouped, nameless last
        rank = {name: i for i, name in enumerate(runs)}
        key = python_key(sort)
        expected = sorted(rows, key=lambda i: (rank[rows[i].customer_name], key(rows[i])))
    got, offset = [], 0
    while True:
        rows, total = inbox(dual, params.with_(limit=17, offset=offset), NOW)
        assert total == len(expected)
        if not rows:
            break
        got += [r.id for r in rows]
        offset += 17
    assert got == expected


def test_follow_up_dates_hide_tasks_until_then(ctx):
    make_tasks(120)
    spec = find_user("spec")
    hide = parse_params({})[0]
    everything = parse_params({"follow_up": "all"})[0]
    parked = parse_params({"follow_up": "only"})[0]
    hidden = {t.id for t in visible(spec, everything)} - {t.id for t in visible(spec, hide)}
    assert hidden, "the sample should park some tasks"
    ids = {r.id for r in inbox(spec, hide.with_(limit=500), NOW)[0]}
    assert not ids & hidden
    assert {r.id for r in inbox(spec, parked.with_(limit=500), NOW)[0]} == hidden
    assert count(spec, everything, NOW) == count(spec, hide, NOW) + len(hidden)
    mine_parked = [t for t in visible(spec, parked) if t.assignee_id == spec.id]
    assert parked_count(spec, NOW) == len(mine_parked)


def test_due_today_overdue_amount_customer_priority_filters(ctx):
    make_tasks(150)
    spec = find_user("spec")
    base = visible(spec, parse_params({})[0])

    def ids(args):
        params = parse_params({**args, "limit": "500"}, max_limit=500)[0]
        rows, total = inbox(spec, params, NOW)
        assert total == len(rows)
        return {r.id for r in rows}

    today = NOW.date()
    assert ids({"due": "today"}) == {t.id for t in base if t.due_at and t.due_at.date() == today}
    overdue = {t.id for t in base if t.due_at and t.due_at < NOW}
    assert ids({"due": "overdue"}) == overdue == ids({"overdue": "1"})
    assert ids({"amount_min": "20000", "amount_max": "50,000.00"}) == {
        t.id for t in base if t.amount is not None and 20000 <= t.amount <= 50000
    }
    assert ids({"customer": "C-111"}) == {t.id for t in base if t.customer_number == "C-111"}
    assert (
        ids({"priority": "high"})
        == ids({"priority": "3"})
        == {t.id for t in base if t.priority == 3}
    )
    both = ids({"due": "overdue", "case_type": "dispute_resolution", "amount_min": "1000"})
    assert both == {
        t.id
        for t in base
        if t.id in overdue
        and t.case_type_key == "dispute_resolution"
        and t.amount is not None
        and t.amount >= 1000
    }


def test_the_title_search_finds_what_the_case_titles_hold(ctx):
    """The search rebuilds the case title from the task row; it must agree with the cases."""
    make_tasks(90)
    spec = find_user("spec")
    base = visible(spec, parse_params({"follow_up": "all"})[0])
    titles = {t.id: t.case.title.lower() for t in base}
    names = {t.id: (t.customer_name or "").lower() for t in base}
    numbers = {t.id: (t.customer_number or "").lower() for t in base}
    probes = ["dispute", "resolution: cust", "n: customer 1", "Customer 3", "c-11", ": case",
              "credit hold release: c-1", "release: ", "zzz", "%", "_"]  # fmt: skip
    for q in probes:
        params = parse_params({"q": q, "follow_up": "all", "limit": "500"}, max_limit=500)[0]
        got = {r.id for r in inbox(spec, params, NOW)[0]}
        needle = q.lower()
        expected = {
            i for i in titles if needle in titles[i] or needle in names[i] or needle in numbers[i]
        }
        assert got == expected, q


def test_a_case_id_finds_its_tasks(ctx):
    ids = make_tasks(10)
    spec = find_user("spec")
    row = db.session.get(TaskRecord, ids[0])
    row.assignee_id, row.follow_up_at = spec.id, None
    db.session.commit()
    for q in (str(row.case_id), f"#{row.case_id}"):
        found = inbox(spec, parse_params({"q": q})[0], NOW)[0]
        assert row.id in {r.id for r in found}


def test_assignee_branches_and_other_peoples_tasks(ctx):
    make_tasks(80, follow_up_at=None)
    spec, mgr = find_user("spec"), find_user("mgr")
    mine = inbox(spec, parse_params({"assignee": "me", "limit": "500"}, max_limit=500)[0], NOW)
    assert mine[0] and all(r.assignee_id == spec.id for r in mine[0])
    queue = inbox(spec, parse_params({"assignee": "none", "limit": "500"}, max_limit=500)[0], NOW)
    assert all(r.assignee_id is None and r.role == "ar_specialist" for r in queue[0])
    theirs = inbox(mgr, parse_params({"assignee": "spec", "limit": "500"}, max_limit=500)[0], NOW)
    assert {r.id for r in theirs[0]} == {r.id for r in mine[0]}
    assert inbox(spec, parse_params({"assignee": "spec2"})[0], NOW) == ([], 0)


def test_approvals_and_everyone_scope(ctx):
    make_tasks(90, follow_up_at=None)
    mgr, ctrl, spec = find_user("mgr"), find_user("ctrl"), find_user("spec")
    approvals = parse_params({"limit": "500"}, max_limit=500)[0].with_(approvals=True)
    rows, _ = inbox(mgr, approvals, NOW)
    assert rows and all(r.four_eyes for r in rows)
    assert all(r.role == "credit_manager" or r.assignee_id == mgr.id for r in rows)
    everyone = approvals.with_(everyone=True)
    all_rows, total = inbox(ctrl, everyone, NOW)
    expected = db.session.execute(
        db.select(db.func.count(TaskRecord.id)).where(TaskRecord.state == "open")
    ).scalar_one()
    assert 0 < total < expected
    assert all(r.four_eyes for r in all_rows)
    # A specialist reads only their own cases: "everyone" does not widen their inbox.
    assert inbox(spec, everyone, NOW)[1] == inbox(spec, approvals, NOW)[1]


def test_paging_past_the_end_and_a_zero_limit(ctx):
    make_tasks(30, follow_up_at=None)
    spec = find_user("spec")
    params = parse_params({})[0]
    total = count(spec, params, NOW)
    assert inbox(spec, params.with_(offset=total), NOW) == ([], total)
    assert inbox(spec, params.with_(limit=0), NOW) == ([], total)


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"amount_min": "lots"}, "amount_min"),
        ({"amount_max": "1e999"}, "amount_max"),
        ({"amount_min": "NaN"}, "amount_min"),
        ({"amount_min": "500", "amount_max": "100"}, "amount_max"),
        ({"due": "tomorrow"}, "due"),
        ({"priority": "9"}, "priority"),
        ({"priority": "very"}, "priority"),
        ({"follow_up": "later"}, "follow_up"),
        ({"delegated": "yes"}, "delegated"),
        ({"sort": "amount"}, "sort"),
        ({"limit": "-1"}, "limit"),
        ({"case_type": "nope"}, "case_type"),
        ({"role": "boss"}, "role"),
    ],
)
def test_wrong_parameters_are_named_and_left_at_their_defaults(ctx, args, field):
    params, errors = parse_params(args)
    assert field in errors
    assert params.sort == "due_at" and params.limit == 50


def test_a_saved_view_keeps_filters_and_sort_not_paging():
    kept = view_params({"q": "acme", "sort": "-amount", "limit": "5", "offset": "10", "x": "1",
                        "amount_min": ""})  # fmt: skip
    assert kept == {"q": "acme", "sort": "-amount"}


def test_a_new_task_is_high_priority_from_50000(ctx):
    rep, spec = find_user("rep"), find_user("spec")
    small = engine.start_case("credit_application", dict(INTAKE, requested_limit="49999.99"), rep)
    large = engine.start_case("credit_application", dict(INTAKE, requested_limit="50000.00"), rep)
    assert small.tasks[0].priority == 2
    assert large.tasks[0].priority == 3
    approval = engine.complete_task(large.tasks[0].id, review("50000.00"), spec)
    assert [t.priority for t in approval.tasks if t.state == "open"] == [3]


def test_the_inbox_of_real_cases_matches_the_api_contract_order(ctx):
    """Started through the engine, the rows carry what the query needs (customer, amount)."""
    rep, spec = find_user("rep"), find_user("spec")
    for limit in ("1000.00", "90000.00", "5000.00"):
        engine.start_case("credit_application", dict(INTAKE, requested_limit=limit), rep)
    rows, total = inbox(spec, parse_params({"sort": "-amount"})[0], datetime.now(UTC))
    assert total == 3
    assert [r.amount for r in rows] == [Decimal("90000.00"), Decimal("5000.00"),
                                        Decimal("1000.00")]  # fmt: skip
    found = inbox(spec, parse_params({"q": "credit application: acme"})[0], datetime.now(UTC))
    assert found[1] == 3

"""The one inbox query: the API's `GET /tasks`, its work-queue twin and the web inbox all
read their tasks through `parse_params` and `inbox` here.

It reads the task index only (never a workflow). Who sees what is one of a few disjoint
"branches" (my own tasks, my roles' unclaimed queue, another person's tasks for a manager,
the tasks I delegated): disjoint, so their counts add up, and each matches an index of the
task table, which a single OR would not use as well.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from decimal import Decimal, InvalidOperation

from sqlalchemy import String, cast, func, literal, or_, union_all
from sqlalchemy.orm import selectinload

from casemgr.engine import access
from casemgr.engine.errors import Invalid
from casemgr.extensions import db
from casemgr.models import PRIORITIES, ROLES, CaseType, TaskRecord, User

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_OFFSET = 2**31 - 1
# The contract's three sorts first (API.md); the rest are this project's additions.
SORTS = ("due_at", "-created_at", "-amount", "-due_at", "created_at", "-priority", "customer")
DUE_FILTERS = ("today", "overdue")
FOLLOW_UP = ("hide", "all", "only")
MAX_AMOUNT = Decimal("999999999999.99")  # Numeric(14, 2)
# The query-string names a saved view keeps (paging is not part of a view).
VIEW_PARAMS = (
    "case_type",
    "role",
    "assignee",
    "overdue",
    "due",
    "q",
    "customer",
    "amount_min",
    "amount_max",
    "priority",
    "follow_up",
    "delegated",
    "sort",
)


@dataclass(frozen=True)
class InboxQuery:
    """The inbox's parameters, checked. `follow_up="hide"` leaves out tasks someone parked
    until a later follow-up date; `approvals` keeps only tasks under the four-eyes rule;
    `everyone` (readers of every case) widens the branches to every open task."""

    case_type: str | None = None
    role: str | None = None
    assignee: str | None = None
    overdue: bool = False
    due: str | None = None
    q: str | None = None
    customer: str | None = None
    amount_min: Decimal | None = None
    amount_max: Decimal | None = None
    priority: int | None = None
    follow_up: str = "hide"
    delegated: bool = False
    approvals: bool = False
    everyone: bool = False
    sort: str = "due_at"
    limit: int = DEFAULT_LIMIT
    offset: int = 0

    def with_(self, **changes) -> InboxQuery:
        return replace(self, **changes)


# --- parsing ------------------------------------------------------------------------------


def _count(args: Mapping, name: str, default: int, errors: dict[str, list[str]]) -> int:
    raw = args.get(name)
    if raw is None or raw == "":
        return default
    if not (isinstance(raw, str) and raw.isascii() and raw.isdigit()):
        errors[name] = ["must be a whole number, 0 or more"]
        return default
    return int(raw)


def _amount(args: Mapping, name: str, errors: dict[str, list[str]]) -> Decimal | None:
    raw = (args.get(name) or "").strip().replace(",", "")
    if not raw:
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite() or abs(value) > MAX_AMOUNT:
        errors[name] = ["must be an amount such as 5000 or 5000.00"]
        return None
    return value.quantize(Decimal("0.01"))


def _flag(args: Mapping, name: str, errors: dict[str, list[str]]) -> bool:
    raw = (args.get(name) or "").lower()
    if raw not in ("", "0", "1", "true", "false"):
        errors[name] = [f"use {name}=1"]
    return raw in ("1", "true")


def parse_priority(raw) -> int | None:
    """A priority as a number (1-4) or its name ("high"); None when it is neither."""
    text = str(raw).strip().lower()
    if text.isascii() and text.isdigit() and int(text) in PRIORITIES:
        return int(text)
    names = {name: level for level, name in PRIORITIES.items()}
    return names.get(text)


def parse_params(
    args: Mapping,
    *,
    default_limit: int = DEFAULT_LIMIT,
    max_limit: int = MAX_LIMIT,
    follow_up_default: str = "hide",
) -> tuple[InboxQuery, dict[str, list[str]]]:
    """Query-string values (strings) as an InboxQuery, and the errors by parameter name.

    A wrong parameter is named in the errors and left at its default, so the API can answer
    422 and a page can still show the inbox with a note.
    """
    errors: dict[str, list[str]] = {}
    case_type = args.get("case_type") or None
    if (
        case_type is not None
        and not db.session.execute(db.select(CaseType.id).filter_by(key=case_type)).first()
    ):
        errors["case_type"] = [f"unknown case type {case_type!r}"]
        case_type = None
    role = args.get("role") or None
    if role is not None and role not in ROLES:
        errors["role"] = [f"unknown role {role!r}; one of {', '.join(ROLES)}"]
        role = None
    overdue = _flag(args, "overdue", errors)
    delegated = _flag(args, "delegated", errors)
    due = args.get("due") or None
    if due is not None and due not in DUE_FILTERS:
        errors["due"] = [f"one of {', '.join(DUE_FILTERS)}"]
        due = None
    follow_up = args.get("follow_up") or follow_up_default
    if follow_up not in FOLLOW_UP:
        errors["follow_up"] = [f"one of {', '.join(FOLLOW_UP)}"]
        follow_up = follow_up_default
    priority = None
    if args.get("priority"):
        priority = parse_priority(args.get("priority"))
        if priority is None:
            names = ", ".join(f"{n} ({k})" for k, n in PRIORITIES.items())
            errors["priority"] = [f"one of {names}"]
    amount_min = _amount(args, "amount_min", errors)
    amount_max = _amount(args, "amount_max", errors)
    if amount_min is not None and amount_max is not None and amount_min > amount_max:
        errors["amount_max"] = ["must not be below amount_min"]
    sort = args.get("sort") or "due_at"
    if sort not in SORTS:
        errors["sort"] = [f"one of {', '.join(SORTS)}"]
        sort = "due_at"
    limit = _count(args, "limit", default_limit, errors)
    offset = _count(args, "offset", 0, errors)
    query = InboxQuery(
        case_type=case_type,
        role=role,
        assignee=(args.get("assignee") or "").strip() or None,
        overdue=overdue,
        due=due,
        q=(args.get("q") or "").strip()[:200] or None,
        customer=(args.get("customer") or "").strip()[:40] or None,
        amount_min=amount_min,
        amount_max=amount_max,
        priority=priority,
        follow_up=follow_up,
        delegated=delegated,
        sort=sort,
        limit=min(limit, max_limit),
        offset=min(offset, MAX_OFFSET),
    )
    return query, errors


def view_params(args: Mapping) -> dict[str, str]:
    """The parameters a saved view keeps: the filters and the sort, non-empty, as strings."""
    kept = {}
    for name in VIEW_PARAMS:
        value = args.get(name)
        if value not in (None, ""):
            kept[name] = str(value)[:200]
    return kept


# --- the query ----------------------------------------------------------------------------


def _branches(user: User, params: InboxQuery) -> list:
    """Whose tasks, as disjoint conditions (see the module's docstring). The queue is one
    branch per role, so that each branch is an equality prefix of an index."""
    if params.delegated:
        return [TaskRecord.delegated_from_id == user.id]
    who = params.assignee
    everyone = params.everyone and user.has_role(*access.READ_ALL)
    mine = TaskRecord.assignee_id == user.id
    queues = [
        TaskRecord.assignee_id.is_(None) & (TaskRecord.role == role)
        for role in sorted(user.role_keys)
    ]
    if who is None:
        if everyone:
            return [TaskRecord.assignee_id.is_not(None), TaskRecord.assignee_id.is_(None)]
        return [mine, *queues]
    if who in ("me", user.username):
        return [mine]
    if who == "none":
        return [TaskRecord.assignee_id.is_(None)] if everyone else queues
    other = db.session.execute(db.select(User).filter_by(username=who)).scalar_one_or_none()
    if other is None:
        raise Invalid("invalid query parameters", {"assignee": [f"unknown user {who!r}"]})
    if access.can_manage_tasks(user) or everyone:
        return [TaskRecord.assignee_id == other.id]
    return []  # anyone else sees only their own inbox, which holds none of another's tasks


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _contains(expression, pattern: str):
    """Case-insensitive LIKE. SQLite's LIKE already ignores ASCII case, and ILIKE's lower()
    on both sides costs a third of a search over a 20,000-task queue there."""
    if db.session.get_bind().dialect.name == "sqlite":
        return expression.like(pattern, escape="\\")
    return expression.ilike(pattern, escape="\\")


def _title_condition(q: str):
    """Tasks whose case title contains q, without reading the case rows.

    The title is "<case type name>: <who>", who being the customer's name, else its number,
    else "case N" (casemgr.engine.indexing writes it so, and the task row holds the same
    customer fields). q is in it when it is in "<name>: " (every case of that type), in who,
    or across the two: a tail of "<name>: " then a head of who. tests/test_engine_inbox.py
    checks this against the case rows' titles.
    """
    who = func.coalesce(
        TaskRecord.customer_name,
        TaskRecord.customer_number,
        literal("case ") + cast(TaskRecord.case_id, String),
    )
    needle = q.lower()
    # q inside who: the customer conditions of _text_condition find it, but for "case N".
    conditions = [
        TaskRecord.customer_name.is_(None)
        & TaskRecord.customer_number.is_(None)
        & _contains(literal("case ") + cast(TaskRecord.case_id, String), _like(q))
    ]
    names = db.session.execute(db.select(CaseType.key, CaseType.name)).all()
    whole = [key for key, name in names if needle in f"{name}: ".lower()]
    if whole:
        conditions.append(TaskRecord.case_type_key.in_(whole))
    for key, name in names:
        prefix = f"{name}: ".lower()
        for cut in range(1, len(needle)):
            head, tail = needle[:cut], needle[cut:]
            if prefix.endswith(head):
                conditions.append(
                    (TaskRecord.case_type_key == key)
                    & _contains(who, _like(tail)[1:])  # "tail%": who starts so
                )
    return or_(*conditions)


def _text_condition(q: str):
    """Customer number or name, case title, or a case id ("42" or "#42")."""
    pattern = _like(q)
    conditions = [
        _contains(TaskRecord.customer_number, pattern),
        _contains(TaskRecord.customer_name, pattern),
        _title_condition(q),
    ]
    digits = q.removeprefix("#")
    if digits.isascii() and digits.isdigit() and int(digits) <= MAX_OFFSET:
        conditions.append(TaskRecord.case_id == int(digits))
    return or_(*conditions)


def is_approval():
    """Tasks under the four-eyes rule: an approval of something another person proposed."""
    return func.coalesce(cast(TaskRecord.four_eyes, String), "[]").not_in(["[]", "null", ""])


def day_bounds(now: datetime) -> tuple[datetime, datetime]:
    """Today in UTC, [start, end): screens show UTC, so "due today" is the UTC day."""
    start = datetime.combine(now.date(), time(0), tzinfo=now.tzinfo)
    return start, start + timedelta(days=1)


def _filters(params: InboxQuery, now: datetime) -> list:
    filters = [TaskRecord.state == "open"]
    if params.case_type:
        # `|| ''` keeps the planner on the branch's inbox index: the single-column index on
        # case_type_key (a fifth of all tasks each) would cost a table read per task.
        filters.append(TaskRecord.case_type_key.concat("") == params.case_type)
    if params.role:
        filters.append(TaskRecord.role == params.role)
    if params.overdue or params.due == "overdue":
        filters.append(TaskRecord.due_at < now)
    if params.due == "today":
        start, end = day_bounds(now)
        filters.extend([TaskRecord.due_at >= start, TaskRecord.due_at < end])
    if params.customer:
        filters.append(TaskRecord.customer_number == params.customer)
    if params.amount_min is not None:
        filters.append(TaskRecord.amount >= params.amount_min)
    if params.amount_max is not None:
        filters.append(TaskRecord.amount <= params.amount_max)
    if params.priority is not None:
        filters.append(TaskRecord.priority == params.priority)
    if params.follow_up == "hide":
        filters.append(or_(TaskRecord.follow_up_at.is_(None), TaskRecord.follow_up_at <= now))
    elif params.follow_up == "only":
        filters.append(TaskRecord.follow_up_at > now)
    if params.approvals:
        filters.append(is_approval())
    if params.q:
        filters.append(_text_condition(params.q))
    return filters


# --- sorting and paging -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Sort:
    """A sort as the page query runs it: the sort keys (column, descending) after a group
    rank, and the groups (rank, condition). A group with a NULL key gets its own rank, so
    within a group the index can hand rows over in order instead of sorting them all."""

    keys: tuple[tuple, ...]
    groups: tuple[tuple[int, object], ...] = ((0, None),)


def _sort(name: str) -> _Sort:
    due, amount = TaskRecord.due_at, TaskRecord.amount
    dated = ((0, due.is_not(None)), (1, due.is_(None)))
    if name == "-created_at":
        return _Sort(((TaskRecord.created_at, True), (TaskRecord.id, True)))
    if name == "created_at":
        return _Sort(((TaskRecord.created_at, False), (TaskRecord.id, False)))
    if name == "-amount":
        return _Sort(
            ((amount, True), (TaskRecord.id, False)),
            ((0, amount.is_not(None)), (1, amount.is_(None))),
        )
    if name == "-due_at":
        return _Sort(((due, True), (TaskRecord.id, False)), dated)
    if name == "-priority":
        return _Sort(
            (
                (TaskRecord.priority, True),
                (due.is_(None), False),
                (due, False),
                (TaskRecord.id, False),
            )
        )
    if name == "customer":
        return _Sort(
            (
                (TaskRecord.customer_name.is_(None), False),
                (TaskRecord.customer_name, False),
                (TaskRecord.customer_number.is_(None), False),
                (TaskRecord.customer_number, False),
                (due.is_(None), False),
                (due, False),
                (TaskRecord.id, False),
            )
        )
    return _Sort(((due, False), (TaskRecord.id, False)), dated)


def _ordered(columns, keys) -> list:
    return [col.desc() if desc else col for col, (_expr, desc) in zip(columns, keys, strict=True)]


def _empty_groups(params: InboxQuery) -> set:
    """Sort keys whose NULL group the filters rule out (a range needs a value)."""
    empty = set()
    if params.overdue or params.due:
        empty.add(TaskRecord.due_at)
    if params.amount_min is not None or params.amount_max is not None:
        empty.add(TaskRecord.amount)
    return empty


def _page_ids(branches: list, filters: list, params: InboxQuery) -> list[int]:
    """The ids of one page: each branch and group takes its first offset+limit rows in
    order (an index walk, no sort of the whole queue), and one outer sort merges them."""
    sort = _sort(params.sort)
    wanted = params.offset + params.limit
    empty = _empty_groups(params)
    parts = []
    for branch in branches:
        for rank, condition in sort.groups:
            if rank and sort.keys[0][0] in empty:
                continue  # e.g. undated tasks when only overdue ones are wanted
            where = [*filters, branch] + ([condition] if condition is not None else [])
            key_columns = [expr.label(f"k{i}") for i, (expr, _) in enumerate(sort.keys)]
            order = _ordered([expr for expr, _ in sort.keys], sort.keys)
            part = (
                db.select(TaskRecord.id.label("task_id"), literal(rank).label("rank"), *key_columns)
                .where(*where)
                .order_by(*order)
                .limit(wanted)
            )
            parts.append(part.subquery().select())
    merged = (parts[0] if len(parts) == 1 else union_all(*parts)).subquery()
    outer = [merged.c.rank] + _ordered(
        [merged.c[f"k{i}"] for i in range(len(sort.keys))], sort.keys
    )
    query = db.select(merged.c.task_id).order_by(*outer).limit(params.limit).offset(params.offset)
    return list(db.session.execute(query).scalars())


def count(user: User, params: InboxQuery, now: datetime) -> int:
    """How many open tasks the parameters select, before paging."""
    filters = _filters(params, now)
    return sum(
        db.session.execute(
            db.select(func.count(TaskRecord.id)).where(*filters, branch)
        ).scalar_one()
        for branch in _branches(user, params)
    )


def inbox(user: User, params: InboxQuery, now: datetime) -> tuple[list[TaskRecord], int]:
    """The page of open tasks the parameters select, and how many match before paging.

    The page is found on ids first, by index walks (see _page_ids), and only its rows are
    loaded, with their assignee and delegator in one more query each.
    """
    branches = _branches(user, params)
    if not branches:
        return [], 0
    filters = _filters(params, now)
    total = sum(
        db.session.execute(
            db.select(func.count(TaskRecord.id)).where(*filters, branch)
        ).scalar_one()
        for branch in branches
    )
    if params.limit == 0 or params.offset >= total:
        return [], total
    page = _page_ids(branches, filters, params)
    rows = db.session.execute(
        db.select(TaskRecord)
        .where(TaskRecord.id.in_(page))
        .options(
            selectinload(TaskRecord.assignee).lazyload(User.roles),
            selectinload(TaskRecord.delegated_from).lazyload(User.roles),
        )
    ).scalars()
    by_id = {row.id: row for row in rows}
    return [by_id[task_id] for task_id in page if task_id in by_id], total


def parked_count(user: User, now: datetime) -> int:
    """My tasks hidden until a later follow-up date (the inbox offers to show them)."""
    return db.session.execute(
        db.select(func.count(TaskRecord.id)).where(
            TaskRecord.state == "open",
            TaskRecord.assignee_id == user.id,
            TaskRecord.follow_up_at > now,
        )
    ).scalar_one()

"""The script sandbox under attack: each known escape is refused at publish time or stopped
at run time, in the restricted environment and as the script task of a real case.

tests/test_engine_scripts.py covers the basics; this table is the adversarial catalogue.
"""

from __future__ import annotations

import time
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

from casemgr.accounts import find_user
from casemgr.engine import cases as engine
from casemgr.engine.processes import publish
from casemgr.engine.scripts import (
    RestrictedEnvironment,
    ScriptMemoryExceeded,
    ScriptRefused,
    ScriptTimeout,
    check_code,
)
from casemgr.engine.specs import content_hash, parse_process
from casemgr.engine.validation import validate_bpmn
from casemgr.extensions import db
from casemgr.models import Case, CaseType, ProcessVersion, TaskRecord

LOOP = (Path(__file__).parent / "bpmn" / "loop.bpmn").read_text()
LIMIT = 0.3

REFUSED = "refused"  # check_code and the publish-time validator refuse it
TIMEOUT = "timeout"  # runs until the time limit stops it

# (label, script, what stops it: REFUSED, TIMEOUT or the exception raised at run time)
ESCAPES = [
    ("subclasses", "count = ().__class__.__base__.__subclasses__()", REFUSED),
    ("getattr concat", "count = getattr(x, '__cl' + 'ass__')", NameError),
    ("type subclasses", "count = type.__subclasses__(object)", REFUSED),
    ("format globals", "count = '{0.__init__.__globals__}'.format(x)", NotImplementedError),
    ("str.format", "count = str.format('{0.__class__}', x)", NotImplementedError),
    ("format_map", "count = '{x.__class__}'.format_map({'x': x})", NotImplementedError),
    ("f-string dunder", "count = f'{x.__class__}'", REFUSED),
    ("f-string width", "count = f'{x!r:>{10**9}}'", ValueError),
    ("f-string precision", "count = f'{x:.100000000f}'", ValueError),
    ("percent dunder", "count = '%s' % ().__class__", REFUSED),
    ("percent width", "count = '%1000000000d' % 1", ValueError),
    ("percent star width", "count = '%*d' % (10**9, 1)", ValueError),
    ("gi_frame", "g = (y for y in [])\ncount = g.gi_frame.f_back.f_globals", REFUSED),
    ("gi_code", "g = (y for y in [])\ncount = g.gi_code", REFUSED),
    ("cr_frame", "async def c():\n    pass\ncount = c().cr_frame", REFUSED),
    ("traceback", "try:\n    1 / 0\nexcept Exception as e:\n    count = e.__traceback__", REFUSED),
    ("mro to object", "count = int.mro()[1]", AttributeError),
    ("vars", "count = vars()", NameError),
    ("globals", "count = globals()", NameError),
    ("locals", "count = locals()", NameError),
    ("dir", "count = dir()", NameError),
    ("__import__", "count = __import__('os')", REFUSED),
    ("import", "import os", REFUSED),
    ("eval", "count = eval('1')", REFUSED),
    ("exec", "exec('count = 1')", REFUSED),
    ("compile", "count = compile('1', 'x', 'eval')", NameError),
    ("open", "count = open('/etc/passwd').read()", NameError),
    ("breakpoint", "breakpoint()", REFUSED),
    ("lambda default", "f = lambda a=().__class__: a\ncount = f()", REFUSED),
    ("lambda getattr", "count = (lambda g=getattr: g(x, '__class__'))()", NameError),
    ("power tower", "count = 10 ** 10 ** 10", ValueError),
    ("pow builtin", "count = pow(10, 10 ** 8)", NameError),
    ("int squaring", "b = 3\nfor i in range(100):\n    b = b * b\ncount = b", ValueError),
    ("left shift", "count = 1 << 10 ** 9", ValueError),
    ("str repetition", "count = 'a' * 10 ** 10", ValueError),
    ("list repetition", "count = [0] * 10 ** 10", ValueError),
    ("doubling +", "y = 'a'\nfor i in range(64):\n    y = y + y\ncount = y", ValueError),
    ("doubling extend", "y = [1]\nfor i in range(64):\n    y.extend(y)\ncount = y", ValueError),
    ("ljust", "count = 'a'.ljust(10 ** 10)", ValueError),
    ("replace", "count = ('a' * 100000).replace('', 'b' * 1000)", ValueError),
    ("join", "count = ('x' * 100000).join(['a'] * 100000)", ValueError),
    ("sum of lists", "count = sum([[1] * 100000] * 2000, [])", TypeError),
    ("huge int to str", "b = 9 ** 999\ncount = str(b * b * b * b * b)", ValueError),
    ("int of huge Decimal", "count = int(Decimal('1e100000000'))", ValueError),
    ("Decimal f format", "count = f'{Decimal(\"1e100000000\"):f}'", ValueError),
    ("business hours loop", "count = business_hours_from_now(10 ** 9)", ValueError),
    ("deep recursion", "def f(n):\n    return f(n + 1)\ncount = f(0)", RecursionError),
    ("range bomb", "count = [0 for i in range(10 ** 9)]", ValueError),
    ("while True", "while True:\n    pass", TIMEOUT),
    ("iter sentinel", "for i in iter(int, 1):\n    pass", NameError),
    (
        "nested comprehension",
        "count = [0 for i in range(999) for j in range(999) for k in range(999)]",
        TIMEOUT,
    ),
    # Whichever limit it reaches first: a gigabyte in well under a second.
    ("memory bomb", "y = [[0] * 99999 for i in range(999)]", (ScriptMemoryExceeded, ScriptTimeout)),
    (
        "timeout caught",
        "while True:\n    try:\n        while True:\n            pass\n    except Exception:\n"
        "        pass",
        TIMEOUT,
    ),
    ("bare except", "while True:\n    try:\n        pass\n    except:\n        pass", REFUSED),
    (
        "finally continue",
        "while True:\n    try:\n        while True:\n            pass\n    finally:\n"
        "        continue",
        REFUSED,
    ),
    (
        "loop in finally",
        "try:\n    while True:\n        pass\nfinally:\n    while True:\n        pass",
        REFUSED,
    ),
    (
        "loop in a handler",
        "try:\n    while True:\n        pass\nexcept Exception:\n    while True:\n        pass",
        TIMEOUT,
    ),
]
IDS = [label for label, _, _ in ESCAPES]


def _expected(outcome):
    if outcome == REFUSED:
        return ScriptRefused
    if outcome == TIMEOUT:
        return ScriptTimeout
    return outcome


def _with_script(script: str) -> str:
    return LOOP.replace("count = count + 1", escape(script))


@pytest.mark.parametrize(("label", "script", "outcome"), ESCAPES, ids=IDS)
def test_the_restricted_environment_stops_it(label, script, outcome):
    env = RestrictedEnvironment(time_limit=LIMIT)
    started = time.monotonic()
    with pytest.raises(_expected(outcome)):
        env.execute(script, {"x": 1, "count": 0})
    # Stopped, not run to completion: nothing here may outlive the limit by much.
    assert time.monotonic() - started < LIMIT + 2
    assert bool(check_code(script)) == (outcome == REFUSED)


@pytest.mark.parametrize(
    ("label", "script"), [(lbl, s) for lbl, s, o in ESCAPES if o == REFUSED], ids=str
)
def test_publishing_a_diagram_with_it_is_refused(ctx, label, script):
    hostile = _with_script(script)
    errors = validate_bpmn(hostile)
    assert any(e["element"] == "count_up" for e in errors), errors
    version, errors = publish("hostile_" + label.replace(" ", "_"), hostile, None)
    assert version is None and errors


# Calls of builtins the environment does not offer: the validator names them at publish time.
UNAVAILABLE = [
    (label, script)
    for label, script, outcome in ESCAPES
    if outcome is NameError and label != "lambda getattr"  # a default value, not a call
]


@pytest.mark.parametrize(("label", "script"), UNAVAILABLE, ids=[lbl for lbl, _ in UNAVAILABLE])
def test_publishing_a_call_of_an_unavailable_builtin_is_refused(ctx, label, script):
    errors = validate_bpmn(_with_script(script))
    assert any(
        e["element"] == "count_up" and "is not available in process scripts" in e["message"]
        for e in errors
    ), errors


def _publish_unchecked(key: str, xml: str) -> None:
    """A version the validator never saw (as if it slipped through): the run-time guards."""
    parsed = parse_process(xml, ())
    case_type = CaseType(key=key, name=key)
    db.session.add(case_type)
    db.session.flush()
    db.session.add(
        ProcessVersion(
            case_type=case_type,
            version=1,
            process_id=parsed.process_id,
            bpmn_xml=xml,
            dmn_xml=[],
            sha256=content_hash(xml),
        )
    )
    db.session.commit()


def test_every_escape_as_a_script_task_in_a_real_case_leaves_the_case_as_it_was(api):
    """Completing the task before the script answers 422 with the reason; the task stays
    open, the case unchanged, and an ordinary case keeps working afterwards."""
    api.app.config["SCRIPT_TIME_LIMIT"] = LIMIT
    spec = api.as_("spec")
    with api.app.app_context():
        task_ids = {}
        for n, (label, script, _outcome) in enumerate(ESCAPES):
            key = f"escape_{n}"
            _publish_unchecked(key, _with_script(script))
            case = engine.start_case(key, {"count": 0, "rounds": 3, "x": 1}, find_user("spec"))
            task_ids[label] = (case.id, case.version, case.tasks[0].id)
    for label, (case_id, version, task_id) in task_ids.items():
        started = time.monotonic()
        response = spec.post(f"/api/v1/tasks/{task_id}/complete", json={"data": {}})
        assert response.status_code == 422, (label, response.get_json())
        assert "could not continue at Count" in response.get_json()["error"], label
        assert time.monotonic() - started < LIMIT + 3, label
        with api.app.app_context():
            case = db.session.get(Case, case_id)
            assert case.version == version and case.data.get("count") == 0, label
            assert db.session.get(TaskRecord, task_id).state == "open", label
    with api.app.app_context():
        _publish_unchecked("ordinary", LOOP)
        case = engine.start_case("ordinary", {"count": 0, "rounds": 1}, find_user("spec"))
        task_id = case.tasks[0].id
    done = spec.post(f"/api/v1/tasks/{task_id}/complete", json={"data": {}})
    assert done.status_code == 200 and done.get_json()["status"] == "completed"


def test_a_memory_bomb_within_the_time_limit_is_stopped_by_the_memory_limit():
    env = RestrictedEnvironment(time_limit=20)
    started = time.monotonic()
    with pytest.raises(ScriptMemoryExceeded, match="memory limit"):
        env.execute("y = [[[0] * 99999 for i in range(999)] for j in range(999)]", {})
    assert time.monotonic() - started < 15  # stopped by memory, long before the time limit


@pytest.mark.parametrize(
    "script",
    [
        "count = f'{x:>8.2f}|{now():%Y-%m-%d}'",
        "count = '%5.1f %s %(a)s' % {'a': 1} if False else '%5.1f|%s' % (x, 'a')",
        "count = '-'.join(['a', 'b']).replace('-', '+').ljust(5, '.')",
        "count = sum([Decimal('1.10'), money('2.205')], Decimal('0'))",
        "count = isinstance(money(1), Decimal) and int(Decimal('1e20')) > 0",
        "count = business_hours_from_now(4)",
        "count = 2 ** 64 * 3 + (1 << 10)",
    ],
)
def test_ordinary_scripts_are_not_caught_by_the_guards(script):
    env = RestrictedEnvironment(time_limit=LIMIT)
    data = {"x": 1.5, "count": 0}
    env.execute(script, data)
    assert data["count"] not in (0, None, False)
    assert check_code(script) == []

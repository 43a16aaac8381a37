"""Process owners' code runs restricted: refused at publish time and stopped at run time."""

from __future__ import annotations

from pathlib import Path

import pytest

from casemgr.engine.processes import publish
from casemgr.engine.scripts import RestrictedEnvironment, ScriptRefused, ScriptTimeout, check_code
from casemgr.engine.validation import validate_bpmn

LOOP = (Path(__file__).parent / "bpmn" / "loop.bpmn").read_text()

ESCAPES = [
    "().__class__.__base__.__subclasses__()",
    "[c for c in ().__class__.__mro__]",
    "getattr((), '__class__')",
    "type(1)",
    "(lambda: 1).__globals__",
    "open('/etc/passwd').read()",
    "__import__('os').system('true')",
    "eval('1')",
    "compile('1', 'x', 'eval')",
    "globals()",
    "vars()",
    "'{0.__class__}'.format(1)",
    "'%s' % ().__class__",
]


@pytest.mark.parametrize("expression", ESCAPES)
def test_known_escapes_are_refused(expression):
    env = RestrictedEnvironment(time_limit=0.5)
    with pytest.raises((ScriptRefused, NameError, NotImplementedError, AttributeError)):
        env.evaluate(expression, {})


@pytest.mark.parametrize("script", ["import os", "from os import path", "import subprocess as s"])
def test_imports_are_refused(script):
    env = RestrictedEnvironment(time_limit=0.5)
    with pytest.raises((ScriptRefused, ImportError)):
        env.execute(script, {})


def test_generator_frames_are_out_of_reach():
    assert check_code("def g():\n    yield 1\nx = g().gi_frame")


@pytest.mark.parametrize("script", ["x = 10 ** 10 ** 10", "x = 'a' * 10 ** 9", "x = [0] * 10 ** 8"])
def test_huge_allocations_are_refused(script):
    env = RestrictedEnvironment(time_limit=0.5)
    with pytest.raises(ValueError):
        env.execute(script, {})


@pytest.mark.parametrize("script", ["while True: pass", "x = 0\nwhile x >= 0:\n    x += 1"])
def test_endless_loops_are_stopped_by_the_time_limit(script):
    env = RestrictedEnvironment(time_limit=0.2)
    with pytest.raises(ScriptTimeout):
        env.execute(script, {})


def test_ordinary_scripts_work_on_task_data():
    env = RestrictedEnvironment(time_limit=0.5)
    data = {"amount": "120.50", "items": [1, 2, 3]}
    env.execute("total = money(amount) * 2\ncount = len(items)\nbig = total > 200", data)
    assert str(data["total"]) == "241.00" and data["count"] == 3 and data["big"] is True
    assert "money" not in data and "_getattr_" not in data


def test_an_unsafe_script_is_refused_at_publish_time(ctx):
    hostile = LOOP.replace("count = count + 1", "count = ().__class__.__base__.__subclasses__()")
    errors = validate_bpmn(hostile)
    assert any(e["element"] == "count_up" and "__class__" in e["message"] for e in errors)
    version, errors = publish("hostile_loop", hostile, None)
    assert version is None and errors


def test_an_unquoted_duration_gets_a_hint(ctx):
    text = (Path(__file__).parent / "bpmn" / "boundary_loop.bpmn").read_text()
    broken = text.replace(
        '<bpmn:timeDuration>"P1D"</bpmn:timeDuration>', "<bpmn:timeDuration>P1D</bpmn:timeDuration>"
    )
    errors = validate_bpmn(broken)
    assert any(e["element"] == "late" and 'write "P1D" in quotes' in e["message"] for e in errors)

"""The restricted environment for process owners' scripts, conditions and timer expressions.

Trimming ``__builtins__`` is not a sandbox (``().__class__.__base__.__subclasses__()`` walks
out of it), so code is compiled by RestrictedPython, which refuses imports, dunder and
underscore names at compile time and routes attribute, item and iteration access through
guards at run time. On top of that: a whitelist of builtins, guarded ``**`` and ``*`` so one
expression cannot allocate gigabytes, and a wall-clock limit enforced by a trace function
on the script's own frames.
"""

from __future__ import annotations

import ast
import math
import operator
import sys
import time
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import Any

from RestrictedPython import RestrictingNodeTransformer, compile_restricted
from RestrictedPython.Eval import default_guarded_getitem, default_guarded_getiter
from RestrictedPython.Guards import (
    full_write_guard,
    guarded_iter_unpack_sequence,
    guarded_unpack_sequence,
    safer_getattr,
)
from RestrictedPython.Limits import limited_range
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment

from casemgr.engine import clock

SCRIPT_FILENAME = "<casemgr-script>"
MAX_POW_EXPONENT = 1000
MAX_SEQUENCE = 100_000


class ScriptRefused(Exception):
    """Code that the restricted compiler will not accept."""


class ScriptTimeout(Exception):
    pass


class _Policy(RestrictingNodeTransformer):
    """RestrictedPython's policy, plus ``a ** b`` and ``a * b`` routed through size guards.

    RestrictedPython compiles imports (and fails them at run time); we refuse them at
    compile time so a diagram with one cannot be published at all.
    """

    def visit_Import(self, node: ast.Import) -> ast.AST:
        self.error(node, "imports are not allowed in process scripts")
        return node

    def visit_ImportFrom(self, node: ast.ImportFrom) -> ast.AST:
        self.error(node, "imports are not allowed in process scripts")
        return node

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        node = self.node_contents_visit(node)
        guard = {ast.Pow: "_pow_", ast.Mult: "_mul_"}.get(type(node.op))
        if guard is None:
            return node
        func = ast.copy_location(ast.Name(id=guard, ctx=ast.Load()), node)
        call = ast.Call(func=func, args=[node.left, node.right], keywords=[])
        return ast.fix_missing_locations(ast.copy_location(call, node))


def _guarded_pow(base, exp):
    if isinstance(exp, int | float | Decimal) and abs(exp) > MAX_POW_EXPONENT:
        raise ValueError(f"exponent {exp} is larger than {MAX_POW_EXPONENT}")
    return base**exp


def _guarded_mul(left, right):
    for seq, count in ((left, right), (right, left)):
        sized = isinstance(seq, str | list | tuple | bytes) and isinstance(count, int)
        if sized and len(seq) * count > MAX_SEQUENCE:
            raise ValueError("result of * would be too large")
    return left * right


_INPLACE = {
    "+=": operator.add,
    "-=": operator.sub,
    "*=": _guarded_mul,
    "/=": operator.truediv,
    "//=": operator.floordiv,
    "%=": operator.mod,
    "**=": _guarded_pow,
}


def _inplacevar(op: str, x, y):
    if op not in _INPLACE:
        raise ValueError(f"operator {op} is not allowed")
    return _INPLACE[op](x, y)


def _money(value) -> Decimal:
    """Round to cents the way finance does (half up), from a number or a string."""
    return Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def _today() -> date:
    return clock.now().date()


def _business_hours_from_now(hours: int) -> str:
    """An ISO datetime `hours` business hours (Mon-Fri, 09:00-17:00 UTC) from now."""
    moment = clock.now().replace(second=0, microsecond=0)
    remaining = timedelta(hours=hours)
    while remaining > timedelta(0):
        if moment.weekday() >= 5 or moment.hour >= 17:
            moment = (moment + timedelta(days=1)).replace(hour=9, minute=0)
            continue
        if moment.hour < 9:
            moment = moment.replace(hour=9, minute=0)
        end_of_day = moment.replace(hour=17, minute=0)
        step = min(remaining, end_of_day - moment)
        moment += step
        remaining -= step
    return moment.isoformat()


_SAFE_BUILTINS = {
    name: getattr(__import__("builtins"), name)
    for name in (
        "abs",
        "all",
        "any",
        "bool",
        "dict",
        "divmod",
        "enumerate",
        "float",
        "int",
        "isinstance",
        "len",
        "list",
        "max",
        "min",
        "reversed",
        "round",
        "set",
        "sorted",
        "str",
        "sum",
        "tuple",
        "zip",
        "True",
        "False",
        "None",
        "ValueError",
        "TypeError",
        "KeyError",
        "Exception",
    )
}
_SAFE_BUILTINS["range"] = limited_range

HELPERS: dict[str, Any] = {
    "Decimal": Decimal,
    "money": _money,
    "date": date,
    "datetime": datetime,
    "timedelta": timedelta,
    "UTC": UTC,
    "today": _today,
    "now": clock.now,
    "business_hours_from_now": _business_hours_from_now,
    "ceil": math.ceil,
    "floor": math.floor,
}

_GUARDS: dict[str, Any] = {
    "__builtins__": _SAFE_BUILTINS,
    "_getattr_": safer_getattr,
    "_getitem_": default_guarded_getitem,
    "_getiter_": default_guarded_getiter,
    "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
    "_unpack_sequence_": guarded_unpack_sequence,
    "_write_": full_write_guard,
    "_inplacevar_": _inplacevar,
    "_pow_": _guarded_pow,
    "_mul_": _guarded_mul,
}


@lru_cache(maxsize=2048)
def compile_script(source: str, mode: str = "exec"):
    """Compile once per distinct source; raise ScriptRefused with the compiler's reasons."""
    try:
        return compile_restricted(source, SCRIPT_FILENAME, mode, policy=_Policy)
    except SyntaxError as exc:
        raise ScriptRefused(_describe_syntax_error(exc, source)) from None


def _describe_syntax_error(exc: SyntaxError, source: str) -> str:
    reasons = exc.args[0] if exc.args else exc
    message = "; ".join(reasons) if isinstance(reasons, tuple | list) else str(reasons)
    hint = _duration_hint(source)
    return f"{message}{hint}"


def _duration_hint(source: str) -> str:
    text = source.strip()
    if text[:1] in ("P", "R") and text[1:2].isdigit() or text.startswith("PT"):
        return f' (an ISO duration is a string in a Python expression: write "{text}" in quotes)'
    return ""


def check_code(source: str, mode: str = "exec") -> list[str]:
    """Publish-time check: the reasons this code would be refused (empty when it is fine)."""
    try:
        compile_script(source, mode)
    except ScriptRefused as exc:
        return [line for line in str(exc).split("\n") if line] or ["refused"]
    return []


class _Deadline:
    """A trace function that stops a script running past its wall-clock limit."""

    def __init__(self, seconds: float):
        self.deadline = time.monotonic() + seconds

    def __call__(self, frame, event, arg):
        if frame.f_code.co_filename != SCRIPT_FILENAME:
            return None
        # Opcode events too: `while True: pass` on one line raises no line events.
        frame.f_trace_opcodes = True
        return self._local

    def _local(self, frame, event, arg):
        if time.monotonic() > self.deadline:
            raise ScriptTimeout("script exceeded its time limit")
        return self._local


def _run_with_deadline(fn, seconds: float):
    previous = sys.gettrace()
    sys.settrace(_Deadline(seconds))
    try:
        return fn()
    finally:
        sys.settrace(previous)


class RestrictedEnvironment(BasePythonScriptEngineEnvironment):
    """Evaluates and executes in task data, as SpiffWorkflow's TaskDataEnvironment does."""

    def __init__(self, time_limit: float = 1.0):
        super().__init__(dict(HELPERS))
        self.time_limit = time_limit

    def _globals(self, context: dict, external_context: dict | None) -> dict:
        env = dict(self.globals)
        env.update(external_context or {})
        env.update(context)
        env.update(_GUARDS)
        return env

    def evaluate(self, expression, context, external_context=None):
        code = compile_script(expression.strip(), "eval")
        env = self._globals(context, external_context)
        return _run_with_deadline(lambda: eval(code, env), self.time_limit)  # noqa: S307

    def execute(self, script, context, external_context=None):
        code = compile_script(script, "exec")
        env = self._globals(context, external_context)
        before = dict(env)
        _run_with_deadline(lambda: exec(code, env), self.time_limit)  # noqa: S102
        for key, value in env.items():
            if key in _GUARDS or callable(value) and value is before.get(key):
                continue
            if key.startswith("_") or callable(value):
                continue
            if key in self.globals and value is self.globals[key]:
                continue
            context[key] = value
        for key in [k for k in context if k not in env]:
            del context[key]
        return True


class ScriptEngine(PythonScriptEngine):
    """The script engine every workflow runs with; service tasks go to our connectors."""

    def __init__(self, time_limit: float = 1.0):
        super().__init__(environment=RestrictedEnvironment(time_limit))

    def call_service(self, task, **kwargs):
        # Imported here: connectors reach the ledger, which the script module must not need.
        from casemgr.engine.connectors import call_connector

        return call_connector(task, kwargs["operation_name"], kwargs["operation_params"])

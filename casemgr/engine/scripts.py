"""The restricted environment for process owners' scripts, conditions and timer expressions.

Trimming ``__builtins__`` is not a sandbox (``().__class__.__base__.__subclasses__()`` walks
out of it), so code is compiled by RestrictedPython, which refuses imports, dunder and
underscore names at compile time and routes attribute, item and iteration access through
guards at run time. On top of that: a whitelist of builtins, and size guards on every
operation that can build a huge value in one C call (``** * + << %``, f-string widths,
``str.ljust``/``replace``/``join``…, ``sum`` of lists, ``Decimal`` exponents), because the
time and memory limits, a trace function on the script's own frames, act only between
opcodes; and the limits raise what no script can catch (see ``_Limits``).
"""

from __future__ import annotations

import ast
import decimal
import math
import operator
import os
import re
import sys
import time
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
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
# Longest text or list one operation may build, and the largest number of bits of an int
# (about 30,000 digits): far beyond any amount, far below what stalls the process.
MAX_LENGTH = 1_000_000
MAX_INT_BITS = 100_000
# Widths and precisions in format specs and ``%`` formats.
MAX_FORMAT_WIDTH = 1000
# Decimals in scripts stay within 1e-1000 .. 1e1000: ``int(Decimal("1e99999999"))`` would
# otherwise run for minutes inside one C call, out of reach of the time limit.
MAX_DECIMAL_EXPONENT = 1000
MAX_BUSINESS_HOURS = 10_000
# How much a running script may grow the process (resident memory) before it is stopped.
MAX_SCRIPT_MEMORY = 256 * 2**20


class ScriptRefused(Exception):
    """Code that the restricted compiler will not accept."""


class ScriptTimeout(Exception):
    """What the caller sees when a script ran past its time limit."""


class ScriptMemoryExceeded(Exception):
    """What the caller sees when a script grew the process by more than its memory limit."""


class _Expired(BaseException):
    """Raised inside a running script at its deadline. A BaseException, so no handler a
    script may write (``except Exception``; bare ``except:`` is refused) can swallow it."""


class _OutOfMemory(_Expired):
    """Raised inside a running script that has grown the process past its memory limit."""


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
        guard = _BINOP_GUARDS.get(type(node.op))
        if guard is None:
            return node
        func = ast.copy_location(ast.Name(id=guard, ctx=ast.Load()), node)
        call = ast.Call(func=func, args=[node.left, node.right], keywords=[])
        return ast.fix_missing_locations(ast.copy_location(call, node))

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> ast.AST:
        if node.type is None:
            self.error(node, "a bare except: is not allowed; name it, e.g. except ValueError:")
        return super().visit_ExceptHandler(node)

    def visit_Try(self, node: ast.Try) -> ast.AST:
        """A ``finally`` runs after the time limit has stopped the script, unwatched."""
        if node.finalbody:
            self.error(node.finalbody[0], "finally is not allowed in process scripts")
        return super().visit_Try(node)

    def visit_FormattedValue(self, node: ast.FormattedValue) -> ast.AST:
        """``f"{x!r:>{w}}"`` becomes ``f"{_format_(x, 'r', f'>{w}')}"``: the spec is checked."""
        node = self.node_contents_visit(node)
        conversion = chr(node.conversion) if node.conversion > 0 else ""
        spec = node.format_spec or ast.Constant(value="")
        func = ast.Name(id="_format_", ctx=ast.Load())
        call = ast.Call(func=func, args=[node.value, ast.Constant(conversion), spec], keywords=[])
        new = ast.FormattedValue(value=call, conversion=-1, format_spec=None)
        return ast.fix_missing_locations(ast.copy_location(new, node))


_BINOP_GUARDS = {
    ast.Pow: "_pow_",
    ast.Mult: "_mul_",
    ast.Add: "_add_",
    ast.LShift: "_lshift_",
    ast.Mod: "_mod_",
}
_SIZED = (str, bytes, bytearray, list, tuple)


def _too_big(what: str) -> ValueError:
    return ValueError(f"{what} would be too large for a process script")


def _guarded_pow(base, exp):
    if isinstance(exp, int | float | Decimal) and abs(exp) > MAX_POW_EXPONENT:
        raise ValueError(f"exponent {exp} is larger than {MAX_POW_EXPONENT}")
    if isinstance(base, int) and isinstance(exp, int) and base.bit_length() * exp > MAX_INT_BITS:
        raise _too_big("the result of **")
    return base**exp


def _guarded_mul(left, right):
    for seq, count in ((left, right), (right, left)):
        sized = isinstance(seq, _SIZED) and isinstance(count, int)
        if sized and len(seq) * count > MAX_SEQUENCE:
            raise _too_big("the result of *")
    both_int = isinstance(left, int) and isinstance(right, int)
    if both_int and left.bit_length() + right.bit_length() > MAX_INT_BITS:
        raise _too_big("the result of *")
    return left * right


def _guarded_add(left, right):
    sized = isinstance(left, _SIZED) and isinstance(right, _SIZED)
    if sized and len(left) + len(right) > MAX_LENGTH:
        raise _too_big("the result of +")
    return left + right


def _guarded_lshift(left, right):
    both_int = isinstance(left, int) and isinstance(right, int)
    if both_int and (right > MAX_INT_BITS or left.bit_length() + right > MAX_INT_BITS):
        raise _too_big("the result of <<")
    return left << right


# A conversion of printf-style formatting: %[(key)][flags][width][.precision][length]type
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d*)(?:\.(\*|\d*))?[hlL]?.", re.DOTALL)


def _check_width(number: str) -> None:
    if number == "*":
        raise ValueError("'*' widths are not allowed in process scripts; write the number")
    if number and int(number) > MAX_FORMAT_WIDTH:
        raise ValueError(f"format width {number} is larger than {MAX_FORMAT_WIDTH}")


def _guarded_mod(left, right):
    if isinstance(left, str | bytes):
        text = left.decode("latin-1") if isinstance(left, bytes) else left
        for match in _PERCENT_SPEC.finditer(text):
            _check_width(match.group(1))
            _check_width(match.group(2) or "")
    return left % right


def _format(value, conversion: str, spec: str) -> str:
    """One f-string field: widths and precisions bounded, then Python's own formatting."""
    if conversion == "r":
        value = repr(value)
    elif conversion == "s":
        value = str(value)
    elif conversion == "a":
        value = ascii(value)
    for number in re.findall(r"\d+", spec):
        _check_width(number)
    return format(value, spec)


def _checked_decimal(value: Decimal) -> Decimal:
    if value.is_finite() and value and abs(value.adjusted()) > MAX_DECIMAL_EXPONENT:
        raise ValueError(
            f"Decimal exponent {value.adjusted()} is outside ±{MAX_DECIMAL_EXPONENT} "
            "in process scripts"
        )
    return value


class _DecimalType(type):
    """``Decimal`` as scripts see it: the real type for ``isinstance``, checked when called."""

    def __instancecheck__(cls, instance) -> bool:
        return isinstance(instance, Decimal)

    def __call__(cls, value="0", context=None) -> Decimal:
        if isinstance(value, str) and len(value) > 200:
            raise _too_big("the Decimal")
        return _checked_decimal(Decimal(value, context))

    def __getattr__(cls, name: str):
        return getattr(Decimal, name)


class GuardedDecimal(metaclass=_DecimalType):
    pass


def _decimal_context() -> decimal.Context:
    """Arithmetic in scripts overflows past 1e1000 instead of building huge numbers."""
    context = decimal.getcontext().copy()
    context.Emax = MAX_DECIMAL_EXPONENT
    context.Emin = -MAX_DECIMAL_EXPONENT
    return context


def _guarded_sum(iterable, start=0):
    if not isinstance(start, int | float | Decimal):
        raise TypeError("sum() adds numbers in process scripts; use + or str.join for the rest")
    return sum(iterable, start)


def _checked_result_length(length: int) -> None:
    if length > MAX_LENGTH:
        raise _too_big("the result")


def _sized_width(method):
    def call(width, *args):
        if isinstance(width, int):
            _checked_result_length(width)
        return method(width, *args)

    return call


def _sized_replace(obj, method):
    def call(old, new, count=-1):
        if isinstance(old, str | bytes) and isinstance(new, str | bytes):
            found = len(obj) + 1 if not old else obj.count(old)
            if isinstance(count, int) and count >= 0:
                found = min(found, count)
            _checked_result_length(len(obj) + found * (len(new) - len(old)))
        return method(old, new, count)

    return call


def _sized_expandtabs(obj, method):
    def call(tabsize=8):
        if isinstance(tabsize, int):
            tabs = obj.count("\t" if isinstance(obj, str) else b"\t")
            _checked_result_length(len(obj) + tabs * tabsize)
        return method(tabsize)

    return call


def _sized_join(obj, method):
    def call(iterable):
        items = list(iterable)
        sizes = sum(len(i) for i in items if isinstance(i, str | bytes))
        _checked_result_length(sizes + len(obj) * max(len(items) - 1, 0))
        return method(items)

    return call


def _sized_extend(obj, method):
    def call(iterable):
        if hasattr(iterable, "__len__"):
            _checked_result_length(len(obj) + len(iterable))
        return method(iterable)

    return call


_SIZED_METHODS = {
    "ljust": lambda _obj, m: _sized_width(m),
    "rjust": lambda _obj, m: _sized_width(m),
    "center": lambda _obj, m: _sized_width(m),
    "zfill": lambda _obj, m: _sized_width(m),
    "replace": _sized_replace,
    "expandtabs": _sized_expandtabs,
    "join": _sized_join,
    "extend": _sized_extend,
}


def _guarded_getattr(obj, name, default=None):
    """RestrictedPython's attribute guard, plus size checks on text and list methods."""
    if name == "mro":  # the way from a class to object, and on to BaseException
        raise AttributeError('"mro" is not available in process scripts')
    value = safer_getattr(obj, name, default)
    wrap = _SIZED_METHODS.get(name) if isinstance(obj, _SIZED) else None
    return wrap(obj, value) if wrap is not None and callable(value) else value


_INPLACE = {
    "+=": _guarded_add,
    "-=": operator.sub,
    "*=": _guarded_mul,
    "/=": operator.truediv,
    "//=": operator.floordiv,
    "%=": _guarded_mod,
    "**=": _guarded_pow,
    "<<=": _guarded_lshift,
}


def _inplacevar(op: str, x, y):
    if op not in _INPLACE:
        raise ValueError(f"operator {op} is not allowed")
    return _INPLACE[op](x, y)


def _money(value) -> Decimal:
    """Round to cents the way finance does (half up), from a number or a string.

    NaN, infinity and what is no number are a ValueError naming the value: ``decimal`` would
    let NaN through into case data and say only "[<class 'decimal.InvalidOperation'>]".
    """
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"money() needs a number, not {value!r}") from None
    if not amount.is_finite():
        raise ValueError(f"money() needs a finite amount, not {value!r}")
    try:
        return amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    except InvalidOperation:  # more digits than the context's precision holds
        raise ValueError(f"money() amount {value!r} is too large") from None


def _today() -> date:
    return clock.now().date()


def _business_hours_from_now(hours: int) -> str:
    """An ISO datetime `hours` business hours (Mon-Fri, 09:00-17:00 UTC) from now.

    Bounded: this loop runs in our frames, which the script's time limit does not watch."""
    if isinstance(hours, bool) or not isinstance(hours, int):
        raise TypeError("business_hours_from_now() takes a whole number of hours")
    if not 0 <= hours <= MAX_BUSINESS_HOURS:
        raise ValueError(f"business_hours_from_now() takes 0 to {MAX_BUSINESS_HOURS} hours")
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
_SAFE_BUILTINS["sum"] = _guarded_sum

HELPERS: dict[str, Any] = {
    "Decimal": GuardedDecimal,
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
    "_getattr_": _guarded_getattr,
    "_getitem_": default_guarded_getitem,
    "_getiter_": default_guarded_getiter,
    "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
    "_unpack_sequence_": guarded_unpack_sequence,
    "_write_": full_write_guard,
    "_inplacevar_": _inplacevar,
    "_pow_": _guarded_pow,
    "_mul_": _guarded_mul,
    "_add_": _guarded_add,
    "_lshift_": _guarded_lshift,
    "_mod_": _guarded_mod,
    "_format_": _format,
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


class _Limits:
    """A trace function on the script's own frames: its wall-clock and memory limits.

    When it raises, CPython unsets the trace for the rest of the run, so whatever the script
    does after that is unwatched. Hence what it raises is ``_Expired``, a BaseException that
    no handler a script may write catches (``except Exception``; a bare ``except:`` and
    ``finally`` are refused at compile time), and the script simply unwinds.
    """

    MEMORY_EVERY = 250  # opcodes between two reads of the resident size

    def __init__(self, seconds: float):
        self.deadline = time.monotonic() + seconds
        rss = _resident_bytes()
        self.ceiling = None if rss is None else rss + MAX_SCRIPT_MEMORY
        self.events = 0

    def __call__(self, frame, event, arg):
        if frame.f_code.co_filename != SCRIPT_FILENAME:
            return None
        # Opcode events too: `while True: pass` on one line raises no line events.
        frame.f_trace_opcodes = True
        return self._local

    def _local(self, frame, event, arg):
        if time.monotonic() > self.deadline:
            raise _Expired
        self.events += 1
        if self.ceiling is not None and self.events % self.MEMORY_EVERY == 0:
            rss = _resident_bytes()
            if rss is not None and rss > self.ceiling:
                raise _OutOfMemory
        return self._local


def _resident_bytes() -> int | None:
    """This process's resident memory (Linux); None where /proc is not there."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE_SIZE
    except (OSError, ValueError, IndexError):
        return None


_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _run_with_deadline(fn, seconds: float):
    try:
        return _run_armed(fn, seconds)
    except _OutOfMemory:
        limit = MAX_SCRIPT_MEMORY // 2**20
        message = f"script used more than its memory limit of {limit} MB"
        raise ScriptMemoryExceeded(message) from None
    except _Expired:
        raise ScriptTimeout(f"script exceeded its time limit of {seconds:g} s") from None


def _run_armed(fn, seconds: float):
    previous = sys.gettrace()
    sys.settrace(_Limits(seconds))
    try:
        with decimal.localcontext(_decimal_context()):
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

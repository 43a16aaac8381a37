"""Properties of money everywhere it enters or leaves: rounding, parsing, forms, scripts, storage.

Amounts are generated as whole cents and formatted the ways people and ERPs write them; bad
amounts are NaN and infinity in their spellings, absurd sizes, thousands separators and more
than two decimals. Whatever the door (a ledger write, a CSV import, a case form, a process
script), an amount is a Decimal to the cent and a bad one is refused with a message that
says what is wrong. Hand-worked cases live in test_ledger_computations.py and
test_ledger_imports.py; these are the properties.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from wtforms import Form

from casemgr.engine import workflows
from casemgr.engine.scripts import HELPERS
from casemgr.engine.serialization import serializer
from casemgr.engine.specs import parse_process
from casemgr.forms.fields import MAX_AMOUNT, decimal_places, money_field
from casemgr.forms.registry import validate
from casemgr.ledger.aging import MAX_MONEY, money
from casemgr.ledger.imports import parse_file
from casemgr.ledger.operations import parse_amount

script_money = HELPERS["money"]

FAST = settings(max_examples=60, deadline=None, derandomize=True, database=None)

# Whole cents up to what a Numeric(14, 2) column holds, as exact two-place Decimals.
cents = st.integers(min_value=1, max_value=int(MAX_MONEY * 100))
amounts = cents.map(lambda c: Decimal(c).scaleb(-2))
form_amounts = st.integers(0, int(MAX_AMOUNT * 100)).map(lambda c: Decimal(c).scaleb(-2))
# Any finite decimal a person or a computation might produce, up to six places.
decimals = st.decimals(
    min_value=Decimal("-1e12"), max_value=Decimal("1e12"), places=6, allow_nan=False
)


def spellings(x: Decimal) -> st.SearchStrategy[str]:
    """How the same amount is written: 12.50, 12.5 (or 12), 12.500, padded with spaces."""
    short = f"{x:.2f}".rstrip("0").rstrip(".")
    return st.sampled_from([f"{x:.2f}", short, f"{x:.2f}0", f" {x:.2f} "])


def is_money(value) -> bool:
    return isinstance(value, Decimal) and value.as_tuple().exponent == -2


NOT_FINITE = ["NaN", "nan", "-NaN", "sNaN", "Infinity", "inf", "-inf", "+Infinity"]
NOT_A_NUMBER = ["1,2,3", "12,50", "1.234,56", "$12.50", "12.50 USD", "twelve", "1..2", "--1", ""]
TOO_LARGE = ["1e400", "1E+400", "9" * 40, "1000000000000.00", "-1e13"]
TOO_FINE = ["0.001", "12.345", "1.005", "0.0001", "1e-3"]


# --- Rounding ------------------------------------------------------------------------------


@FAST
@given(decimals)
@example(Decimal("0.125"))
@example(Decimal("-2.675"))
@example(Decimal("0.005"))
def test_money_is_to_the_cent_rounding_half_away_from_zero(x):
    m = money(x)
    assert is_money(m)
    assert abs(m - x) <= Decimal("0.005")
    if abs(m - x) == Decimal("0.005"):
        assert abs(m) > abs(x)  # a half cent goes up, never to the even cent
    assert money(m) == m


@FAST
@given(st.one_of(decimals, st.integers(-(10**12), 10**12)))
def test_the_script_helper_rounds_exactly_as_the_ledger_does(x):
    assert script_money(x) == money(Decimal(x))
    assert script_money(str(x)) == money(Decimal(x))
    assert is_money(script_money(x))


@FAST
@given(st.floats(min_value=-1e9, max_value=1e9, allow_nan=False))
def test_the_script_helper_reads_a_float_as_it_is_printed(f):
    # 0.1 + 0.2 prints as 0.30000000000000004 and is 0.30, not 0.3000000000000000444...
    assert script_money(f) == money(Decimal(repr(f)))


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), *NOT_FINITE])
def test_the_script_helper_refuses_what_is_not_a_finite_amount(value):
    with pytest.raises(ValueError, match=r"money\(\) needs a finite amount"):
        script_money(value)


@pytest.mark.parametrize("value", ["twelve", "1,2,3", "", None, True, [1]])
def test_the_script_helper_refuses_what_is_not_a_number(value):
    with pytest.raises(ValueError, match=r"money\(\) needs a number"):
        script_money(value)


@pytest.mark.parametrize("value", [Decimal("1e30"), 1e300, "1e400"])
def test_the_script_helper_refuses_absurd_sizes(value):
    with pytest.raises(ValueError, match="too large"):
        script_money(value)


# --- The ledger's amounts (credit memos, write-offs, payments, promises, orders) -----------


@FAST
@given(amounts.flatmap(lambda x: st.tuples(st.just(x), spellings(x))))
def test_parse_amount_reads_back_what_was_written(pair):
    x, text = pair
    parsed = parse_amount(text)
    assert parsed == x
    assert is_money(parsed)
    assert parse_amount(x) == x  # a Decimal goes through unchanged


@FAST
@given(st.floats(allow_nan=True, allow_infinity=True))
def test_parse_amount_refuses_every_float(f):
    with pytest.raises(ValueError, match="not float"):
        parse_amount(f)


@FAST
@given(amounts, st.integers(1, 9), st.integers(1, 4))
def test_parse_amount_refuses_fractions_of_a_cent(x, digit, zeros):
    text = f"{x:.2f}" + "0" * (zeros - 1) + str(digit)
    with pytest.raises(ValueError, match="more than two decimals"):
        parse_amount(text)


@FAST
@given(st.integers(int(MAX_MONEY * 100) + 1, 10**40))
def test_parse_amount_refuses_what_no_column_holds(c):
    with pytest.raises(ValueError, match="too large"):
        parse_amount(f"{Decimal(c).scaleb(-2)}")


@FAST
@given(st.integers(-int(MAX_MONEY * 100), 0))
def test_parse_amount_refuses_nothing_and_less(c):
    with pytest.raises(ValueError, match="greater than zero"):
        parse_amount(f"{Decimal(c).scaleb(-2)}")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        *[(t, "finite") for t in NOT_FINITE],
        *[(t, "not a number") for t in NOT_A_NUMBER],
        *[(t, "too large") for t in TOO_LARGE[:4]],
        *[(t, "more than two decimals") for t in TOO_FINE],
    ],
)
def test_parse_amount_says_what_is_wrong(text, message):
    with pytest.raises(ValueError, match=message):
        parse_amount(text)


# --- CSV imports ---------------------------------------------------------------------------

HEADER = "customer_number,number,invoice_date,due_date,amount\n"


def invoice_rows(texts: list[str]) -> str:
    lines = [f'C-1,I-{n},2024-01-01,2024-01-31,"{text}"' for n, text in enumerate(texts, start=2)]
    return HEADER + "\n".join(lines) + "\n"


@FAST
@given(st.lists(amounts.flatmap(lambda x: st.tuples(st.just(x), spellings(x))), max_size=20))
def test_an_import_reads_every_amount_exactly(pairs):
    parsed = parse_file("invoices", invoice_rows([text for _, text in pairs]))
    assert parsed.errors == []
    got = [rec["amount"] for _, rec in parsed.rows]
    assert got == [x for x, _ in pairs]
    assert all(is_money(a) for a in got)


BAD_IMPORT_AMOUNTS = [*NOT_FINITE, *NOT_A_NUMBER[:-1], *TOO_LARGE, *TOO_FINE, "-5.00", "1e3"]


@FAST
@given(
    st.lists(amounts.map(lambda x: f"{x:.2f}"), max_size=5),
    st.lists(st.sampled_from(BAD_IMPORT_AMOUNTS), min_size=1, max_size=5),
    st.randoms(use_true_random=False),
)
def test_an_import_names_every_bad_amount_and_keeps_none(good, bad, rnd):
    texts = good + bad
    rnd.shuffle(texts)
    parsed = parse_file("invoices", invoice_rows(texts))
    bad_rows = {n for n, t in enumerate(texts, start=2) if t in BAD_IMPORT_AMOUNTS}
    assert {e.row for e in parsed.errors} == bad_rows
    assert all(e.field == "amount" and e.message for e in parsed.errors)
    assert {line for line, _ in parsed.rows}.isdisjoint(bad_rows)


def test_an_unquoted_thousands_separator_is_a_bad_row_not_a_smaller_amount():
    parsed = parse_file("invoices", HEADER + "C-1,I-1,2024-01-01,2024-01-31,1,234.50\n")
    assert parsed.rows == []
    assert "more values than the header has columns" in parsed.errors[0].message


# --- Case forms ----------------------------------------------------------------------------


class AmountForm(Form):
    amount = money_field("Amount")
    optional = money_field("Optional amount", required=False)


@FAST
@given(form_amounts.flatmap(lambda x: st.tuples(st.just(x), spellings(x))))
def test_a_form_keeps_an_amount_to_the_cent(pair):
    x, text = pair
    clean, errors = validate(AmountForm, {"amount": text})
    assert errors == {}
    assert clean["amount"] == x
    assert is_money(clean["amount"])
    assert clean["optional"] is None


@FAST
@given(form_amounts, st.integers(1, 9))
def test_a_form_refuses_a_fraction_of_a_cent_instead_of_rounding_it(x, digit):
    # It used to keep 12.345 as 12.34 (banker's rounding, and no word to the user).
    clean, errors = validate(AmountForm, {"amount": f"{x:.2f}{digit}"})
    assert errors["amount"] == ["Enter at most 2 decimals, e.g. 12.50."]
    assert clean["amount"] is None


@FAST
@given(st.floats(min_value=0, max_value=1e8, allow_nan=False))
def test_a_json_float_is_kept_only_when_it_is_a_whole_cent(f):
    clean, errors = validate(AmountForm, {"amount": f})
    if decimal_places(Decimal(repr(f))) <= 2:
        assert clean["amount"] == Decimal(repr(f)) and errors == {}
    else:  # 0.1 + 0.2 is 0.30000000000000004: refused, not silently 0.30
        assert "amount" in errors and clean["amount"] is None


@pytest.mark.parametrize("text", [*NOT_FINITE, "1e400", "100000000.01", "-0.01", "1,2,3"])
def test_a_form_refuses_bad_amounts_with_a_message(text):
    clean, errors = validate(AmountForm, {"amount": text})
    assert clean["amount"] is None or clean["amount"] > MAX_AMOUNT or clean["amount"] < 0
    assert errors["amount"] and all(isinstance(m, str) and m for m in errors["amount"])


@FAST
@given(decimals)
def test_decimal_places_counts_the_digits_that_matter(x):
    places = decimal_places(x)
    assert x == round(x, places)  # nothing is lost at that many places
    if places:
        assert x != round(x, places - 1)  # and one fewer would lose something
    padded = Decimal(f"{x:f}0") if "." in f"{x:f}" else Decimal(f"{x:f}.00")
    assert decimal_places(padded) == places  # trailing zeros do not count


# --- Storage in the workflow ---------------------------------------------------------------

values = st.recursive(
    st.one_of(
        decimals,
        amounts,
        st.decimals(allow_nan=False, allow_infinity=True),
        st.dates(),
        st.datetimes(timezones=st.just(UTC)),
        st.integers(),
        st.text(max_size=5),
        st.none(),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)


def same(a, b) -> bool:
    """Equal and of the same type all the way down (2 == Decimal(2), but not for a ledger)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, Decimal):
        return str(a) == str(b)  # exactly: 12.50 stays 12.50, not 12.5
    return a == b


@FAST
@given(values)
def test_the_serializer_gives_back_exactly_what_it_was_given(value):
    stored = json.dumps(serializer.registry.convert(value))
    assert same(serializer.registry.restore(json.loads(stored)), value)


LOOP = (Path(__file__).parent / "bpmn" / "loop.bpmn").read_text()


@settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.dictionaries(st.from_regex(r"[a-z]{1,8}", fullmatch=True), values, max_size=5))
def test_case_data_survives_a_save_and_load_of_the_workflow(ctx, data):
    assume(not {"count", "rounds", "outcome"} & data.keys())
    parsed = parse_process(LOOP)
    wf = workflows.new_workflow(parsed, {**data, "count": 0, "rounds": 1})
    wf.do_engine_steps()
    loaded = workflows.load(workflows.dump(wf), parsed=parsed)
    [task] = workflows.ready_human_tasks(loaded)
    assert same({k: task.data[k] for k in data}, data)
    # And after the process has worked on it: a script ran, the case was stored again.
    task.run()
    loaded.do_engine_steps()
    again = workflows.load(workflows.dump(loaded), parsed=parsed)
    assert again.is_completed()
    assert same({k: again.data[k] for k in data}, data)


def test_a_stored_amount_keeps_its_cents_and_type():
    stored = json.dumps(serializer.registry.convert({"amount": Decimal("12.50")}))
    assert serializer.registry.restore(json.loads(stored)) == {"amount": Decimal("12.50")}
    assert str(serializer.registry.restore(json.loads(stored))["amount"]) == "12.50"
    assert isinstance(serializer.registry.restore(json.loads(stored))["amount"], Decimal)
    when = datetime(2024, 1, 31, 12, tzinfo=UTC)
    back = serializer.registry.restore(
        json.loads(json.dumps(serializer.registry.convert([date(2024, 1, 31), when])))
    )
    assert back == [date(2024, 1, 31), when]

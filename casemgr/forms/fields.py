"""Field helpers shared by the case types' forms."""

from __future__ import annotations

from decimal import Decimal

from wtforms import DecimalField
from wtforms.validators import Regexp, ValidationError

MAX_AMOUNT = Decimal("100000000.00")


def decimal_places(value: Decimal) -> int:
    """Decimals that carry a digit: 12.340 has 2, 1200 and 0.000 have none."""
    _sign, digits, exponent = value.as_tuple()
    significant = "".join(map(str, digits)).rstrip("0")
    if not significant or not isinstance(exponent, int):
        return 0
    return max(0, -(exponent + len(digits) - len(significant)))


class FiniteDecimalField(DecimalField):
    """A DecimalField that refuses NaN and Infinity, which Decimal accepts but money is not,
    and more decimals than ``places``: the form's clean value is quantized to ``places``, so
    12.345 would otherwise become 12.34 without anyone being told."""

    def process_formdata(self, valuelist):
        if valuelist and not str(valuelist[0]).strip():
            self.data = None  # an empty optional amount is no amount, not a format error
            return
        super().process_formdata(valuelist)
        if self.data is None:
            return
        if not self.data.is_finite():
            self.data = None
            raise ValueError(self.gettext("Not a valid decimal value."))
        if self.places is not None and decimal_places(self.data) > self.places:
            self.data = None
            raise ValueError(f"Enter at most {self.places} decimals, e.g. 12.50.")


class MoneyRange:
    """NumberRange for an amount that may be absent: checks only a value that is there."""

    def __init__(self, low: Decimal, high: Decimal):
        self.low, self.high = low, high
        self.field_flags = {"min": low, "max": high}

    def __call__(self, form, field):
        if field.data is None:
            return
        if field.data < self.low or field.data > self.high:
            raise ValidationError(f"Enter an amount from {self.low} to {self.high}.")


def money_field(label: str, required: bool = True, minimum: str = "0.00", **kw) -> DecimalField:
    """Money: two places, never negative, never absurd."""
    from wtforms.validators import InputRequired

    validators = [MoneyRange(Decimal(minimum), MAX_AMOUNT)]
    if required:
        validators.insert(0, InputRequired())
    # No Optional() when not required: it would stop the chain, and the forms' own
    # validate_<field> rules (e.g. "required when reducing") must still run on an empty value.
    return FiniteDecimalField(
        label,
        places=2,
        validators=validators,
        render_kw={"placeholder": "12500.00", "inputmode": "decimal"},
        **kw,
    )


def tax_id_validator():
    return Regexp(r"^\d{2}-\d{7}$", message="Enter the federal tax ID as 12-3456789.")


class Context:
    """Reads the case data a form was validated against (set by the registry)."""

    @staticmethod
    def of(form) -> dict:
        return getattr(form, "context", None) or {}


def require_if(form, field, condition: bool, message: str) -> None:
    if condition and (field.data is None or field.data == "" or field.data == []):
        raise ValidationError(message)


def find_customer(number: str | None):
    """The ledger's customer for a number typed into a form (None when blank or unknown)."""
    from casemgr.extensions import db
    from casemgr.models import Customer

    if not number:
        return None
    return db.session.execute(
        db.select(Customer).filter_by(number=str(number).strip())
    ).scalar_one_or_none()


def check_customer(field) -> None:
    """A form field naming a customer must name one the ledger knows."""
    if field.data and find_customer(field.data) is None:
        raise ValidationError(f"There is no customer {str(field.data).strip()} in the ledger.")

"""Field helpers shared by the case types' forms."""

from __future__ import annotations

from decimal import Decimal

from wtforms import DecimalField
from wtforms.validators import NumberRange, Optional, Regexp, ValidationError

MAX_AMOUNT = Decimal("100000000.00")


def money_field(label: str, required: bool = True, minimum: str = "0.00", **kw) -> DecimalField:
    """Money: two places, never negative, never absurd."""
    from wtforms.validators import InputRequired

    first = InputRequired() if required else Optional()
    return DecimalField(
        label,
        places=2,
        validators=[first, NumberRange(min=Decimal(minimum), max=MAX_AMOUNT)],
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

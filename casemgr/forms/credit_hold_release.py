"""Forms of the order credit hold release (DOMAIN.md §4).

The start form is also the ERP's contract (API.md, "Cases started by other systems"): the four
fields below, an unknown customer refused with a 422.
"""

from __future__ import annotations

from decimal import Decimal

from wtforms import DateField, Form, SelectField, StringField, TextAreaField
from wtforms.validators import InputRequired, Length, ValidationError

from casemgr.engine import clock
from casemgr.extensions import db
from casemgr.forms.fields import Context, check_customer, find_customer, money_field, require_if
from casemgr.forms.registry import register
from casemgr.ledger.operations import customer_open_balance
from casemgr.models import Order

HOLD_REASONS = [
    ("over_limit", "Over the credit limit"),
    ("past_due", "Past-due balance"),
    ("account_hold", "Account on hold"),
    ("cash_in_advance", "Cash in advance"),
]


class BlankableDateField(DateField):
    """A date that may be left empty without a format error, so that a rule such as
    "required for a promise to pay" still runs (Optional() would stop the chain)."""

    def process_formdata(self, valuelist):
        if valuelist and not str(valuelist[0]).strip():
            self.data = None
            return
        super().process_formdata(valuelist)


@register("credit_hold_start")
class CreditHoldStartForm(Form):
    order_number = StringField(
        "Order number",
        validators=[InputRequired(), Length(min=1, max=40)],
        render_kw={"placeholder": "SO-1001"},
    )
    customer_number = StringField(
        "Customer number",
        validators=[InputRequired(), Length(min=1, max=40)],
        render_kw={"placeholder": "C-100"},
    )
    amount = money_field("Order amount", minimum="0.01")
    reason = SelectField(
        "Why the ERP held the order", choices=HOLD_REASONS, validators=[InputRequired()]
    )

    def validate_customer_number(self, field):
        check_customer(field)

    def validate_order_number(self, field):
        if not field.data:
            return
        order = db.session.execute(
            db.select(Order).filter_by(number=field.data.strip())
        ).scalar_one_or_none()
        customer = find_customer(self.customer_number.data)
        if order is not None and customer is not None and order.customer_id != customer.id:
            raise ValidationError(
                f"Order {field.data.strip()} belongs to another customer in the ledger."
            )


REVIEW_ACTIONS = [
    ("release", "Release the order"),
    ("partial_release", "Release part of the order"),
    ("hold_pending_payment", "Hold until the customer pays (record a promise to pay)"),
    ("cash_in_advance", "Require cash in advance for this order"),
    ("escalate", "Escalate to the credit manager"),
]


@register("credit_hold_review")
class CreditHoldReviewForm(Form):
    review_action = SelectField("Decision", choices=REVIEW_ACTIONS, validators=[InputRequired()])
    released_amount = money_field(
        "Amount to release (partial release)", required=False, minimum="0.01"
    )
    customer_contact = StringField(
        "Customer contact reached (name, phone or e-mail)", validators=[Length(max=200)]
    )
    promise_amount = money_field(
        "Amount the customer promised to pay", required=False, minimum="0.01"
    )
    promise_date = BlankableDateField("Date the customer promised to pay by")
    review_notes = TextAreaField("Notes", validators=[Length(max=4000)])

    def validate_released_amount(self, field):
        partial = self.review_action.data == "partial_release"
        require_if(self, field, partial, "Give the amount to release.")
        if not partial or field.data is None:
            return
        amount = Context.of(self).get("amount")
        if amount is not None and field.data >= Decimal(str(amount)):
            raise ValidationError(
                f"A partial release must be less than the order amount of {amount}; "
                "choose 'Release the order' to release all of it."
            )

    def validate_customer_contact(self, field):
        require_if(
            self,
            field,
            self.review_action.data == "hold_pending_payment",
            "Say whom you reached at the customer.",
        )

    def validate_promise_amount(self, field):
        holding = self.review_action.data == "hold_pending_payment"
        require_if(self, field, holding, "Give the amount the customer promised to pay.")
        if not holding or field.data is None:
            return
        customer = find_customer(Context.of(self).get("customer_number"))
        if customer is not None:
            balance = customer_open_balance(customer)
            if field.data > balance:
                raise ValidationError(
                    f"The customer owes {balance}; a promise cannot be for more than that."
                )

    def validate_promise_date(self, field):
        holding = self.review_action.data == "hold_pending_payment"
        require_if(self, field, holding, "Give the date the customer promised to pay by.")
        today = clock.now().date()
        if holding and field.data is not None and field.data < today:
            raise ValidationError(
                f"The promised date {field.data.isoformat()} is in the past; "
                "a promise to pay must be for today or later."
            )

    def validate_review_notes(self, field):
        require_if(
            self,
            field,
            self.review_action.data in ("escalate", "cash_in_advance"),
            "Say why (the credit manager and the sales rep read this).",
        )


@register("credit_hold_decision")
class CreditHoldDecisionForm(Form):
    manager_decision = SelectField(
        "Decision",
        choices=[
            ("release", "Release (the part proposed for a partial release, else the whole order)"),
            ("refuse", "Refuse: the order stays on hold"),
        ],
        validators=[InputRequired()],
    )
    manager_comment = TextAreaField("Comment", validators=[Length(max=2000)])

    def validate_manager_comment(self, field):
        require_if(
            self,
            field,
            self.manager_decision.data == "refuse",
            "Say why the order stays on hold (the sales rep reads this).",
        )

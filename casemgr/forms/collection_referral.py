"""Forms of the collection agency referral (DOMAIN.md §5)."""

from __future__ import annotations

from decimal import Decimal

from wtforms import (
    DateField,
    Form,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import InputRequired, Length, NumberRange, Optional, ValidationError

from casemgr.engine import clock
from casemgr.forms.fields import (
    Context,
    FiniteDecimalField,
    check_customer,
    find_customer,
    money_field,
    require_if,
)
from casemgr.forms.registry import register
from casemgr.ledger.operations import customer_open_balance

TRIGGERS = [
    ("over_90_days", "Balance over 90 days past due"),
    ("over_120_days", "Balance over 120 days past due"),
    ("broken_promises", "Two broken promises to pay"),
    ("specialist_decision", "Specialist's decision"),
]

AGENCIES = [
    ("abc_amega", "ABC-Amega"),
    ("atradius", "Atradius Collections"),
    ("coface", "Coface North America"),
    ("transworld", "Transworld Systems"),
    ("allianz_trade", "Allianz Trade Collections"),
]

PACKET_ITEMS = [
    ("invoices", "Copies of the open invoices"),
    ("statement", "Statement of account"),
    ("contact_log", "Collection contact log"),
]

APPROVE_OR_REJECT = [("approve", "Approve"), ("reject", "Reject")]


def _not_in_future(field, what: str) -> None:
    if field.data is not None and field.data > clock.now().date():
        raise ValidationError(f"The {what} cannot be in the future.")


@register("collection_referral_start")
class ReferralStartForm(Form):
    customer_number = StringField(
        "Customer number",
        validators=[InputRequired(), Length(min=1, max=40)],
        render_kw={"placeholder": "C-100"},
    )
    trigger = SelectField("Why refer the account", choices=TRIGGERS, validators=[InputRequired()])
    balance = money_field(
        "Balance to refer (leave empty for the ledger's open balance)",
        required=False,
        minimum="0.01",
    )
    notes = TextAreaField("Collection history and notes", validators=[Length(max=4000)])

    def validate_customer_number(self, field):
        check_customer(field)

    def validate_balance(self, field):
        customer = find_customer(self.customer_number.data)
        if field.data is None or customer is None:
            return
        owed = customer_open_balance(customer)
        if field.data > owed:
            raise ValidationError(
                f"The customer owes {owed} in the ledger; refer at most that amount."
            )


@register("collection_final_demand")
class FinalDemandForm(Form):
    letter_sent_on = DateField("Final demand letter sent on", validators=[InputRequired()])
    letter_channel = SelectField(
        "Sent by",
        choices=[
            ("registered_mail", "Registered mail"),
            ("mail", "Mail"),
            ("email", "E-mail"),
            ("courier", "Courier"),
        ],
        validators=[InputRequired()],
    )
    demand_notes = TextAreaField("Notes", validators=[Length(max=2000)])

    def validate_letter_sent_on(self, field):
        _not_in_future(field, "letter's date")


@register("collection_rep_objection")
class RepObjectionForm(Form):
    objection = SelectField(
        "Your answer",
        choices=[
            ("no_objection", "No objection to the referral"),
            ("object", "I object to the referral"),
        ],
        validators=[InputRequired()],
    )
    objection_reason = TextAreaField(
        "Reason for the objection (the credit manager reads it)", validators=[Length(max=2000)]
    )

    def validate_objection_reason(self, field):
        require_if(
            self, field, self.objection.data == "object", "Say why you object to the referral."
        )


@register("collection_referral_approval")
class ReferralApprovalForm(Form):
    referral_decision = SelectField(
        "Refer the account to a collection agency?",
        choices=APPROVE_OR_REJECT,
        validators=[InputRequired()],
    )
    referral_comment = TextAreaField("Comment", validators=[Length(max=2000)])

    def validate_referral_comment(self, field):
        require_if(
            self,
            field,
            self.referral_decision.data == "reject",
            "Say why the account is not referred.",
        )
        require_if(
            self,
            field,
            bool(Context.of(self).get("sales_rep_objected")),
            "The sales rep objected: answer the objection in the comment.",
        )


@register("collection_agency_handoff")
class AgencyHandoffForm(Form):
    agency = SelectField("Collection agency", choices=AGENCIES, validators=[InputRequired()])
    agency_reference = StringField(
        "Agency's file reference", validators=[Optional(), Length(max=60)]
    )
    packet_sent_on = DateField("Packet sent to the agency on", validators=[InputRequired()])
    packet_contents = SelectMultipleField(
        "Packet contents", choices=PACKET_ITEMS, validators=[InputRequired()]
    )
    contingency_fee_pct = FiniteDecimalField(
        "Agency's contingency fee (% of what it recovers, 0-50)",
        places=2,
        validators=[InputRequired(), NumberRange(min=Decimal("0"), max=Decimal("50"))],
        render_kw={"placeholder": "25.00", "inputmode": "decimal"},
    )
    handoff_notes = TextAreaField("Notes", validators=[Length(max=2000)])

    def validate_packet_sent_on(self, field):
        _not_in_future(field, "packet's date")

    def validate_packet_contents(self, field):
        missing = [label for value, label in PACKET_ITEMS if value not in (field.data or [])]
        if missing:
            raise ValidationError("The packet must include: " + ", ".join(missing).lower() + ".")


@register("collection_recovery")
class RecoveryForm(Form):
    recovered_gross = money_field("Amount the agency recovered (before its fee)")
    recovered_on = DateField("Recovered on", validators=[InputRequired()])
    agency_status = SelectField(
        "Agency's report",
        choices=[
            ("more_expected", "More recoveries expected"),
            ("final", "Final: the agency closed the file, the rest is unrecoverable"),
        ],
        validators=[InputRequired()],
    )
    recovery_notes = TextAreaField("Notes", validators=[Length(max=2000)])

    def validate_recovered_on(self, field):
        _not_in_future(field, "recovery date")

    def validate_recovered_gross(self, field):
        data = Context.of(self)
        referred = data.get("referred_balance")
        if field.data is None or referred is None:
            return
        so_far = Decimal(str(data.get("total_recovered_gross") or "0"))
        left = Decimal(str(referred)) - so_far
        if field.data > left:
            raise ValidationError(
                f"Only {left} of the {referred} referred is still unrecovered; "
                "a recovery cannot be more than that."
            )


@register("collection_write_off_approval")
class WriteOffApprovalForm(Form):
    write_off_decision = SelectField(
        "Write off the unrecoverable remainder as bad debt?",
        choices=APPROVE_OR_REJECT,
        validators=[InputRequired()],
    )
    write_off_comment = TextAreaField("Comment", validators=[Length(max=2000)])

    def validate_write_off_comment(self, field):
        require_if(
            self,
            field,
            self.write_off_decision.data == "reject",
            "Say why the remainder is not written off.",
        )

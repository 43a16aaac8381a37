"""Forms of dispute resolution: short payments, deductions, billing disputes (DOMAIN.md §2)."""

from __future__ import annotations

from wtforms import BooleanField, Form, SelectField, TextAreaField
from wtforms.validators import InputRequired, Length, ValidationError

from casemgr.forms.fields import Context, money_field, require_if
from casemgr.forms.freight_claim import (
    EXCEPTION_TYPES,
    EmptyChoiceAllowed,
    OptionalDateField,
    as_money,
    check_concealed_reported,
    check_customer,
    check_delivery_date,
    check_invoice_of,
    check_not_above_balance,
    check_not_future,
    invoice_balance,
    pro_number_field,
    text_field,
)
from casemgr.forms.registry import register

REASON_CODES = [
    ("pricing", "Pricing"),
    ("quantity_short", "Quantity short"),
    ("damaged", "Damaged"),
    ("not_received", "Not received"),
    ("returned_goods", "Returned goods"),
    ("promotional_allowance", "Promotional or program allowance"),
    ("duplicate_billing", "Duplicate billing"),
    ("tax", "Tax"),
    ("freight", "Freight charges"),
]
SOURCES = [
    ("short_payment", "Short payment found in cash application"),
    ("deduction", "Deduction taken by the customer"),
    ("customer_dispute", "Dispute raised by the customer"),
]
# Goods damaged or short in transit are the carrier's liability: a freight claim.
IN_TRANSIT_REASONS = ("damaged", "quantity_short")
NOTICE_CHANNELS = [("email", "E-mail"), ("letter", "Letter"), ("phone", "Phone")]
COLLECTION_ACTIONS = [
    ("rebill", "Re-bill the customer"),
    ("collect", "Collect the short-paid amount"),
]


@register("dispute_intake")
class DisputeIntakeForm(Form):
    customer_number = text_field("Customer number", max_length=40)
    invoice_number = text_field("Invoice number", max_length=40)
    disputed_amount = money_field("Disputed amount", minimum="0.01")
    reason_code = SelectField("Reason", choices=REASON_CODES, validators=[InputRequired()])
    source = SelectField("Found by", choices=SOURCES, validators=[InputRequired()])
    description = TextAreaField(
        "What the customer says", validators=[InputRequired(), Length(max=2000)]
    )

    def validate_customer_number(self, field):
        check_customer(field)

    def validate_invoice_number(self, field):
        check_invoice_of(self.customer_number.data, field)

    def validate_disputed_amount(self, field):
        check_not_above_balance(
            field.data, self.customer_number.data, self.invoice_number.data, "disputed amount"
        )


@register("dispute_research")
class DisputeResearchForm(Form):
    pod_found = BooleanField("Proof of delivery found")
    allowance_on_file = BooleanField("Allowance or program agreement on file")
    price_billed = money_field("Amount billed on the disputed lines", required=False)
    price_agreed = money_field("Amount at the agreed price", required=False)
    research_notes = TextAreaField("Research notes", validators=[InputRequired(), Length(max=4000)])

    def _pricing(self) -> bool:
        return Context.of(self).get("reason_code") == "pricing"

    def validate_price_billed(self, field):
        require_if(self, field, self._pricing(), "For a pricing dispute give the amount billed.")

    def validate_price_agreed(self, field):
        require_if(self, field, self._pricing(), "For a pricing dispute give the amount agreed.")


@register("dispute_pricing_confirmation")
class DisputePricingConfirmationForm(Form):
    pricing_agreement = SelectField(
        "Was the customer's price or allowance agreed?",
        choices=[
            ("agreed", "Yes: the customer is right"),
            ("partly_agreed", "In part (give the credit owed)"),
            ("not_agreed", "No: the billed price stands"),
        ],
        validators=[InputRequired()],
    )
    agreed_credit = money_field("Credit owed under the agreement", required=False)
    rep_comment = TextAreaField(
        "Comment for the specialist", validators=[InputRequired(), Length(max=2000)]
    )

    def validate_agreed_credit(self, field):
        require_if(
            self,
            field,
            self.pricing_agreement.data == "partly_agreed",
            "Give the credit the customer is owed.",
        )
        disputed = as_money(Context.of(self).get("disputed_amount"))
        if field.data is not None and disputed is not None and field.data > disputed:
            raise ValidationError(f"The credit cannot exceed the {disputed:.2f} disputed.")


@register("dispute_resolution")
class DisputeResolutionForm(Form):
    resolution = SelectField(
        "Resolution",
        choices=[
            ("credit_memo", "Valid: issue a credit memo"),
            ("deny", "Invalid: deny and collect"),
            ("freight_claim", "Damaged or short in transit: open a freight claim"),
        ],
        validators=[InputRequired()],
    )
    resolution_notes = TextAreaField("Notes", validators=[Length(max=4000)])
    # Valid
    credit_memo_amount = money_field("Credit memo amount", required=False, minimum="0.01")
    # Invalid
    denial_reason = TextAreaField(
        "Why the dispute is denied (told to the customer)", validators=[Length(max=2000)]
    )
    collection_action = SelectField(
        "Then", choices=COLLECTION_ACTIONS, validators=[EmptyChoiceAllowed()]
    )
    customer_notified_by = SelectField(
        "Customer told by", choices=NOTICE_CHANNELS, validators=[EmptyChoiceAllowed()]
    )
    # In transit: the freight claim's data
    carrier = text_field("Carrier (name or SCAC code)", required=False, max_length=120)
    pro_number = pro_number_field(required=False)
    ship_date = OptionalDateField("Ship date")
    delivery_date = OptionalDateField("Delivery date")
    exception_type = SelectField(
        "How the damage or shortage was found",
        choices=EXCEPTION_TYPES,
        validators=[EmptyChoiceAllowed()],
    )
    concealed_reported_date = OptionalDateField("Concealed damage reported to the carrier on")
    claimed_amount = money_field(
        "Amount to claim from the carrier (default: the disputed amount)",
        required=False,
        minimum="0.01",
    )

    def _is(self, resolution: str) -> bool:
        return self.resolution.data == resolution

    def validate_resolution(self, field):
        reason = Context.of(self).get("reason_code")
        if field.data == "freight_claim" and reason not in IN_TRANSIT_REASONS:
            raise ValidationError(
                "A freight claim is for goods damaged or short in transit; this dispute's "
                f"reason is {reason}."
            )

    def validate_credit_memo_amount(self, field):
        if not self._is("credit_memo"):
            return
        require_if(self, field, True, "Give the credit memo amount.")
        context = Context.of(self)
        disputed = as_money(context.get("disputed_amount"))
        if disputed is not None and field.data > disputed:
            raise ValidationError(f"A credit memo cannot exceed the {disputed:.2f} disputed.")
        check_not_above_balance(
            field.data, context.get("customer_number"), context.get("invoice_number"), "credit memo"
        )

    def validate_denial_reason(self, field):
        require_if(self, field, self._is("deny"), "Say why the dispute is denied.")

    def validate_collection_action(self, field):
        require_if(self, field, self._is("deny"), "Choose re-bill or collect.")

    def validate_customer_notified_by(self, field):
        require_if(self, field, self._is("deny"), "Say how the customer was told.")

    def validate_carrier(self, field):
        require_if(self, field, self._is("freight_claim"), "Give the carrier.")

    def validate_pro_number(self, field):
        require_if(self, field, self._is("freight_claim"), "Give the PRO number.")

    def validate_ship_date(self, field):
        require_if(self, field, self._is("freight_claim"), "Give the ship date.")
        check_not_future(field, "ship date")

    def validate_delivery_date(self, field):
        require_if(self, field, self._is("freight_claim"), "Give the delivery date.")
        check_delivery_date(field, self.ship_date.data)

    def validate_exception_type(self, field):
        require_if(
            self, field, self._is("freight_claim"), "Say how the damage or shortage was found."
        )

    def validate_concealed_reported_date(self, field):
        if self._is("freight_claim"):
            check_concealed_reported(self, field, self.exception_type.data, self.delivery_date.data)


@register("dispute_credit_approval")
class DisputeCreditApprovalForm(Form):
    decision = SelectField(
        "Decision",
        choices=[
            ("approve", "Approve the credit memo"),
            ("reject", "Reject: the dispute is denied"),
            ("send_back", "Send back to the specialist"),
        ],
        validators=[InputRequired()],
    )
    comment = TextAreaField("Comment", validators=[Length(max=2000)])

    def validate_decision(self, field):
        if field.data != "approve":
            return
        context = Context.of(self)
        amount = as_money(context.get("credit_memo_amount"))
        invoice = context.get("invoice_number")
        balance = invoice_balance(context.get("customer_number"), invoice)
        if amount is not None and balance is not None and amount > balance:
            raise ValidationError(
                f"Invoice {invoice} now has only {balance:.2f} open, less than the "
                f"{amount:.2f} credit memo: send it back to the specialist to change it."
            )

    def validate_comment(self, field):
        require_if(
            self,
            field,
            self.decision.data in ("reject", "send_back"),
            "Say why (the specialist sees this comment).",
        )


@register("dispute_denial")
class DisputeDenialForm(Form):
    denial_reason = TextAreaField(
        "Why the dispute is denied (told to the customer)",
        validators=[InputRequired(), Length(max=2000)],
    )
    collection_action = SelectField(
        "Then", choices=COLLECTION_ACTIONS, validators=[InputRequired()]
    )
    customer_notified_by = SelectField(
        "Customer told by", choices=NOTICE_CHANNELS, validators=[InputRequired()]
    )


@register("dispute_escalation")
class DisputeEscalationForm(Form):
    escalation_action = SelectField(
        "What was done",
        choices=[
            ("followed_up", "Followed up with the specialist"),
            ("reassigned", "Reassigned the dispute"),
            ("customer_contacted", "Contacted the customer"),
        ],
        validators=[InputRequired()],
    )
    escalation_note = TextAreaField("Note", validators=[InputRequired(), Length(max=2000)])

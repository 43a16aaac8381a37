"""Forms of the outbound freight claim (DOMAIN.md §3).

The ledger look-ups (customer, invoice, open balance) and the carrier-field rules live here
and are shared with the dispute forms, whose resolution can open a freight claim.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation

from wtforms import BooleanField, DateField, Form, SelectField, StringField, TextAreaField
from wtforms.validators import InputRequired, Length, ValidationError

from casemgr.extensions import db
from casemgr.forms.fields import Context, check_customer, find_customer, money_field, require_if
from casemgr.forms.registry import register
from casemgr.ledger.operations import invoice_open_balance
from casemgr.models import Invoice

EXCEPTION_TYPES = [
    ("noted_on_receipt", "Damage or shortage noted on the delivery receipt"),
    ("concealed_damage", "Concealed damage (found after delivery)"),
]
PRO_NUMBER_PATTERN = r"^[A-Z0-9-]{6,20}$"
PRO_NUMBER_EXAMPLE = "PRO-4471902"


# --- shared helpers ----------------------------------------------------------------------
# Optional fields carry no Optional() validator: it would stop the chain, and the forms'
# validate_<field> rules ("required for concealed damage") must still run on empty values.


class OptionalDateField(DateField):
    """A date that may be left empty (a browser posts "" for an empty date input)."""

    def process_formdata(self, valuelist):
        if valuelist and not str(valuelist[0]).strip():
            self.data = None
            return
        super().process_formdata(valuelist)


class EmptyChoiceAllowed:
    """An optional choice: no "Not a valid choice" for an empty value, and the chain goes on."""

    def __call__(self, form, field):
        if field.data in (None, ""):
            field.errors[:] = []


def text_field(label: str, required: bool = True, max_length: int = 200, **kw) -> StringField:
    validators = [Length(max=max_length)]
    if required:
        validators.insert(0, InputRequired())
    return StringField(label, validators=validators, **kw)


def _upper(value):
    return value.strip().upper() if isinstance(value, str) else value


def _pro_number_format(form, field) -> None:
    if field.data and not re.fullmatch(PRO_NUMBER_PATTERN, field.data):
        raise ValidationError(
            "Enter the PRO number as the carrier prints it: 6 to 20 letters, digits or "
            f"hyphens, e.g. {PRO_NUMBER_EXAMPLE}."
        )


def pro_number_field(required: bool = True) -> StringField:
    validators = [Length(max=20), _pro_number_format]
    if required:
        validators.insert(0, InputRequired())
    return StringField(
        "PRO / bill-of-lading number",
        validators=validators,
        filters=[_upper],
        render_kw={"placeholder": PRO_NUMBER_EXAMPLE},
    )


def as_date(value) -> date | None:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def as_money(value) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        return Decimal(str(value)).quantize(Decimal("0.01"))
    except InvalidOperation:
        return None


def find_invoice(number: str | None) -> Invoice | None:
    if not number:
        return None
    return db.session.execute(
        db.select(Invoice).filter_by(number=number.strip())
    ).scalar_one_or_none()


def check_invoice_of(customer_number: str | None, field) -> None:
    """The invoice exists and belongs to the customer (no check while the customer is bad)."""
    if not field.data:
        return
    customer = find_customer(customer_number)
    if customer is None:
        return
    invoice = find_invoice(field.data)
    if invoice is None:
        raise ValidationError(f"There is no invoice {field.data} in the ledger.")
    if invoice.customer_id != customer.id:
        raise ValidationError(
            f"Invoice {field.data} belongs to customer {invoice.customer.number}, "
            f"not {customer.number}."
        )


def invoice_balance(customer_number: str | None, invoice_number: str | None) -> Decimal | None:
    """The invoice's open balance now, or None when the invoice is not the customer's."""
    customer = find_customer(customer_number)
    invoice = find_invoice(invoice_number)
    if customer is None or invoice is None or invoice.customer_id != customer.id:
        return None
    return invoice_open_balance(invoice)


def check_not_above_balance(
    amount: Decimal | None, customer_number: str | None, invoice_number: str | None, what: str
) -> None:
    balance = invoice_balance(customer_number, invoice_number)
    if amount is not None and balance is not None and amount > balance:
        raise ValidationError(
            f"The {what} of {amount:.2f} is more than invoice {invoice_number}'s open "
            f"balance of {balance:.2f}."
        )


def check_not_future(field, what: str) -> None:
    if field.data and field.data > date.today():
        raise ValidationError(f"The {what} cannot be in the future.")


def check_delivery_date(field, ship_date: date | None) -> None:
    check_not_future(field, "delivery date")
    if field.data and ship_date and field.data < ship_date:
        raise ValidationError(f"Delivery cannot be before the ship date ({ship_date.isoformat()}).")


def check_concealed_reported(
    form, field, exception_type: str | None, delivery: date | None
) -> None:
    require_if(
        form,
        field,
        exception_type == "concealed_damage",
        "Give the date the concealed damage was reported to the carrier.",
    )
    check_not_future(field, "report date")
    if field.data and delivery and field.data < delivery:
        raise ValidationError(
            f"Concealed damage is reported after delivery ({delivery.isoformat()})."
        )


def deduction_shortfall(context: dict) -> str | None:
    """Why the linked deduction can no longer be cleared as recorded, or None when it can."""
    invoice_number = context.get("deduction_invoice_number")
    amount = as_money(context.get("deduction_amount"))
    if not invoice_number or amount is None:
        return None
    balance = invoice_balance(context.get("customer_number"), invoice_number)
    if balance is None or balance >= amount:
        return None
    return (
        f"Invoice {invoice_number} now has only {balance:.2f} open, less than the "
        f"{amount:.2f} deduction this claim clears; correct the ledger first (was a "
        "payment applied to the deduction?)."
    )


def _decision_field(choices) -> SelectField:
    return SelectField("Decision", choices=choices, validators=[InputRequired()])


# --- the case's forms --------------------------------------------------------------------


@register("freight_claim_intake")
class FreightClaimIntakeForm(Form):
    customer_number = text_field("Customer number", max_length=40)
    carrier = text_field("Carrier (name or SCAC code)", max_length=120)
    pro_number = pro_number_field()
    ship_date = DateField("Ship date", validators=[InputRequired()])
    delivery_date = DateField("Delivery date", validators=[InputRequired()])
    exception_type = SelectField(
        "How the damage or shortage was found",
        choices=EXCEPTION_TYPES,
        validators=[InputRequired()],
    )
    concealed_reported_date = OptionalDateField("Concealed damage reported to the carrier on")
    claimed_amount = money_field("Amount claimed from the carrier", minimum="0.01")
    deduction_invoice_number = text_field(
        "Invoice the customer deducted from (if any)", required=False, max_length=40
    )
    deduction_amount = money_field("Amount the customer deducted", required=False, minimum="0.01")

    def validate_customer_number(self, field):
        check_customer(field)

    def validate_ship_date(self, field):
        check_not_future(field, "ship date")

    def validate_delivery_date(self, field):
        check_delivery_date(field, self.ship_date.data)

    def validate_concealed_reported_date(self, field):
        check_concealed_reported(self, field, self.exception_type.data, self.delivery_date.data)

    def validate_deduction_invoice_number(self, field):
        check_invoice_of(self.customer_number.data, field)

    def validate_deduction_amount(self, field):
        require_if(
            self,
            field,
            bool(self.deduction_invoice_number.data),
            "Give the amount the customer deducted on that invoice.",
        )
        if field.data is not None and not self.deduction_invoice_number.data:
            raise ValidationError("Give the invoice the customer deducted this amount from.")
        check_not_above_balance(
            field.data,
            self.customer_number.data,
            self.deduction_invoice_number.data,
            "deduction",
        )


@register("freight_documents")
class FreightDocumentsForm(Form):
    has_bill_of_lading = BooleanField("Bill of lading")
    has_delivery_receipt = BooleanField("Delivery receipt with the exceptions noted")
    has_commercial_invoice = BooleanField("Commercial invoice (proof of value)")
    has_photos_or_inspection = BooleanField("Photos or inspection report")
    document_references = TextAreaField(
        "Document references (file names or document-system ids, one per line)",
        validators=[InputRequired(), Length(max=2000)],
    )
    documents_note = TextAreaField("Notes", validators=[Length(max=2000)])

    def validate_has_bill_of_lading(self, field):
        if not field.data:
            raise ValidationError("A claim cannot be filed without the bill of lading.")

    def validate_has_commercial_invoice(self, field):
        if not field.data:
            raise ValidationError("The commercial invoice proves the value claimed; add it.")

    def validate_has_delivery_receipt(self, field):
        noted = Context.of(self).get("exception_type") == "noted_on_receipt"
        if noted and not field.data:
            raise ValidationError(
                "The delivery receipt with the exception noted is the proof of this claim."
            )

    def validate_has_photos_or_inspection(self, field):
        concealed = Context.of(self).get("exception_type") == "concealed_damage"
        if concealed and not field.data:
            raise ValidationError(
                "Concealed damage needs photos or an inspection report to support it."
            )


@register("freight_filing")
class FreightFilingForm(Form):
    filed_date = DateField("Filed with the carrier on", validators=[InputRequired()])
    carrier_claim_number = text_field("Carrier's claim number", max_length=40)
    filed_via = SelectField(
        "Filed by",
        choices=[
            ("portal", "Carrier portal"),
            ("email", "E-mail"),
            ("mail", "Certified mail"),
        ],
        validators=[InputRequired()],
    )
    filing_note = TextAreaField("Notes", validators=[Length(max=2000)])

    def validate_filed_date(self, field):
        check_not_future(field, "filing date")
        delivered = as_date(Context.of(self).get("delivery_date"))
        if field.data and delivered and field.data < delivered:
            raise ValidationError(f"A claim is filed after delivery ({delivered.isoformat()}).")


@register("freight_filing_warning")
class FreightFilingWarningForm(Form):
    warning_action = SelectField(
        "What was done",
        choices=[
            ("filing_now", "Filing the claim now"),
            ("documents_chased", "Chased the missing documents"),
            ("escalated", "Raised with the credit manager"),
        ],
        validators=[InputRequired()],
    )
    warning_note = TextAreaField("Notes", validators=[Length(max=2000)])


@register("freight_acknowledgment")
class FreightAcknowledgmentForm(Form):
    acknowledged_date = DateField("Carrier acknowledged the claim on", validators=[InputRequired()])
    carrier_reference = text_field("Carrier's reference (if new)", required=False, max_length=40)
    acknowledgment_note = TextAreaField("Notes", validators=[Length(max=2000)])

    def validate_acknowledged_date(self, field):
        check_not_future(field, "acknowledgment date")
        filed = as_date(Context.of(self).get("filed_date"))
        if field.data and filed and field.data < filed:
            raise ValidationError(
                f"The carrier cannot acknowledge before the filing ({filed.isoformat()})."
            )


@register("freight_follow_up")
class FreightFollowUpForm(Form):
    contacted_on = DateField("Carrier contacted on", validators=[InputRequired()])
    follow_up_note = TextAreaField(
        "What the carrier said", validators=[InputRequired(), Length(max=2000)]
    )

    def validate_contacted_on(self, field):
        check_not_future(field, "contact date")


@register("freight_outcome")
class FreightOutcomeForm(Form):
    carrier_decision = SelectField(
        "Carrier's decision",
        choices=[
            ("paid", "Paid in full"),
            ("partially_paid", "Paid in part"),
            ("declined", "Declined"),
        ],
        validators=[InputRequired()],
    )
    decision_date = DateField("Decision received on", validators=[InputRequired()])
    amount_recovered = money_field("Amount paid by the carrier")
    payment_reference = text_field(
        "Carrier's payment reference (check or remittance number)",
        required=False,
        max_length=60,
    )
    decline_reason = TextAreaField(
        "Carrier's reason for declining or paying less", validators=[Length(max=2000)]
    )
    outcome_note = TextAreaField("Notes", validators=[Length(max=2000)])

    def validate_carrier_decision(self, field):
        problem = deduction_shortfall(Context.of(self))
        if problem:
            raise ValidationError(problem)

    def validate_decision_date(self, field):
        check_not_future(field, "decision date")
        filed = as_date(Context.of(self).get("filed_date"))
        if field.data and filed and field.data < filed:
            raise ValidationError(
                f"The carrier cannot decide before the filing ({filed.isoformat()})."
            )

    def validate_amount_recovered(self, field):
        claimed = as_money(Context.of(self).get("claimed_amount"))
        decision = self.carrier_decision.data
        if field.data is None or claimed is None:
            return
        if field.data > claimed:
            raise ValidationError(f"More than the {claimed:.2f} claimed cannot be recovered.")
        if decision == "paid" and field.data != claimed:
            raise ValidationError(
                f"Paid in full means the {claimed:.2f} claimed; otherwise choose paid in part."
            )
        if decision == "partially_paid" and not Decimal("0") < field.data < claimed:
            raise ValidationError(f"A part payment is more than 0 and less than {claimed:.2f}.")
        if decision == "declined" and field.data != 0:
            raise ValidationError("A declined claim recovers 0.00.")

    def validate_payment_reference(self, field):
        require_if(
            self,
            field,
            self.carrier_decision.data in ("paid", "partially_paid"),
            "Give the carrier's payment reference.",
        )

    def validate_decline_reason(self, field):
        require_if(
            self,
            field,
            self.carrier_decision.data in ("partially_paid", "declined"),
            "Give the carrier's reason (it is needed to appeal or to write the rest off).",
        )


@register("freight_write_off_approval")
class FreightWriteOffApprovalForm(Form):
    decision = _decision_field(
        [
            ("approve", "Approve the write-off"),
            ("send_back", "Send back (pursue the carrier, or correct the outcome)"),
        ]
    )
    comment = TextAreaField("Comment", validators=[Length(max=2000)])

    def validate_decision(self, field):
        if field.data == "approve":
            problem = deduction_shortfall(Context.of(self))
            if problem:
                raise ValidationError(problem)

    def validate_comment(self, field):
        require_if(
            self, field, self.decision.data == "send_back", "Say why (the specialist sees this)."
        )

"""Forms of the new-customer credit application (DOMAIN.md §1)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from wtforms import (
    DateField,
    EmailField,
    Form,
    IntegerField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import Email, InputRequired, Length, NumberRange, Optional, ValidationError

from casemgr.forms.fields import Context, money_field, require_if, tax_id_validator
from casemgr.forms.registry import register

TERMS = [(0, "Cash in advance"), (15, "Net 15"), (30, "Net 30"), (45, "Net 45"), (60, "Net 60")]
FREE_MAIL = {"gmail.com", "yahoo.com", "hotmail.com", "outlook.com", "aol.com", "icloud.com"}


def _text(label: str, required: bool = True, max_length: int = 200, **kw) -> StringField:
    first = InputRequired() if required else Optional()
    return StringField(label, validators=[first, Length(max=max_length)], **kw)


@register("credit_intake")
class CreditIntakeForm(Form):
    legal_name = _text("Legal name")
    dba = _text("Doing business as", required=False)
    tax_id = StringField(
        "Federal tax ID (EIN)",
        validators=[InputRequired(), tax_id_validator()],
        render_kw={"placeholder": "12-3456789"},
    )
    address = TextAreaField("Billing address", validators=[InputRequired(), Length(max=500)])
    contact_email = EmailField(
        "Accounts-payable e-mail", validators=[InputRequired(), Email(), Length(max=200)]
    )
    years_in_business = IntegerField(
        "Years in business", validators=[InputRequired(), NumberRange(min=0, max=300)]
    )
    requested_limit = money_field("Requested credit limit", minimum="1.00")
    requested_terms_days = SelectField(
        "Requested terms", choices=TERMS[1:], default=30, coerce=int, validators=[InputRequired()]
    )
    trade_ref_1 = _text("Trade reference 1 (company, contact, phone)", max_length=300)
    trade_ref_2 = _text("Trade reference 2 (company, contact, phone)", max_length=300)
    trade_ref_3 = _text("Trade reference 3 (company, contact, phone)", max_length=300)
    bank_reference = _text("Bank reference (bank, officer, phone)", max_length=300)
    tax_exempt_number = _text("Tax-exempt certificate number", required=False, max_length=60)
    tax_exempt_expiry = DateField("Tax-exempt certificate expiry", validators=[Optional()])
    sales_rep = _text("Sales rep (user name)", required=False, max_length=80)

    def validate_tax_exempt_expiry(self, field):
        require_if(
            self, field, bool(self.tax_exempt_number.data), "Give the certificate's expiry date."
        )
        if field.data and field.data <= date.today():
            raise ValidationError(
                "The certificate has expired; ask the customer for a current one."
            )


@register("credit_review")
class CreditReviewForm(Form):
    bureau_source = SelectField(
        "Credit bureau",
        choices=[
            ("creditsafe", "CreditSafe"),
            ("dnb", "Dun & Bradstreet"),
            ("experian", "Experian Business"),
            ("equifax", "Equifax Business"),
        ],
        validators=[InputRequired()],
    )
    bureau_score = IntegerField(
        "Bureau score (0-1000)", validators=[InputRequired(), NumberRange(min=0, max=1000)]
    )
    bureau_report_date = DateField("Bureau report date", validators=[InputRequired()])
    trade_refs_verified = IntegerField(
        "Trade references verified (0-3)", validators=[InputRequired(), NumberRange(min=0, max=3)]
    )
    fraud_flags = SelectMultipleField(
        "Fraud flags",
        choices=[
            ("tax_id_mismatch", "Tax ID mismatch"),
            ("address_mismatch", "Address mismatch"),
            ("under_one_year", "Business under one year"),
            ("free_mail_domain", "Free-mail e-mail domain"),
        ],
        validators=[Optional()],
    )
    review_action = SelectField(
        "Next step",
        choices=[
            ("recommend", "Recommend a limit"),
            ("request_info", "Ask the customer for more information"),
        ],
        default="recommend",
        validators=[InputRequired()],
    )
    recommended_limit = money_field("Recommended credit limit", required=False)
    recommended_terms_days = SelectField(
        "Recommended terms", choices=TERMS, default=30, coerce=int, validators=[Optional()]
    )
    info_request = TextAreaField("What the customer must send", validators=[Length(max=2000)])
    review_notes = TextAreaField("Notes", validators=[Length(max=4000)])

    def validate_bureau_report_date(self, field):
        if field.data and field.data > date.today():
            raise ValidationError("The report date cannot be in the future.")

    def validate_recommended_limit(self, field):
        recommending = self.review_action.data == "recommend"
        require_if(self, field, recommending, "Recommend a limit (0 for cash in advance).")
        requested = Context.of(self).get("requested_limit")
        too_much = (
            field.data is not None
            and requested is not None
            and (field.data > Decimal(str(requested)))
        )
        if recommending and too_much:
            raise ValidationError(f"Cannot recommend more than the {requested} requested.")

    def validate_info_request(self, field):
        require_if(
            self,
            field,
            self.review_action.data == "request_info",
            "Say what the customer must send.",
        )


@register("credit_customer_info")
class CreditCustomerInfoForm(Form):
    info_received = TextAreaField(
        "Information received from the customer", validators=[InputRequired(), Length(max=4000)]
    )


@register("credit_reminder")
class CreditReminderForm(Form):
    reminder_channel = SelectField(
        "Reminder sent by",
        choices=[("email", "E-mail"), ("phone", "Phone"), ("letter", "Letter")],
        validators=[InputRequired()],
    )
    reminder_note = TextAreaField("Note", validators=[Length(max=2000)])


@register("credit_approval")
class CreditApprovalForm(Form):
    decision = SelectField(
        "Decision",
        choices=[
            ("approve", "Approve as recommended"),
            ("reduce", "Approve a lower limit"),
            ("decline", "Decline"),
            ("send_back", "Send back for more information"),
        ],
        validators=[InputRequired()],
    )
    approved_limit = money_field("Approved limit (when reducing)", required=False)
    comment = TextAreaField("Comment", validators=[Length(max=2000)])

    def validate_approved_limit(self, field):
        require_if(self, field, self.decision.data == "reduce", "Give the reduced limit.")
        recommended = Context.of(self).get("recommended_limit")
        not_lower = (
            field.data is not None
            and recommended is not None
            and (field.data >= Decimal(str(recommended)))
        )
        if self.decision.data == "reduce" and not_lower:
            raise ValidationError(f"A reduced limit must be below the {recommended} recommended.")

    def validate_comment(self, field):
        require_if(
            self,
            field,
            self.decision.data in ("reduce", "decline", "send_back"),
            "Say why (the requester sees this comment).",
        )

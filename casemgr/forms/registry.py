"""Form keys to WTForms classes, and the bridge between JSON data and a form.

A user task names its form by key; the same class renders the HTML form, validates a
browser post or an API body, and describes itself for the API (`describe`).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from werkzeug.datastructures import MultiDict
from wtforms import (
    BooleanField,
    DateField,
    DecimalField,
    EmailField,
    FileField,
    Form,
    IntegerField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange

FORMS: dict[str, type[Form]] = {}
MAX_CLEAN = Decimal("1e15")  # beyond this quantize() fails; the field's range check says why


def register(key: str):
    def decorator(cls: type[Form]) -> type[Form]:
        if key in FORMS:
            raise ValueError(f"form key {key!r} registered twice")
        cls.form_key = key
        FORMS[key] = cls
        return cls

    return decorator


def get_form_class(key: str | None) -> type[Form] | None:
    return FORMS.get(key) if key else None


def form_keys() -> list[str]:
    return sorted(FORMS)


_TYPES = [
    (SelectMultipleField, "multi_choice"),
    (SelectField, "choice"),
    (BooleanField, "boolean"),
    (DecimalField, "decimal"),
    (IntegerField, "integer"),
    (DateField, "date"),
    (EmailField, "email"),
    (TextAreaField, "text"),
    (FileField, "file"),
    (StringField, "string"),
]


def field_type(field) -> str:
    for cls, name in _TYPES:
        if isinstance(field, cls):
            return name
    return "string"


def is_required(field) -> bool:
    return any(isinstance(v, DataRequired | InputRequired) for v in field.validators)


def _limits(field) -> tuple:
    low = high = max_length = None
    for v in field.validators:
        if isinstance(v, NumberRange):
            low, high = v.min, v.max
        elif hasattr(v, "low") and hasattr(v, "high"):
            low, high = v.low, v.high
        elif isinstance(v, Length) and v.max not in (None, -1):
            max_length = v.max
    return low, high, max_length


def _plain(value):
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def describe(key: str, form_cls: type[Form] | None) -> dict:
    """The API's form description: {"key", "fields": [...]} (API.md, "A form is")."""
    if form_cls is None:
        return {"key": key, "fields": []}
    form = form_cls()
    fields = []
    for field in form:
        low, high, max_length = _limits(field)
        choices = None
        if isinstance(field, SelectField | SelectMultipleField):
            choices = [[str(v), str(label)] for v, label in (field.choices or [])]
        fields.append(
            {
                "name": field.name,
                "label": str(field.label.text),
                "type": field_type(field),
                "required": is_required(field),
                "choices": choices,
                "default": _plain(field.default),
                "placeholder": (field.render_kw or {}).get("placeholder"),
                "min": _plain(low),
                "max": _plain(high),
                "max_length": max_length,
            }
        )
    return {"key": key, "fields": fields}


def formdata_from_json(form_cls: type[Form], data: dict) -> MultiDict:
    """JSON values as the strings a browser would post, so one validation path serves both."""
    pairs = []
    for field in form_cls():
        if field.name not in data:
            continue
        value = data[field.name]
        if value is None:
            continue
        if isinstance(field, BooleanField):
            if value in (True, "true", "True", "1", 1, "y", "yes", "on"):
                pairs.append((field.name, "y"))
            elif value not in (False, "false", "False", "0", 0, "n", "no", "off", ""):
                pairs.append((field.name, "__not_a_boolean__"))
        elif isinstance(value, list):
            pairs.extend((field.name, str(v)) for v in value)
        elif isinstance(value, dict | bool):
            pairs.append((field.name, "__invalid__"))
        else:
            pairs.append((field.name, str(value)))
    return MultiDict(pairs)


def _boolean_errors(form_cls: type[Form], data: dict) -> dict:
    errors = {}
    for field in form_cls():
        if isinstance(field, BooleanField) and field.name in data:
            value = data[field.name]
            if value not in (
                True,
                False,
                None,
                "true",
                "false",
                "True",
                "False",
                "0",
                "1",
                0,
                1,
                "y",
                "n",
                "yes",
                "no",
                "on",
                "off",
                "",
            ):
                errors[field.name] = ["Not a valid boolean value."]
    return errors


def validate(
    form_cls: type[Form], data: dict, partial: bool = False, context: dict | None = None
) -> tuple[dict, dict]:
    """Validate JSON data; return (clean values, errors by field).

    With partial=True only the fields present are checked (a case started with some of its
    intake data): missing fields are no error, wrong ones are.
    """
    form = form_cls(formdata=formdata_from_json(form_cls, data))
    form.context = context or {}  # the case data, for rules that compare with it
    form.validate()
    errors = {name: list(errs) for name, errs in form.errors.items() if errs}
    errors.update(_boolean_errors(form_cls, data))
    if partial:
        errors = {name: errs for name, errs in errors.items() if name in data}
    clean = clean_values(form, only=set(data) if partial else None)
    return clean, errors


def clean_values(form: Form, only: set[str] | None = None) -> dict:
    values = {}
    for field in form:
        if field.type in ("CSRFTokenField", "SubmitField", "FileField"):
            continue
        if only is not None and field.name not in only:
            continue
        value = field.data
        if isinstance(value, str):
            value = value.strip()
        elif isinstance(value, Decimal) and value.is_finite() and abs(value) < MAX_CLEAN:
            value = value.quantize(Decimal("0.01"))
        values[field.name] = value
    return values

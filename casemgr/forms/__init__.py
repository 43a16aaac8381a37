"""WTForms for every case type, one module each, registered by form key."""

from casemgr.forms import (
    collection_referral,  # noqa: F401  (registers its forms)
    credit_application,  # noqa: F401  (registers its forms)
    credit_hold_release,  # noqa: F401  (registers its forms)
    dispute_resolution,  # noqa: F401  (registers its forms)
    freight_claim,  # noqa: F401  (registers its forms)
)
from casemgr.forms.registry import FORMS, describe, form_keys, get_form_class, validate

__all__ = ["FORMS", "describe", "form_keys", "get_form_class", "validate"]

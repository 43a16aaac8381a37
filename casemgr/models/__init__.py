"""All models, importable from one place."""

from casemgr.models.cases import Case, CaseEvent, CaseLink, TaskRecord
from casemgr.models.ledger import (
    AccountNote,
    CreditMemo,
    Customer,
    Invoice,
    Order,
    Payment,
    PromiseToPay,
    WriteOff,
)
from casemgr.models.processes import CaseType, ProcessVersion
from casemgr.models.users import ROLES, ApiToken, Notification, Role, User, user_roles

__all__ = [
    "ROLES",
    "AccountNote",
    "ApiToken",
    "Case",
    "CaseEvent",
    "CaseLink",
    "CaseType",
    "CreditMemo",
    "Customer",
    "Invoice",
    "Notification",
    "Order",
    "Payment",
    "ProcessVersion",
    "PromiseToPay",
    "Role",
    "TaskRecord",
    "User",
    "WriteOff",
    "user_roles",
]

"""All models, importable from one place."""

from casemgr.models import (
    audit_guard,  # noqa: F401  (the case timeline is append-only)
    task_json,  # noqa: F401  (closed tasks keep their summary)
)
from casemgr.models.background import (
    AgingSnapshot,
    DsoHistory,
    Heartbeat,
    JobFailure,
    ReportDelivery,
)
from casemgr.models.cases import Case, CaseEvent, CaseLink, TaskRecord
from casemgr.models.collab import Attachment, Comment
from casemgr.models.drafts import DecisionVersion, ProcessDraft
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
from casemgr.models.notify import EmailOutbox, NotificationPreference
from casemgr.models.processes import CaseType, ProcessVersion
from casemgr.models.users import ROLES, ApiToken, Notification, Role, User, user_roles
from casemgr.models.work import PRIORITIES, SavedView

__all__ = [
    "PRIORITIES",
    "ROLES",
    "AccountNote",
    "AgingSnapshot",
    "ApiToken",
    "Attachment",
    "Case",
    "CaseEvent",
    "CaseLink",
    "CaseType",
    "Comment",
    "CreditMemo",
    "Customer",
    "DecisionVersion",
    "DsoHistory",
    "EmailOutbox",
    "Heartbeat",
    "Invoice",
    "JobFailure",
    "Notification",
    "NotificationPreference",
    "Order",
    "Payment",
    "ProcessDraft",
    "ProcessVersion",
    "PromiseToPay",
    "ReportDelivery",
    "Role",
    "SavedView",
    "TaskRecord",
    "User",
    "WriteOff",
    "user_roles",
]

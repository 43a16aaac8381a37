"""Every kind of case event reads as a sentence on the case page, never as a bare key."""

from __future__ import annotations

import re

import pytest

from casemgr.extensions import db
from casemgr.models import CaseEvent
from casemgr.web.helpers import timeline

# Each kind the product writes, with a detail as its writer gives it.
KINDS = {
    "case_started": {"version": 2},
    "task_created": {"title": "Review", "role": "ar_specialist"},
    "task_claimed": {"title": "Review"},
    "task_unclaimed": {"title": "Review"},
    "task_assigned": {"title": "Review", "to": "spec2"},
    "task_completed": {"title": "Review", "data": {}},
    "task_cancelled": {"title": "Review"},
    "notified": {"to": ["mgr"], "message": "hi"},
    "case_completed": {"outcome": "approved"},
    "timer_fired": {"due": "2026-11-22T10:00:00+00:00"},
    "error": {"message": "boom"},
    "error_cleared": {"message": "boom"},
    "warning": {"message": "odd"},
    "ledger": {"action": "credit_memo"},
    "follow_up_set": {"title": "Review", "until": "2026-12-01T09:00:00+00:00"},
    "follow_up_cleared": {"title": "Review"},
    "task_priority": {"title": "Review", "was": "normal", "now": "high"},
    "task_delegated": {"title": "Review", "from": "spec", "to": "spec2", "owner": "spec"},
    "delegation_ended": {"title": "Review", "from": "spec2", "to": "spec"},
    "case_migrated": {"from_version": 1, "to_version": 2, "tasks": []},
    "case_linked": {"other_case": 7, "case_type": "freight_claim", "link": "spawned"},
    "message_received": {"message": "payment_received", "payload": {}},
    "promise_broken": {"amount": "500.00", "promised_date": "2026-11-01"},
    "attachment_added": {"filename": "pod.pdf", "size": 2048},
    "comment": {"excerpt": "Called the customer"},
    "service_called": {"operation": "ledger.credit_check", "element": "check", "result": "ok"},
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_each_event_kind_reads_as_a_sentence(ctx, kind):
    event = CaseEvent(id=1, case_id=1, at=None, actor="spec", kind=kind, detail=KINDS[kind])
    from datetime import UTC, datetime

    event.at = datetime(2026, 11, 22, tzinfo=UTC)
    [entry] = timeline([event])
    assert entry.text, kind
    assert not re.fullmatch(r"[A-Z][a-z ]+", entry.text) or " " in entry.text
    assert entry.text != kind.replace("_", " ").capitalize(), f"{kind} has no label of its own"
    assert "None" not in entry.text, entry.text


def test_labels_carry_their_details(ctx):
    from datetime import UTC, datetime

    at = datetime(2026, 11, 22, tzinfo=UTC)
    texts = {
        kind: timeline([CaseEvent(id=1, case_id=1, at=at, actor="x", kind=kind, detail=d)])[0].text
        for kind, d in KINDS.items()
    }
    assert texts["case_migrated"] == "Moved to diagram version 2 (was 1)"
    assert texts["task_delegated"] == "Delegated “Review” to spec2"
    assert texts["attachment_added"].startswith("Attached “pod.pdf” (2")
    assert "high" in texts["task_priority"] and "normal" in texts["task_priority"]
    assert texts["service_called"] == 'ledger.credit_check answered: "ok"'
    [record] = timeline(
        [
            CaseEvent(
                id=2,
                case_id=1,
                at=at,
                actor="x",
                kind="service_called",
                detail={
                    "operation": "ledger.credit_check",
                    "result": {"credit_limit": "20000.00", "exposure_after": "33500.00"},
                },
            )
        ]
    )
    assert record.text == "ledger.credit_check answered"
    assert record.data_label == "Answer"
    assert ("Credit limit", "20,000.00") in record.data
    assert ("Exposure after", "33,500.00") in record.data  # a ledger figure reads as money
    assert db.session is not None


def test_a_service_that_says_what_it_did_is_not_said_twice(ctx):
    from datetime import UTC, datetime

    at = datetime(2026, 11, 22, tzinfo=UTC)

    def event(i, kind, detail):
        return CaseEvent(id=i, case_id=1, at=at, actor="spec", kind=kind, detail=detail)

    entries = timeline(
        [
            event(1, "ledger", {"action": "credit_memo_posted", "invoice": "INV-1"}),
            event(2, "service_called", {"operation": "ledger.credit_memo", "result": 7}),
            event(3, "service_called", {"operation": "ledger.credit_check", "result": {}}),
        ]
    )
    assert [e.text for e in entries] == [
        "Ledger: credit memo posted",
        "ledger.credit_check answered",  # a look-up's answer is the only record of it
    ]

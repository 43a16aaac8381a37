"""CSV import of customers, invoices, payments and orders from the ERP: all or nothing.

Every row is checked first, against the file and the ledger, and every bad row is reported;
only a file without a single error is written, with a few bulk statements in the caller's
transaction (the caller commits, or rolls back on any exception).

Choices, as the API contract leaves them open:

* **Row numbers** are file line numbers, the header being line 1, so the first data row is
  row 2: what a spreadsheet or an editor shows next to the row. A quoted value spanning lines
  is reported at the line where its record starts. Blank lines are skipped but still counted.
  Errors about the header itself (a missing column) are reported on row 1.
* **Re-importing** the same key updates the row in place (the ERP is the source of truth), so
  importing a file twice leaves the ledger as after the first time. Keys: customer ``number``,
  invoice ``number``, order ``number``, payment ``(customer_number, reference)``. An update
  may not move an invoice or order to another customer, nor lower an invoice below what is
  already applied to it. Optional columns absent from the header leave those fields as they
  are; an order's status is kept (the hold-release case owns it).
* A row with more values than the header has columns is refused (an unquoted comma, as in
  ``12,50``, would otherwise shift or drop a value silently); extra *columns*, named in the
  header, are ignored.
* ``imported`` counts the data rows written, created plus updated.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import insert, select, tuple_, update

from casemgr.extensions import db
from casemgr.ledger.aging import MAX_MONEY, ZERO, money
from casemgr.models import CreditMemo, Customer, Invoice, Order, Payment, WriteOff
from casemgr.models.ledger import PAYMENT_METHODS

KINDS: tuple[str, ...] = ("customers", "invoices", "payments", "orders")
CHUNK = 500  # keys per IN (...) lookup: well under every database's bind-parameter limit

_AMOUNT = re.compile(r"(-?)(\d+)(?:\.(\d+))?")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_CURRENCY = re.compile(r"[A-Z]{3}")
_TRUE = {"true", "yes", "y", "1"}
_FALSE = {"false", "no", "n", "0", ""}


@dataclass(frozen=True)
class RowError:
    row: int
    field: str | None
    message: str

    def as_dict(self) -> dict:
        return {"row": self.row, "field": self.field, "message": self.message}


class CsvFormatError(ValueError):
    """The body is not CSV text at all (binary, not UTF-8, empty, no header)."""


class UnknownImportKind(LookupError):
    def __init__(self, kind: str):
        super().__init__(f"unknown import kind {kind!r}; one of {', '.join(KINDS)}")


class ImportRejected(ValueError):
    """At least one bad row: nothing was imported. ``errors`` lists every problem."""

    def __init__(self, errors: list[RowError]):
        rows = len({e.row for e in errors})
        super().__init__(f"{rows} bad row{'s' if rows != 1 else ''}; nothing was imported")
        self.errors = sorted(errors, key=lambda e: (e.row, e.field or ""))


@dataclass(frozen=True)
class ImportResult:
    kind: str
    imported: int
    created: int
    updated: int


# --- Reading the file -----------------------------------------------------------------------


def decode_csv(data: bytes, charset: str | None = None) -> str:
    """The body as text: UTF-8 unless a charset is declared (a byte-order mark is dropped)."""
    if not data.strip():
        raise CsvFormatError("the body is empty: send a CSV file with a header row")
    if b"\x00" in data:
        raise CsvFormatError("the body is binary, not CSV text")
    encoding = (charset or "utf-8").strip().lower()
    if encoding in ("utf-8", "utf8"):
        encoding = "utf-8-sig"
    try:
        return data.decode(encoding)
    except LookupError:
        raise CsvFormatError(f"unknown charset {charset!r}") from None
    except UnicodeDecodeError as exc:
        raise CsvFormatError(
            f"the body is not {charset or 'UTF-8'} text (byte {exc.start})"
        ) from None


def read_rows(text: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The normalised header and each non-blank record with the line it starts on."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None or not any(h.strip() for h in header):
            raise CsvFormatError("no header row")
        records = []
        line = reader.line_num
        for record in reader:
            start, line = line + 1, reader.line_num
            if any(cell.strip() for cell in record):
                records.append((start, record))
    except csv.Error as exc:
        raise CsvFormatError(f"not valid CSV: {exc}") from None
    return [h.strip().lower() for h in header], records


class _Row:
    """One record's values by column name, collecting errors instead of raising them."""

    def __init__(self, line: int, values: dict[str, str], errors: list[RowError]):
        self.line = line
        self.values = values
        self.errors = errors

    def error(self, field: str | None, message: str) -> None:
        self.errors.append(RowError(self.line, field, message))

    def has(self, name: str) -> bool:
        return name in self.values

    def raw(self, name: str) -> str:
        return self.values.get(name, "").strip()

    def text(self, name: str, max_len: int, required: bool = True) -> str | None:
        value = self.raw(name)
        if not value:
            if required:
                self.error(name, "is required")
            return None
        if len(value) > max_len:
            self.error(name, f"is longer than {max_len} characters")
            return None
        return value

    def amount(self, name: str, positive: bool = False) -> Decimal | None:
        value = self.raw(name)
        if not value:
            self.error(name, "is required")
            return None
        match = _AMOUNT.fullmatch(value)
        if match is None:
            self.error(name, f"{value!r} is not an amount (digits and a dot, e.g. 1234.50)")
            return None
        if match.group(1):
            self.error(name, "must not be negative")
            return None
        amount = Decimal(value)
        if amount > MAX_MONEY:  # checked first: quantizing a 30-digit number overflows
            self.error(name, "is too large")
        elif amount != amount.quantize(Decimal("0.01")):
            self.error(name, "has more than two decimals")
        elif positive and amount == 0:
            self.error(name, "must be greater than zero")
        else:
            return money(amount)
        return None

    def day(self, name: str) -> date | None:
        value = self.raw(name)
        if not value:
            self.error(name, "is required")
            return None
        if _ISO_DATE.fullmatch(value):
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
        self.error(name, f"{value!r} is not a date (YYYY-MM-DD)")
        return None

    def integer(self, name: str, low: int, high: int) -> int | None:
        value = self.raw(name)
        if not value.isdigit() or not low <= int(value) <= high:
            self.error(name, f"must be a whole number from {low} to {high}")
            return None
        return int(value)

    def boolean(self, name: str) -> bool:
        value = self.raw(name).lower()
        if value in _TRUE:
            return True
        if value not in _FALSE:
            self.error(name, "must be true or false")
        return False


# --- Row checks, one function per kind: values in, a record dict out ------------------------


def _customer_row(row: _Row) -> dict:
    rec = {
        "number": row.text("number", 40),
        "name": row.text("name", 200),
        "credit_limit": row.amount("credit_limit"),
        "terms_days": row.integer("terms_days", 0, 3650),
    }
    if row.has("sales_rep"):
        rec["sales_rep"] = row.text("sales_rep", 80, required=False)
    if row.has("country"):
        rec["country"] = row.text("country", 40, required=False)
    if row.has("currency"):
        currency = row.raw("currency").upper() or "USD"
        if not _CURRENCY.fullmatch(currency):
            row.error("currency", "must be a three-letter code such as USD")
        rec["currency"] = currency
    return rec


def _invoice_row(row: _Row) -> dict:
    rec = {
        "customer_number": row.text("customer_number", 40),
        "number": row.text("number", 40),
        "invoice_date": row.day("invoice_date"),
        "due_date": row.day("due_date"),
        "amount": row.amount("amount"),
    }
    if row.has("disputed"):
        rec["disputed"] = row.boolean("disputed")
    if rec["invoice_date"] and rec["due_date"] and rec["due_date"] < rec["invoice_date"]:
        row.error("due_date", "is before the invoice date")
    return rec


def _payment_row(row: _Row) -> dict:
    method = row.raw("method").lower().replace(" ", "_").replace("-", "_")
    if method not in PAYMENT_METHODS:
        row.error("method", f"must be one of {', '.join(PAYMENT_METHODS)}")
    return {
        "customer_number": row.text("customer_number", 40),
        "reference": row.text("reference", 60),
        "received_date": row.day("received_date"),
        "amount": row.amount("amount", positive=True),
        "method": method,
        "invoice_number": row.text("invoice_number", 40, required=False),
    }


def _order_row(row: _Row) -> dict:
    return {
        "customer_number": row.text("customer_number", 40),
        "number": row.text("number", 40),
        "order_date": row.day("order_date"),
        "amount": row.amount("amount"),
    }


@dataclass(frozen=True)
class _Spec:
    required: tuple[str, ...]
    parse: Callable[[_Row], dict]
    key: Callable[[dict], object]


SPECS: dict[str, _Spec] = {
    "customers": _Spec(
        ("number", "name", "credit_limit", "terms_days"), _customer_row, lambda r: r["number"]
    ),
    "invoices": _Spec(
        ("customer_number", "number", "invoice_date", "due_date", "amount"),
        _invoice_row,
        lambda r: r["number"],
    ),
    "payments": _Spec(
        ("customer_number", "reference", "received_date", "amount", "method"),
        _payment_row,
        lambda r: (r["customer_number"], r["reference"]),
    ),
    "orders": _Spec(
        ("customer_number", "number", "order_date", "amount"), _order_row, lambda r: r["number"]
    ),
}


@dataclass
class ParsedFile:
    rows: list[tuple[int, dict]]  # (line, record) of the rows without an error so far
    bad: list[tuple[int, dict]]  # the others, with whatever could be read from them
    errors: list[RowError]


def parse_file(kind: str, text: str) -> ParsedFile:
    """Check every row on its own and against the others (duplicate keys); no database."""
    if kind not in SPECS:
        raise UnknownImportKind(kind)
    spec = SPECS[kind]
    header, records = read_rows(text)
    missing = [c for c in spec.required if c not in header]
    if missing:
        return ParsedFile([], [], [RowError(1, c, "missing column") for c in missing])
    errors: list[RowError] = []
    parsed: list[tuple[int, dict]] = []
    bad: list[tuple[int, dict]] = []
    first_seen: dict[object, int] = {}
    for line, record in records:
        values = {h: v for h, v in zip(header, record, strict=False) if h}
        before = len(errors)
        _check_width(line, record, len(header), errors)
        rec = spec.parse(_Row(line, values, errors))
        key = spec.key(rec)
        if key in first_seen and None not in _as_tuple(key):
            errors.append(RowError(line, _key_field(kind), f"duplicate of row {first_seen[key]}"))
        first_seen.setdefault(key, line)
        (parsed if len(errors) == before else bad).append((line, rec))
    return ParsedFile(parsed, bad, errors)


def _check_width(line: int, record: list[str], columns: int, errors: list[RowError]) -> None:
    """More values than columns means an unquoted comma, e.g. ``12,50`` for 12.50: reading
    on would import 12 where 12.50 was meant. Trailing empty values are harmless."""
    if len(record) > columns and any(v.strip() for v in record[columns:]):
        message = f"has more values than the header has columns ({len(record)} for {columns})"
        errors.append(RowError(line, None, message))


def _as_tuple(key: object) -> tuple:
    return key if isinstance(key, tuple) else (key,)


def _key_field(kind: str) -> str:
    return "reference" if kind == "payments" else "number"


# --- Checks against the ledger, and the writes ----------------------------------------------


def _chunks(items: Sequence, size: int = CHUNK) -> Iterator[Sequence]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _by_key(columns: Sequence, key_col, keys: set) -> dict:
    """Rows of ``columns`` whose ``key_col`` is in ``keys``, keyed by that column."""
    out = {}
    for chunk in _chunks(sorted(keys)):
        for row in db.session.execute(select(key_col, *columns).where(key_col.in_(chunk))):
            out[row[0]] = row[1:] if len(columns) > 1 else row[1]
    return out


def _customer_ids(rows: list[tuple[int, dict]], errors: list[RowError]) -> dict[str, int]:
    wanted = {rec["customer_number"] for _, rec in rows}
    ids = _by_key([Customer.id], Customer.number, wanted)
    for line, rec in rows:
        if rec["customer_number"] not in ids:
            errors.append(RowError(line, "customer_number", "unknown customer"))
    return ids


def _applied(invoice_ids: set[int]) -> dict[int, Decimal]:
    """Everything applied to each invoice: payments, credit memos, write-offs."""
    totals: dict[int, Decimal] = {}
    for model in (Payment, CreditMemo, WriteOff):
        for chunk in _chunks(sorted(invoice_ids)):
            q = select(model.invoice_id, model.amount).where(model.invoice_id.in_(chunk))
            for invoice_id, amount in db.session.execute(q):
                totals[invoice_id] = totals.get(invoice_id, ZERO) + amount
    return totals


def _write(model, new: list[dict], changed: list[dict]) -> None:
    if new:
        db.session.execute(insert(model), new)
    if changed:
        db.session.execute(update(model), changed)


def _import_customers(rows: list[tuple[int, dict]], errors: list[RowError]) -> tuple[int, int]:
    existing = _by_key([Customer.id], Customer.number, {rec["number"] for _, rec in rows})
    new = [rec for _, rec in rows if rec["number"] not in existing]
    changed = [
        {**rec, "id": existing[rec["number"]]} for _, rec in rows if rec["number"] in existing
    ]
    if not errors:
        _write(Customer, new, changed)
    return len(new), len(changed)


def _import_invoices(rows: list[tuple[int, dict]], errors: list[RowError]) -> tuple[int, int]:
    customers = _customer_ids(rows, errors)
    existing = _by_key(
        [Invoice.id, Invoice.customer_id], Invoice.number, {rec["number"] for _, rec in rows}
    )
    applied = _applied({inv_id for inv_id, _ in existing.values()})
    new, changed = [], []
    for line, rec in rows:
        customer_id = customers.get(rec["customer_number"])
        values = {k: v for k, v in rec.items() if k != "customer_number"}
        if rec["number"] not in existing:
            new.append({**values, "customer_id": customer_id})
            continue
        inv_id, owner = existing[rec["number"]]
        if customer_id is not None and owner != customer_id:
            errors.append(RowError(line, "number", "invoice belongs to another customer"))
        elif rec["amount"] < applied.get(inv_id, ZERO):
            errors.append(
                RowError(
                    line, "amount", f"is less than the {applied[inv_id]} already applied to it"
                )
            )
        changed.append({**values, "id": inv_id})
    if not errors:
        _write(Invoice, new, changed)
    return len(new), len(changed)


def _import_payments(rows: list[tuple[int, dict]], errors: list[RowError]) -> tuple[int, int]:
    customers = _customer_ids(rows, errors)
    invoices = _by_key(
        [Invoice.id, Invoice.customer_id, Invoice.amount],
        Invoice.number,
        {rec["invoice_number"] for _, rec in rows if rec["invoice_number"]},
    )
    existing = _existing_payments(customers, rows)
    applied = _applied({inv[0] for inv in invoices.values()})
    for _pay_id, old_invoice, old_amount in existing.values():
        if old_invoice in applied:  # the file's row replaces this payment
            applied[old_invoice] -= old_amount
    new, changed = [], []
    for line, rec in rows:
        customer_id = customers.get(rec["customer_number"])
        invoice_id = _payment_invoice(line, rec, customer_id, invoices, applied, errors)
        values = {
            "customer_id": customer_id,
            "reference": rec["reference"],
            "received_date": rec["received_date"],
            "amount": rec["amount"],
            "method": rec["method"],
            "invoice_id": invoice_id,
        }
        key = (customer_id, rec["reference"])
        if key in existing:
            changed.append({**values, "id": existing[key][0]})
        else:
            new.append(values)
    if not errors:
        _write(Payment, new, changed)
    return len(new), len(changed)


def _existing_payments(customers: dict[str, int], rows: list[tuple[int, dict]]) -> dict:
    """(customer id, reference) -> (payment id, invoice id, amount) for the file's keys."""
    keys = {
        (customers[rec["customer_number"]], rec["reference"])
        for _, rec in rows
        if rec["customer_number"] in customers
    }
    out = {}
    for chunk in _chunks(sorted(keys)):
        q = select(
            Payment.customer_id, Payment.reference, Payment.id, Payment.invoice_id, Payment.amount
        ).where(tuple_(Payment.customer_id, Payment.reference).in_(chunk))
        for cust, ref, pay_id, inv_id, amount in db.session.execute(q):
            out[(cust, ref)] = (pay_id, inv_id, amount)
    return out


def _payment_invoice(
    line: int,
    rec: dict,
    customer_id: int | None,
    invoices: dict,
    applied: dict[int, Decimal],
    errors: list[RowError],
) -> int | None:
    """The invoice a payment row pays, checking it is the customer's and not over-applied."""
    number = rec["invoice_number"]
    if number is None:
        return None
    if number not in invoices:
        errors.append(RowError(line, "invoice_number", "unknown invoice"))
        return None
    inv_id, owner, amount = invoices[number]
    if customer_id is not None and owner != customer_id:
        errors.append(RowError(line, "invoice_number", "invoice belongs to another customer"))
        return None
    applied[inv_id] = applied.get(inv_id, ZERO) + rec["amount"]
    if applied[inv_id] > amount:
        errors.append(
            RowError(line, "amount", f"pays more than invoice {number} has open (amount {amount})")
        )
    return inv_id


def _import_orders(rows: list[tuple[int, dict]], errors: list[RowError]) -> tuple[int, int]:
    customers = _customer_ids(rows, errors)
    existing = _by_key(
        [Order.id, Order.customer_id], Order.number, {rec["number"] for _, rec in rows}
    )
    new, changed = [], []
    for line, rec in rows:
        customer_id = customers.get(rec["customer_number"])
        values = {k: v for k, v in rec.items() if k != "customer_number"}
        if rec["number"] not in existing:
            new.append({**values, "customer_id": customer_id, "status": "open"})
            continue
        order_id, owner = existing[rec["number"]]
        if customer_id is not None and owner != customer_id:
            errors.append(RowError(line, "number", "order belongs to another customer"))
        changed.append({**values, "id": order_id})
    if not errors:
        _write(Order, new, changed)
    return len(new), len(changed)


_IMPORTERS = {
    "customers": _import_customers,
    "invoices": _import_invoices,
    "payments": _import_payments,
    "orders": _import_orders,
}


def import_csv(kind: str, text: str) -> ImportResult:
    """Check the whole file, then write it; ImportRejected (nothing written) on any bad row.

    Does not commit: the caller commits, or rolls back if anything raises.
    """
    parsed = parse_file(kind, text)
    rows, errors = parsed.rows, parsed.errors
    if kind != "customers":
        # A row already bad for another reason still gets its unknown customer named, so
        # that one round of fixes is enough.
        _customer_ids([(n, r) for n, r in parsed.bad if r.get("customer_number")], errors)
    if errors and not rows:
        raise ImportRejected(errors)
    created, updated = _IMPORTERS[kind](rows, errors)
    if errors:
        raise ImportRejected(errors)
    return ImportResult(kind, created + updated, created, updated)

"""Convert IBM's "Accounts Receivable / late payment histories" sample into the canonical CSVs.

The source (see ``shared/corpus/ar/SOURCE.md``) has one row per invoice, every one of them
settled. It becomes three files the importer reads: ``customers.csv`` (one per customerID),
``invoices.csv`` and ``payments.csv`` (one payment per invoice, for its full amount, received
on its SettledDate). Dates in the source are ambiguous (``03/01/2012``), so the caller says
whether they are day-first (``dmy``, the staged main file) or month-first (``mdy``).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

from casemgr.ledger.aging import money

DATE_FORMATS: tuple[str, ...] = ("dmy", "mdy")
COLUMNS: tuple[str, ...] = (
    "countrycode",
    "customerid",
    "invoicenumber",
    "invoicedate",
    "duedate",
    "invoiceamount",
    "disputed",
    "settleddate",
)
DEFAULT_CREDIT_LIMIT = Decimal("5000.00")
DEFAULT_TERMS_DAYS = 30
PAYMENT_METHOD = "check"


@dataclass(frozen=True)
class SampleInvoice:
    country: str
    customer: str
    number: str
    invoice_date: date
    due_date: date
    amount: Decimal
    disputed: bool
    settled_date: date


def parse_date(text: str, date_format: str) -> date:
    """``03/01/2012`` is 3 January with ``dmy`` and 1 March with ``mdy``."""
    parts = text.strip().split("/")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise ValueError(f"{text!r} is not a D/M/Y or M/D/Y date")
    first, second, year = (int(p) for p in parts)
    day, month = (first, second) if date_format == "dmy" else (second, first)
    return date(year, month, day)


def _parse_row(values: dict[str, str], date_format: str) -> SampleInvoice:
    disputed = values["disputed"].strip().lower()
    if disputed not in ("yes", "no"):
        raise ValueError(f"Disputed must be Yes or No, not {values['disputed']!r}")
    try:
        amount = money(Decimal(values["invoiceamount"].strip()))
    except ArithmeticError:  # InvalidOperation, and overflow when rounding a huge value
        raise ValueError(f"InvoiceAmount {values['invoiceamount']!r} is not a number") from None
    number = values["invoicenumber"].strip()
    customer = values["customerid"].strip()
    if not number or not customer:
        raise ValueError("customerID and invoiceNumber are required")
    return SampleInvoice(
        country=values["countrycode"].strip(),
        customer=customer,
        number=number,
        invoice_date=parse_date(values["invoicedate"], date_format),
        due_date=parse_date(values["duedate"], date_format),
        amount=amount,
        disputed=disputed == "yes",
        settled_date=parse_date(values["settleddate"], date_format),
    )


def read_sample(path: Path, date_format: str = "dmy") -> list[SampleInvoice]:
    """Every row of the sample; ValueError naming the line of the first bad one."""
    if date_format not in DATE_FORMATS:
        raise ValueError(f"date format must be one of {', '.join(DATE_FORMATS)}")
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = [h.strip().lower() for h in next(reader, [])]
        missing = [c for c in COLUMNS if c not in header]
        if missing:
            raise ValueError(f"{path}: not the IBM sample, missing columns {', '.join(missing)}")
        rows = []
        for record in reader:
            if not any(cell.strip() for cell in record):
                continue
            try:
                rows.append(_parse_row(dict(zip(header, record, strict=False)), date_format))
            except (ValueError, KeyError) as exc:
                raise ValueError(f"{path}, line {reader.line_num}: {exc}") from None
    return rows


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def convert(
    src: Path,
    outdir: Path,
    date_format: str = "dmy",
    credit_limit: Decimal = DEFAULT_CREDIT_LIMIT,
    terms_days: int = DEFAULT_TERMS_DAYS,
) -> dict[str, int]:
    """Write customers.csv, invoices.csv and payments.csv into ``outdir``; rows per file."""
    invoices = read_sample(Path(src), date_format)
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    countries: dict[str, str] = {}
    for inv in invoices:
        countries.setdefault(inv.customer, inv.country)
    _write_csv(
        outdir / "customers.csv",
        ["number", "name", "credit_limit", "terms_days", "country"],
        [
            [number, f"Customer {number}", str(money(credit_limit)), str(terms_days), country]
            for number, country in sorted(countries.items())
        ],
    )
    _write_csv(
        outdir / "invoices.csv",
        ["customer_number", "number", "invoice_date", "due_date", "amount", "disputed"],
        [
            [
                inv.customer,
                inv.number,
                inv.invoice_date.isoformat(),
                inv.due_date.isoformat(),
                str(inv.amount),
                "true" if inv.disputed else "false",
            ]
            for inv in invoices
        ],
    )
    _write_csv(
        outdir / "payments.csv",
        ["customer_number", "reference", "received_date", "amount", "method", "invoice_number"],
        [
            [
                inv.customer,
                f"PAY-{inv.number}",
                inv.settled_date.isoformat(),
                str(inv.amount),
                PAYMENT_METHOD,
                inv.number,
            ]
            for inv in invoices
        ],
    )
    return {"customers": len(countries), "invoices": len(invoices), "payments": len(invoices)}

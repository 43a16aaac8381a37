"""``flask ledger …`` commands: CSV import and the IBM sample converter."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import AppGroup

from casemgr.extensions import db
from casemgr.ledger import ibm_sample
from casemgr.ledger.imports import KINDS, CsvFormatError, ImportRejected, decode_csv, import_csv

ledger_cli = AppGroup("ledger", help="Import the AR ledger from CSV files.")


@ledger_cli.command("import")
@click.argument("kind", type=click.Choice(KINDS))
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_command(kind: str, file: Path) -> None:
    """Import FILE as KIND, all or nothing; lists every bad row and exits 1 on any."""
    try:
        result = import_csv(kind, decode_csv(file.read_bytes()))
        db.session.commit()
    except CsvFormatError as exc:
        db.session.rollback()
        raise click.ClickException(f"{file}: {exc}") from None
    except ImportRejected as exc:
        db.session.rollback()
        for err in exc.errors:
            click.echo(f"{file}, row {err.row}, {err.field or '-'}: {err.message}", err=True)
        raise click.ClickException(str(exc)) from None
    except Exception:
        db.session.rollback()
        raise
    click.echo(
        f"imported {result.imported} {kind} ({result.created} new, {result.updated} updated)"
    )


@ledger_cli.command("convert-ibm-sample", with_appcontext=False)
@click.argument("src", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("outdir", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--date-format",
    type=click.Choice(ibm_sample.DATE_FORMATS),
    default="dmy",
    show_default=True,
    help="dmy for the DD/MM/YYYY copy, mdy for the M/D/YYYY one.",
)
def convert_ibm_sample_command(src: Path, outdir: Path, date_format: str) -> None:
    """Write customers.csv, invoices.csv and payments.csv from the IBM AR sample SRC."""
    try:
        counts = ibm_sample.convert(src, outdir, date_format)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    for name, count in counts.items():
        click.echo(f"{outdir / (name + '.csv')}: {count} rows")
    click.echo(
        f"import them in this order: flask --app casemgr ledger import customers "
        f"{outdir / 'customers.csv'}, then invoices, then payments"
    )

"""`creditgate` commands. Each prints JSON; errors go to stderr with a non-zero exit."""

from __future__ import annotations

import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import typer
from sqlalchemy import func, select

from creditgate.accounts import service as accounts
from creditgate.api.admin import parse_expiry
from creditgate.api.views import account_view, entry_view, token_view
from creditgate.billing.reconcile import reconcile_report
from creditgate.cli import serve as serve_cli
from creditgate.cli import worker as worker_cli
from creditgate.cli.billing import autotopup_app, topups_app
from creditgate.cli.cards import cards_app, sandbox_app
from creditgate.cli.runtime import emit, fail, progress, run
from creditgate.clock import system_clock
from creditgate.db import Database
from creditgate.errors import ValidationError
from creditgate.ledger import models as ledger_models
from creditgate.ledger import service as ledger
from creditgate.metering import catalog
from creditgate.money import cents

app = typer.Typer(
    help="creditgate: prepaid credits, metering and spending limits for AI gateways.", no_args_is_help=True
)
accounts_app = typer.Typer(help="Accounts.", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens (shown once, stored hashed).", no_args_is_help=True)
credits_app = typer.Typer(help="Credit grants and adjustments.", no_args_is_help=True)
prices_app = typer.Typer(help="The price catalog.", no_args_is_help=True)
app.add_typer(accounts_app, name="accounts")
app.add_typer(tokens_app, name="tokens")
app.add_typer(credits_app, name="credits")
app.add_typer(prices_app, name="prices")
app.command("worker")(worker_cli.worker)
app.add_typer(cards_app, name="cards")
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(topups_app, name="topups")
app.add_typer(autotopup_app, name="autotopup")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"creditgate {version('creditgate')}")
        raise typer.Exit()


@app.callback()
def main(
    show_version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """creditgate: prepaid credits, metering and spending limits for AI gateways."""


@app.command()
def serve(
    host: str = typer.Option(None, help="Bind address (default CREDITGATE_HOST or 127.0.0.1)."),
    port: int = typer.Option(None, help="Port (default CREDITGATE_PORT or 8787)."),
    workers: int = typer.Option(1, min=1, help="Worker processes."),
) -> None:
    """Run the HTTP service (migrates the database first)."""
    serve_cli.serve(host, port, workers)


@app.command()
def migrate() -> None:
    """Bring the database schema up to date."""

    async def work(db: Database) -> None:
        emit({"migrated": True, "database": db.dialect})

    run(work)


@accounts_app.command("create")
def accounts_create(
    account_id: str,
    name: str = typer.Option(None, help="Display name."),
    mode: str = typer.Option("prepaid", help="prepaid or postpaid."),
    credit_limit_cents: int = typer.Option(0, help="Postpaid allowance below zero, in cents."),
) -> None:
    """Create an account with an id you choose (32-hex, UUID or a slug)."""

    async def work(db: Database) -> Any:
        async with db.write() as conn:
            row = await accounts.create_account(
                conn,
                account_id,
                name=name,
                mode=mode,
                credit_limit=cents(credit_limit_cents),
                now=system_clock(),
            )
        return account_view(row)

    emit(run(work))


@accounts_app.command("list")
def accounts_list(limit: int = 100) -> None:
    """List accounts."""

    async def work(db: Database) -> Any:
        async with db.read() as conn:
            return [account_view(r) for r in await ledger.list_accounts(conn, limit=limit)]

    emit(run(work))


@accounts_app.command("show")
def accounts_show(account_id: str) -> None:
    """Show one account and its last ledger entries."""

    async def work(db: Database) -> Any:
        async with db.read() as conn:
            row = await ledger.get_account(conn, account_id)
            entries = await ledger.list_entries(conn, account_id, limit=20)
        return {**account_view(row), "recent_entries": [entry_view(e) for e in entries]}

    emit(run(work))


@tokens_app.command("create")
def tokens_create(
    account_id: str,
    scope: str = typer.Option(..., help="read, write or gateway."),
    name: str = typer.Option(None, help="A label for the token."),
) -> None:
    """Create a token. The secret is printed once and never stored."""

    async def work(db: Database) -> Any:
        async with db.write() as conn:
            issued = await accounts.create_token(conn, account_id, scope=scope, name=name, now=system_clock())
        return {
            "id": issued.id,
            "account_id": issued.account_id,
            "scope": issued.scope,
            "token": issued.token,
        }

    emit(run(work))


@tokens_app.command("list")
def tokens_list(account_id: str) -> None:
    """List an account's tokens (never their secrets)."""

    async def work(db: Database) -> Any:
        async with db.read() as conn:
            return [token_view(r) for r in await accounts.list_tokens(conn, account_id)]

    emit(run(work))


@tokens_app.command("revoke")
def tokens_revoke(account_id: str, token_id: str) -> None:
    """Revoke a token (servers stop accepting it within 5 seconds)."""

    async def work(db: Database) -> Any:
        async with db.write() as conn:
            await accounts.revoke_token(conn, account_id, token_id, system_clock())
        return {"revoked": token_id}

    emit(run(work))


@credits_app.command("grant")
def credits_grant(
    account_id: str,
    amount_cents: int,
    expires: str = typer.Option(None, help="ISO 8601 expiry, e.g. 2027-01-01T00:00:00Z."),
    reason: str = typer.Option(None, help="Why the credit was granted."),
) -> None:
    """Grant promotional credit, optionally expiring."""
    if amount_cents < 1:
        fail("AMOUNT_CENTS must be >= 1", 2)
    now = system_clock()

    async def work(db: Database) -> Any:
        expires_at = parse_expiry(expires, now)
        async with db.write() as conn:
            posting = ledger.Posting(
                account_id, "grant", cents(amount_cents), reason=reason, expires_at=expires_at
            )
            await ledger.post(conn, [posting], now)
            return entry_view((await ledger.list_entries(conn, account_id, limit=1))[0])

    emit(run(work))


@credits_app.command("adjust")
def credits_adjust(
    account_id: str,
    amount_cents: int,
    reason: str = typer.Option(..., help="Why the balance is corrected (required)."),
) -> None:
    """Post a signed correction (negative to take credit away)."""
    if amount_cents == 0:
        fail("AMOUNT_CENTS must not be 0", 2)

    async def work(db: Database) -> Any:
        async with db.write() as conn:
            await ledger.post(
                conn,
                [ledger.Posting(account_id, "adjustment", cents(amount_cents), reason=reason)],
                system_clock(),
            )
            return entry_view((await ledger.list_entries(conn, account_id, limit=1))[0])

    emit(run(work))


@prices_app.command("import")
def prices_import(file: Path) -> None:
    """Import prices from a JSON or CSV file (all rows or none)."""
    if not file.is_file():
        fail(f"no such file: {file}", 2)
    now = system_clock()

    async def work(db: Database) -> Any:
        raw = catalog.parse_price_file(file.read_text(), file.name)
        if not raw:
            raise ValidationError(f"{file.name} holds no price rows", field="prices")
        progress(f"prices: read {len(raw)} row(s) from {file.name}; checking them")
        rows = catalog.parse_price_rows(raw, now)
        progress(f"prices: {len(rows)} row(s) valid; importing them in one transaction")
        async with db.write() as conn:
            inserted, unchanged = await catalog.import_prices(conn, rows, now)
        progress(f"prices: done ({inserted} inserted, {unchanged} unchanged)")
        return {"inserted": inserted, "unchanged": unchanged}

    emit(run(work))


@prices_app.command("list")
def prices_list() -> None:
    """Print the whole catalog, every effective date included."""

    async def work(db: Database) -> Any:
        async with db.read() as conn:
            return [catalog.price_to_wire(p) for p in await catalog.list_prices(conn)]

    emit(run(work))


@app.command()
def reconcile() -> None:
    """Prove the books: exit 1 and print the problems if any balance is off."""

    async def work(db: Database) -> Any:
        async with db.read() as conn:
            count = await conn.scalar(select(func.count()).select_from(ledger_models.accounts))
            progress(f"reconcile: checking {count} account(s)")
            return await reconcile_report(conn)

    started = time.monotonic()
    report = run(work)
    took = time.monotonic() - started
    progress(f"reconcile: checked {report['accounts_checked']} account(s) in {took:.1f} s")
    emit(report)
    if not report["ok"]:
        typer.echo(f"RECONCILE FAILED: {len(report['problems'])} problem(s)", err=True)
        for problem in report["problems"]:
            typer.echo(f"  account {problem['account_id']}: {problem['check']} does not hold", err=True)
        raise typer.Exit(1)

"""`creditgate` commands. Each prints JSON; errors go to stderr with a non-zero exit."""

from __future__ import annotations

import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import typer

from creditgate.cli import serve as serve_cli
from creditgate.cli import worker as worker_cli
from creditgate.cli.billing import autotopup_app, topups_app
from creditgate.cli.billing_info import billing_info_app
from creditgate.cli.cards import cards_app, sandbox_app
from creditgate.cli.runtime import emit, fail, progress, run
from creditgate.cli.upstreams import upstreams_app
from creditgate.views import account_view, entry_view, postpaid_limits_view, token_view
from creditgate.workflows import Context, accounts, grants, prices, spending_limits
from creditgate.workflows import reconcile as books

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
app.add_typer(billing_info_app, name="billing-info")
app.add_typer(upstreams_app, name="upstreams")


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

    async def work(ctx: Context) -> None:
        emit({"migrated": True, "database": ctx.db.dialect})

    run(work)


@accounts_app.command("create")
def accounts_create(
    account_id: str,
    name: str = typer.Option(None, help="Display name."),
    mode: str = typer.Option("prepaid", help="prepaid or postpaid."),
    postpaid_limit_cents: int = typer.Option(
        0, help="Hard postpaid limit: the most a postpaid account may owe, in cents."
    ),
) -> None:
    """Create an account with an id you choose (32-hex, UUID or a slug)."""

    async def work(ctx: Context) -> Any:
        row = await accounts.create_account(
            ctx, account_id, name=name, mode=mode, postpaid_limit_cents=postpaid_limit_cents
        )
        return account_view(row)

    emit(run(work))


@accounts_app.command("postpaid-limit")
def accounts_postpaid_limit(
    account_id: str,
    hard_cents: int = typer.Option(None, help="Set the hard limit, in cents (0: prepaid only)."),
) -> None:
    """Show an account's postpaid spending limits, or set its hard limit."""

    async def work(ctx: Context) -> Any:
        if hard_cents is None:
            return postpaid_limits_view(await spending_limits.get_limits(ctx, account_id))
        return postpaid_limits_view(await spending_limits.set_hard_limit(ctx, account_id, hard_cents))

    emit(run(work))


@accounts_app.command("list")
def accounts_list(limit: int = 100) -> None:
    """List accounts."""

    async def work(ctx: Context) -> Any:
        return [account_view(r) for r in await accounts.list_accounts(ctx, limit=limit)]

    emit(run(work))


@accounts_app.command("show")
def accounts_show(account_id: str) -> None:
    """Show one account and its last ledger entries."""

    async def work(ctx: Context) -> Any:
        found = await accounts.account_with_entries(ctx, account_id, limit=20)
        return {**account_view(found.account), "recent_entries": [entry_view(e) for e in found.entries]}

    emit(run(work))


@tokens_app.command("create")
def tokens_create(
    account_id: str,
    scope: str = typer.Option(..., help="read, write, gateway or api (the metering proxy)."),
    name: str = typer.Option(None, help="A label for the token."),
) -> None:
    """Create a token. The secret is printed once and never stored."""

    async def work(ctx: Context) -> Any:
        issued = await accounts.create_token(ctx, account_id, scope=scope, name=name)
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

    async def work(ctx: Context) -> Any:
        return [token_view(r) for r in await accounts.list_tokens(ctx, account_id)]

    emit(run(work))


@tokens_app.command("revoke")
def tokens_revoke(account_id: str, token_id: str) -> None:
    """Revoke a token (servers stop accepting it within 5 seconds)."""

    async def work(ctx: Context) -> Any:
        await accounts.revoke_token(ctx, account_id, token_id)
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

    async def work(ctx: Context) -> Any:
        expires_at = grants.parse_expiry(expires, ctx.clock())
        grant = grants.Grant(account_id, amount_cents, reason=reason, expires_at=expires_at)
        return entry_view(await grants.apply(ctx, grant))

    emit(run(work))


@credits_app.command("adjust")
def credits_adjust(
    account_id: str,
    amount_cents: int,
    reason: str = typer.Option(..., help="Why the balance is corrected (required)."),
) -> None:
    """Post a signed correction (negative to take credit away)."""

    async def work(ctx: Context) -> Any:
        return entry_view(await grants.apply(ctx, grants.Adjustment(account_id, amount_cents, reason)))

    emit(run(work))


@prices_app.command("import")
def prices_import(file: Path) -> None:
    """Import prices from a JSON or CSV file (all rows or none)."""
    if not file.is_file():
        fail(f"no such file: {file}", 2)

    async def work(ctx: Context) -> Any:
        done = await prices.import_price_file(ctx, file.read_text(), file.name, progress=progress)
        return {"inserted": done.inserted, "unchanged": done.unchanged}

    emit(run(work))


@prices_app.command("list")
def prices_list() -> None:
    """Print the whole catalog, every effective date included."""
    emit(run(prices.list_prices))


@app.command()
def reconcile() -> None:
    """Prove the books: exit 1 and print the problems if any balance is off."""

    async def work(ctx: Context) -> Any:
        return await books.reconcile(ctx, progress=progress)

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

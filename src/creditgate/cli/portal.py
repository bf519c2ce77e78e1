"""`creditgate portal link ACCOUNT_ID`: a one-time billing portal link to hand to a customer
(the same workflow as POST /admin/v1/accounts/{id}/portal-sessions)."""

from __future__ import annotations

from typing import Any

import typer

from creditgate.cli.runtime import emit, run
from creditgate.views import portal_link_view
from creditgate.workflows import Context, portal

portal_app = typer.Typer(help="The customer billing portal.", no_args_is_help=True)


@portal_app.command("link")
def portal_link(
    account_id: str,
    return_url: str = typer.Option(None, help="Your page the portal links back to (https://...)."),
) -> None:
    """Print {url, expires_at}: a link that opens the account's portal once, before it expires."""

    async def work(ctx: Context) -> Any:
        return portal_link_view(await portal.create_link(ctx, account_id, return_url=return_url))

    emit(run(work))

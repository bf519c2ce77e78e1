"""`creditgate billing-info set|show`: the customer details printed on an account's invoices."""

from __future__ import annotations

from typing import Any

import typer

from creditgate.cli.runtime import emit, run
from creditgate.errors import NotFound
from creditgate.workflows import Context, billing_info

billing_info_app = typer.Typer(
    help="The buyer's name, address and tax id printed on an account's invoices.", no_args_is_help=True
)


@billing_info_app.command("set")
def billing_info_set(
    account_id: str,
    name: str = typer.Option(..., help="Person or business name to invoice."),
    email: str = typer.Option(None, help="Billing email."),
    line1: str = typer.Option(None, help="Address line 1 (street)."),
    line2: str = typer.Option(None, help="Address line 2."),
    city: str = typer.Option(None, help="City."),
    state: str = typer.Option(None, help="State, county or region."),
    postal_code: str = typer.Option(None, help="Postal code."),
    country: str = typer.Option(None, help="Two-letter country code, e.g. DE."),
    tax_id_type: str = typer.Option(None, help="Stripe tax id type, e.g. eu_vat or us_ein."),
    tax_number: str = typer.Option(None, help="Tax id number, e.g. DE123456789."),
) -> None:
    """Replace the account's billing info (an option left out is cleared)."""
    address = {"line1": line1, "line2": line2, "city": city, "state": state}
    address |= {"postal_code": postal_code, "country": country}
    body: dict[str, Any] = {
        "name": name,
        "email": email,
        "address": address,
        "tax_id_type": tax_id_type,
        "tax_number": tax_number,
    }

    async def work(ctx: Context) -> Any:
        return (await billing_info.set_billing_info(ctx, account_id, body)).as_dict()

    emit(run(work))


@billing_info_app.command("show")
def billing_info_show(account_id: str) -> None:
    """Print the account's billing info."""

    async def work(ctx: Context) -> Any:
        info = await billing_info.get_info(ctx, account_id)
        if info is None:
            raise NotFound(f"account {account_id!r} has no billing info; set it with `billing-info set`")
        return info.as_dict()

    emit(run(work))

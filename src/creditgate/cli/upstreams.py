"""`creditgate upstreams add|list|remove`: the providers the metering proxy forwards to
(docs/proxy.md). The API key is read from an environment variable or a prompt, never an
argument (it would land in the shell history), and is never printed."""

from __future__ import annotations

import os
from typing import Any

import typer

from creditgate.cli.runtime import emit, fail, run
from creditgate.workflows import Context, upstreams

upstreams_app = typer.Typer(
    help="Upstream providers of the metering proxy (/openai/v1, /anthropic/v1).", no_args_is_help=True
)


def _model(spec: str) -> dict[str, Any] | str:
    """`MODEL` or `MODEL=ALIAS`."""
    model, _, alias = spec.partition("=")
    return {"model": model, "alias": alias} if alias else model


@upstreams_app.command("add")
def upstreams_add(
    provider: str = typer.Argument(..., help="openai or anthropic (the wire format)."),
    base_url: str = typer.Option(..., help="e.g. https://api.openai.com/v1 or https://api.anthropic.com"),
    model: list[str] = typer.Option(..., "--model", help="A model to offer, MODEL or MODEL=ALIAS (repeat)."),
    markup_percent: str = typer.Option("0", help="Added to the catalog price, e.g. 20 or 12.5."),
    api_key_env: str = typer.Option(
        None, help="Read the upstream key from this environment variable (default: prompt)."
    ),
    connect_timeout: int = typer.Option(10, help="Connect timeout in seconds."),
    read_timeout: int = typer.Option(600, help="Read timeout in seconds."),
) -> None:
    """Add an upstream; its key is stored encrypted and never shown again."""
    if api_key_env:
        api_key = os.environ.get(api_key_env)
        if not api_key:
            fail(f"{api_key_env} is not set")
    else:
        api_key = typer.prompt("Upstream API key", hide_input=True)
    body = {
        "provider": provider,
        "base_url": base_url,
        "api_key": api_key,
        "models": [_model(m) for m in model],
        "markup_percent": markup_percent,
        "connect_timeout_seconds": connect_timeout,
        "read_timeout_seconds": read_timeout,
    }

    async def work(ctx: Context) -> Any:
        return await upstreams.add_upstream(ctx, body)

    emit(run(work))


@upstreams_app.command("list")
def upstreams_list() -> None:
    """Print every upstream and its models (never the keys)."""

    async def work(ctx: Context) -> Any:
        return {"upstreams": await upstreams.list_upstreams(ctx)}

    emit(run(work))


@upstreams_app.command("remove")
def upstreams_remove(upstream_id: str) -> None:
    """Remove an upstream and the models it offers."""

    async def work(ctx: Context) -> Any:
        await upstreams.remove_upstream(ctx, upstream_id)
        return {"deleted": upstream_id}

    emit(run(work))

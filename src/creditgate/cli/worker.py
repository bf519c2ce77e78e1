"""`creditgate worker`: the periodic jobs alone, without the HTTP service (run one or more
next to `creditgate serve --no-jobs` setups, or as the only job runner). Jobs are safe with
several workers at once; a worker stopped mid-pass loses nothing (leases expire, work is
taken again)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

import typer

from creditgate import jobs
from creditgate.cli.runtime import close_processor, emit, fail, load_settings, open_database, progress
from creditgate.clock import system_clock
from creditgate.config import ConfigError
from creditgate.observability import logs, metrics
from creditgate.payments.factory import make_processor
from creditgate.workflows.context import Context

log = logging.getLogger("creditgate.worker")


def worker(
    interval: float = typer.Option(5.0, help="Seconds between passes."),
    once: bool = typer.Option(False, "--once", help="Run one pass, print what each job did, and exit."),
    job: list[str] = typer.Option(None, "--job", help="Run only this job (repeatable)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug detail."),
    metrics_port: int = typer.Option(
        None, "--metrics-port", help="Serve the job metrics on this port at /metrics (on CREDITGATE_HOST)."
    ),
) -> None:
    """Run the periodic jobs (auto top-ups, monthly statements, webhook delivery, inbox
    retries, ...) until stopped."""
    if interval <= 0:
        fail("--interval must be > 0", 2)
    names = list(job) if job else None
    unknown = sorted(set(names or ()) - set(jobs.NAMES))
    if unknown:
        fail(f"unknown job(s): {', '.join(unknown)}; known: {', '.join(jobs.NAMES)}", 2)
    settings = load_settings()
    logs.configure(settings.log_format, "debug" if verbose else settings.log_level)
    if metrics_port is not None and not once:
        try:
            metrics.serve_http(metrics_port, settings.host)
        except OSError as exc:
            fail(f"--metrics-port: cannot listen on {settings.host}:{metrics_port}: {exc.strerror or exc}", 2)

    async def main() -> dict[str, int] | None:
        db = await open_database(settings, pool_size=4)
        try:
            ctx = Context(settings=settings, db=db, processor=make_processor(settings, db, system_clock))
            try:
                if once:
                    return await _one_pass(ctx, names or list(jobs.NAMES))
                log.info(
                    "worker started: database %s, jobs %s, every %ss",
                    db.dialect,
                    ", ".join(names or jobs.NAMES),
                    interval,
                )
                await _until_stopped(ctx, names, interval)
                log.info("worker stopped")
                return None
            finally:
                await close_processor(ctx)
        finally:
            await db.dispose()

    try:
        result = asyncio.run(main())
    except ConfigError as exc:
        fail(str(exc), 2)
    if result is not None:
        emit(result)
        if any(count < 0 for count in result.values()):
            raise typer.Exit(1)


async def _one_pass(ctx: Context, names: list[str]) -> dict[str, int]:
    """Each job once, in order, with a progress line per job on stderr."""
    done: dict[str, int] = {}
    for index, name in enumerate(names, 1):
        progress(f"worker: [{index}/{len(names)}] {name} ...")
        done.update(await jobs.run_once(ctx, [name]))
        outcome = "FAILED (see the log)" if done[name] < 0 else f"{done[name]} item(s)"
        progress(f"worker: [{index}/{len(names)}] {name}: {outcome}")
    return done


async def _until_stopped(ctx: Context, names: list[str] | None, interval: float) -> None:
    """Passes every `interval` seconds until SIGINT/SIGTERM; a pass in flight is cancelled
    (its transaction rolls back, its leases expire)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    tasks = [asyncio.create_task(jobs.run_forever(ctx, interval, names))]
    if names is None or "apply_usage" in names:  # its own loop: it wakes far more often
        tasks.append(asyncio.create_task(jobs.run_usage_applier(ctx)))
    await stop.wait()
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task

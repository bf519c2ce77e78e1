"""Prometheus series (prometheus-client), multiprocess-safe under `serve --workers N`.

Every series is documented in docs/operations.md. With PROMETHEUS_MULTIPROC_DIR set (serve
sets it for N > 1 workers) each process writes its samples to that directory and a scrape
merges them; otherwise the process's default registry is served.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client import generate_latest as _generate
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST

HTTP_REQUESTS = Counter(
    "creditgate_http_requests",
    "HTTP requests answered, by route template and status.",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "creditgate_http_request_duration_seconds",
    "Time from the request's arrival to the end of its response, by route template.",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
USAGE_EVENTS = Counter(
    "creditgate_usage_events",
    "Usage events reported, by outcome: accepted, duplicate, rejected.",
    ["outcome"],
)
AUTHORIZE = Counter(
    "creditgate_authorize_decisions",
    "Authorize answers: decision allowed or denied, and the reason of a denial.",
    ["decision", "reason"],
)
JOB_RUNS = Counter(
    "creditgate_job_runs", "Job passes, by job and outcome (ok or failed).", ["job", "outcome"]
)
JOB_DURATION = Histogram(
    "creditgate_job_duration_seconds",
    "Duration of one pass of a job.",
    ["job"],
    buckets=(0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0),
)
JOB_LAST_SUCCESS = Gauge(
    "creditgate_job_last_success_timestamp_seconds",
    "Unix time at which the last successful pass of a job ended.",
    ["job"],
    multiprocess_mode="max",
)
WEBHOOK_DELIVERIES = Counter(
    "creditgate_webhook_deliveries",
    "Outgoing webhook delivery attempts, by outcome: succeeded, retrying, failed (gave up), stale.",
    ["outcome"],
)
AUTO_TOPUPS = Counter(
    "creditgate_auto_topup_attempts",
    "Off-session auto top-up charges, by outcome: succeeded, failed, requires_action, unanswered.",
    ["outcome"],
)


def usage_events(accepted: int, duplicates: int, rejected: int) -> None:
    """Count one usage batch's outcome."""
    for outcome, count in (("accepted", accepted), ("duplicate", duplicates), ("rejected", rejected)):
        if count:
            USAGE_EVENTS.labels(outcome).inc(count)


def authorize_decision(allowed: bool, reason: str | None) -> None:
    AUTHORIZE.labels("allowed" if allowed else "denied", "" if allowed else (reason or "unknown")).inc()


@contextmanager
def job_run(name: str) -> Iterator[None]:
    """Time one pass of job `name` and count its outcome (the exception goes on up)."""
    started = time.perf_counter()
    try:
        yield
    except BaseException:
        JOB_RUNS.labels(name, "failed").inc()
        raise
    finally:
        JOB_DURATION.labels(name).observe(time.perf_counter() - started)
    JOB_RUNS.labels(name, "ok").inc()
    JOB_LAST_SUCCESS.labels(name).set(time.time())


class _Families:
    """A collector that hands out families already collected."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families


def _job_lag(families: list[Metric], now: float) -> GaugeMetricFamily:
    lag = GaugeMetricFamily(
        "creditgate_job_lag_seconds",
        "Seconds since the last successful pass of each job ended.",
        labels=["job"],
    )
    for family in families:
        if family.name == "creditgate_job_last_success_timestamp_seconds":
            for sample in family.samples:
                if sample.value > 0:
                    lag.add_metric([sample.labels["job"]], max(0.0, now - sample.value))
    return lag


def render(extra: Iterable[Metric] = ()) -> bytes:
    """The exposition text of every series, merged across worker processes when multiprocess."""
    registry = REGISTRY
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    families = list(registry.collect())
    families.append(_job_lag(families, time.time()))
    families.extend(extra)
    return _generate(_Families(families))  # type: ignore[arg-type]


def _known_series() -> None:
    """Expose the fixed outcomes at 0 from the start, so rate() and alerts see them at once."""
    for outcome in ("accepted", "duplicate", "rejected"):
        USAGE_EVENTS.labels(outcome)
    AUTHORIZE.labels("allowed", "")
    for reason in ("insufficient_credit", "spending_limit"):
        AUTHORIZE.labels("denied", reason)
    for outcome in ("succeeded", "retrying", "failed", "stale"):
        WEBHOOK_DELIVERIES.labels(outcome)
    for outcome in ("succeeded", "failed", "requires_action", "unanswered"):
        AUTO_TOPUPS.labels(outcome)


_known_series()

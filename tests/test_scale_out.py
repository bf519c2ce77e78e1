"""Scale-out, proven: two `creditgate serve` processes on different ports and two `creditgate
worker`s on one PostgreSQL database, with clients spread over both servers. Concurrent
authorizations on both never overspend; the same usage batch sent to both at once is charged
once; an account crossing its auto top-up threshold through both servers is charged exactly
once by the two workers; each closed month gets one statement; the books reconcile."""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from creditgate.money import UNITS_PER_CENT as CENT
from creditgate.money import parse_usd
from tests import cluster_support, support
from tests.cloudflare_support import sandbox_charges
from tests.cluster_support import usage_event

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    support.pg_or_skip()
    url = support.create_pg_database()
    try:
        yield url
    finally:
        support.drop_pg_database(url)


@pytest.fixture(scope="module")
def running(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[cluster_support.Cluster]:
    """Two servers; the two workers start once the seeded month is in place (statements)."""
    data_dir = tmp_path_factory.mktemp("cluster")
    with cluster_support.cluster(pg_url, data_dir, servers=2, CREDITGATE_PAYMENTS="sandbox") as live:
        yield live


def _until(check: Callable[[], bool], what: str, seconds: float = 90) -> None:
    """Poll `check` (bounded) until it holds: the workers run every 0.2 s."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _on_both(count: int, work: Callable[[int], Any], threads: int = 16) -> list[Any]:
    """`work(i)` for i in range(count) from a thread pool; even i go to server 0, odd to 1."""
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        return list(pool.map(work, range(count)))


def _account(running: cluster_support.Cluster, grant_cents: int = 0, **extra: Any) -> tuple[str, str]:
    """A new account (with `grant_cents` of credit) and a gateway token for it."""
    account = support.new_account_id()
    with running.client(0) as admin:
        assert admin.post("/admin/v1/accounts", json={"id": account, **extra}).status_code == 201
        if grant_cents:
            r = admin.post(f"/admin/v1/accounts/{account}/grants", json={"amount_cents": grant_cents})
            assert r.status_code == 201, r.text
        r = admin.post(f"/admin/v1/accounts/{account}/tokens", json={"scope": "gateway"})
        assert r.status_code == 201, r.text
    return account, str(r.json()["token"])


def _balance(running: cluster_support.Cluster, account: str, server: int = 0) -> int:
    with running.client(server) as admin:
        r = admin.get(f"/admin/v1/accounts/{account}")
        assert r.status_code == 200, r.text
        return parse_usd(r.json()["balance_usd"])


def test_1_concurrent_authorizations_on_both_servers_never_overspend(
    running: cluster_support.Cluster,
) -> None:
    account, token = _account(running, grant_cents=100)

    def authorize(i: int) -> str | None:
        body = {"account_id": account, "request_id": f"r-{i}", "model": "gpt-4o"}
        body["estimated_cost_usd"] = "0.07"
        with running.client(i, token) as c:
            r = c.post("/v1/gateway/authorize", json=body)
            assert r.status_code == 200, r.text
            return str(r.json()["hold_id"]) if r.json()["allowed"] else None

    holds = [h for h in _on_both(40, authorize) if h is not None]
    assert len(holds) == 100 // 7  # every cent that can be held is, and not one more

    def settle(i: int) -> None:
        with running.client(i, token) as c:
            r = c.post(f"/v1/gateway/holds/{holds[i]}/settle", json={"cost_usd": "0.07"})
            assert r.status_code == 200, r.text

    _on_both(len(holds), settle)
    for server in (0, 1):
        assert _balance(running, account, server) == (100 - 7 * len(holds)) * CENT
    with running.client(1) as admin:
        held = admin.get(f"/admin/v1/accounts/{account}").json().get("held_usd")
        assert held in (None, "0", "0.00")


def test_2_the_same_batch_sent_to_both_servers_at_once_is_charged_once(
    running: cluster_support.Cluster, pg_url: str
) -> None:
    account, token = _account(running, grant_cents=1000)
    batch = {"events": [usage_event(account, f"e-{i}", "0.05") for i in range(20)]}
    accepted = 0
    for _ in range(5):  # five races, the same batch each time
        start = threading.Barrier(2)

        def send(server: int) -> int:
            with running.client(server, token) as c:
                start.wait()
                r = c.post("/v1/gateway/usage", json=batch)
                assert r.status_code == 200, r.text
                return int(r.json()["accepted"])

        accepted += sum(_on_both(2, send, threads=2))
    assert accepted == 20
    expected = (1000 - 20 * 5) * CENT
    _until(lambda: _balance(running, account) <= expected, "the batch to be charged")
    assert _balance(running, account, 0) == _balance(running, account, 1) == expected
    rows = support.query(pg_url, "SELECT count(*) FROM usage_events WHERE account_id = :a", a=account)
    assert rows == [(20,)]


def _month_start(year: int, month: int) -> datetime:
    while month < 1:
        year, month = year - 1, month + 12
    return datetime(year, month, 1, tzinfo=UTC)


def test_3_workers_charge_one_top_up_and_close_each_month_once(
    running: cluster_support.Cluster, pg_url: str
) -> None:
    # a customer since two months ago: two finished months to close (seeded before the workers start)
    now = datetime.now(UTC)
    old, _ = _account(running, grant_cents=500)
    since = _month_start(now.year, now.month - 2).replace(day=15)
    support.query(pg_url, "UPDATE accounts SET created_at = :t WHERE id = :a", t=since, a=old)
    support.query(pg_url, "UPDATE ledger_entries SET created_at = :t WHERE account_id = :a", t=since, a=old)

    # auto top-up of $10 below $5, with a saved sandbox card
    account, token = _account(running, grant_cents=600)
    with running.client(1) as admin:
        r = admin.post(f"/admin/v1/accounts/{account}/cards", json={"card": "4242424242424242"})
        assert r.status_code == 201, r.text
        r = admin.put(f"/admin/v1/accounts/{account}/auto-topup", json={"amount": 1000, "threshold": 500})
        assert r.status_code == 200, r.text

    running.start_workers(2)

    def spend(i: int) -> None:  # $2.00 over both servers: the balance crosses $5 once
        with running.client(i, token) as c:
            r = c.post("/v1/gateway/usage", json={"events": [usage_event(account, f"s-{i}", "0.10")]})
            assert r.status_code == 200 and r.json()["accepted"] == 1, r.text

    _on_both(20, spend)
    _until(lambda: _balance(running, account) == (600 - 200 + 1000) * CENT, "the auto top-up")
    _until(lambda: _statements(pg_url, old) == 2, "the statements of the two closed months")
    time.sleep(1.0)  # several more passes of both workers: nothing more may happen
    assert sandbox_charges(pg_url, account) == 1
    assert _balance(running, account) == (600 - 200 + 1000) * CENT
    assert _statements(pg_url, old) == 2
    periods = support.query(
        pg_url, "SELECT period_start FROM statements WHERE account_id = :a ORDER BY period_start", a=old
    )
    assert [p[0].month for p in periods] == [since.month, _month_start(now.year, now.month - 1).month]


def _statements(pg_url: str, account: str) -> int:
    rows = support.query(pg_url, "SELECT count(*) FROM statements WHERE account_id = :a", a=account)
    return int(rows[0][0])


def test_4_the_books_reconcile_on_both_servers(running: cluster_support.Cluster, pg_url: str) -> None:
    for server in (0, 1):
        with running.client(server) as admin:
            r = admin.get("/admin/v1/reconcile")
            assert r.status_code == 200 and r.json()["ok"] is True, r.text
    proc = support.cli(pg_url, "reconcile", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_5_every_process_is_still_running(running: cluster_support.Cluster) -> None:
    assert len(running.servers) == 2 and len(running.processes) == 4
    assert all(proc.poll() is None for proc in running.processes)

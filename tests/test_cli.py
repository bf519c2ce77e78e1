"""The operator CLI, run as a subprocess against a fresh database, and `reconcile` failing
loudly when a balance is off."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from creditgate.money import cents
from tests import support


def test_cli_accounts_tokens_grants_and_reconcile(fresh_database_url: str, tmp_path: Path) -> None:
    url = fresh_database_url

    def run(*args: str, check: bool = True) -> object:
        return support.cli(url, *args, data_dir=tmp_path, check=check)

    hex_id, uuid_id = uuid.uuid4().hex, str(uuid.uuid4())
    created = json.loads(run("accounts", "create", hex_id, "--name", "Acme").stdout)
    assert created["id"] == hex_id and created["name"] == "Acme" and created["mode"] == "prepaid"
    created = json.loads(run("accounts", "create", uuid_id, "--mode", "postpaid").stdout)
    assert created["id"] == uuid_id and created["mode"] == "postpaid"
    dup = run("accounts", "create", hex_id, check=False)
    assert dup.returncode == 2 and "already exists" in dup.stderr
    bad = run("accounts", "create", "not valid!", check=False)
    assert bad.returncode == 2 and "(id)" in bad.stderr
    bad = run("accounts", "create", uuid.uuid4().hex, "--mode", "free", check=False)
    assert bad.returncode == 2

    token = json.loads(run("tokens", "create", hex_id, "--scope", "gateway").stdout)
    assert token["token"].startswith("cgt_") and token["scope"] == "gateway"
    assert run("tokens", "create", hex_id, "--scope", "root", check=False).returncode == 2
    assert run("tokens", "create", uuid.uuid4().hex, "--scope", "read", check=False).returncode == 2
    listed = json.loads(run("tokens", "list", hex_id).stdout)
    assert [t["id"] for t in listed] == [token["id"]] and token["token"] not in str(listed)

    entry = json.loads(
        run(
            "credits", "grant", hex_id, "1250", "--reason", "welcome", "--expires", "2999-01-01T00:00:00Z"
        ).stdout
    )
    assert entry["kind"] == "grant" and entry["amount_cents"] == 1250 and entry["reason"] == "welcome"
    assert entry["expires_at"] == "2999-01-01T00:00:00+00:00"
    assert run("credits", "grant", hex_id, "0", check=False).returncode == 2
    assert (
        run("credits", "grant", hex_id, "5", "--expires", "2001-01-01T00:00:00Z", check=False).returncode == 2
    )
    assert run("credits", "grant", uuid.uuid4().hex, "5", check=False).returncode == 2
    assert run("credits", "grant", hex_id, str(10**12), check=False).returncode == 2
    json.loads(run("credits", "adjust", "--reason", "goodwill reversal", "--", hex_id, "-250").stdout)
    shown = json.loads(run("accounts", "show", hex_id).stdout)
    assert shown["balance_cents"] == 1000 and len(shown["recent_entries"]) == 2

    report = json.loads(run("reconcile").stdout)
    assert report == {"ok": True, "accounts_checked": 2, "problems": []}

    # corrupt one cached balance behind the ledger's back
    support.query(url, "UPDATE accounts SET balance = balance + 1 WHERE id = :a", a=hex_id)
    proc = run("reconcile", check=False)
    assert proc.returncode == 1
    assert "RECONCILE FAILED" in proc.stderr and hex_id in proc.stderr and uuid_id not in proc.stderr
    report = json.loads(proc.stdout)
    assert report["ok"] is False and [p["account_id"] for p in report["problems"]] == [hex_id]
    assert report["problems"][0]["cached_usd"] == "10.000000001"

    # a running balance that lies is caught too, even when the sum agrees
    support.query(url, "UPDATE accounts SET balance = balance - 1 WHERE id = :a", a=hex_id)
    assert run("reconcile").returncode == 0
    support.query(
        url,
        "UPDATE ledger_entries SET balance_after = balance_after + 7 WHERE account_id = :a "
        "AND id = (SELECT max(id) FROM ledger_entries WHERE account_id = :a)",
        a=hex_id,
    )
    proc = run("reconcile", check=False)
    assert proc.returncode == 1 and hex_id in proc.stderr
    support.query(
        url,
        "UPDATE ledger_entries SET balance_after = balance_after - 7 WHERE account_id = :a "
        "AND id = (SELECT max(id) FROM ledger_entries WHERE account_id = :a)",
        a=hex_id,
    )

    # usage debits that do not match the stored events are caught as well
    support.query(
        url,
        "INSERT INTO usage_events (account_id, event_id, occurred_at, provider, model, "
        "input_tokens, output_tokens, cached_tokens, cost, received_at) VALUES "
        "(:a, 'forged', '2026-01-01 00:00:00', 'x', 'y', 0, 0, 0, :c, '2026-01-01 00:00:00')",
        a=uuid_id,
        c=cents(1),
    )
    proc = run("reconcile", check=False)
    assert proc.returncode == 1 and uuid_id in proc.stderr and hex_id not in proc.stderr
    assert "usage debits" in proc.stderr


def test_reconcile_over_http(server: support.LiveServer) -> None:
    with server.admin() as c:
        r = c.get("/admin/v1/reconcile")
    assert r.status_code == 200 and r.json()["ok"] is True


def test_long_commands_report_progress_on_stderr_and_an_empty_import_is_an_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"

    def run(*args: str, check: bool = True) -> Any:
        return support.cli(url, *args, data_dir=tmp_path, check=check)

    header = "provider,model,effective_from,input_per_mtok_usd,output_per_mtok_usd\n"
    empty = tmp_path / "empty.csv"
    empty.write_text(header)
    proc = run("prices", "import", str(empty), check=False)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "no price rows" in proc.stderr
    (tmp_path / "empty.json").write_text("[]")
    assert run("prices", "import", str(tmp_path / "empty.json"), check=False).returncode == 2

    rows = tmp_path / "prices.csv"
    rows.write_text(header + "".join(f"acme,m-{i},2026-01-01T00:00:00Z,1.00,2.00\n" for i in range(300)))
    proc = run("prices", "import", str(rows))
    assert json.loads(proc.stdout) == {"inserted": 300, "unchanged": 0}
    assert "read 300 row(s)" in proc.stderr and "done (300 inserted, 0 unchanged)" in proc.stderr

    run("accounts", "create", uuid.uuid4().hex)
    proc = run("reconcile")
    assert json.loads(proc.stdout)["accounts_checked"] == 1
    assert "reconcile: checking 1 account(s)" in proc.stderr
    assert "reconcile: checked 1 account(s)" in proc.stderr

    proc = run("worker", "--once", "--job", "expire_holds", "--job", "expire_grants")
    assert json.loads(proc.stdout) == {"expire_holds": 0, "expire_grants": 0}
    assert "worker: [1/2] expire_holds: 0 item(s)" in proc.stderr
    assert "worker: [2/2] expire_grants: 0 item(s)" in proc.stderr

"""Reconcile checks `held` against the open holds: open holds that agree pass, a `held` changed
behind enforcement's back fails both `creditgate reconcile` (exit 1) and GET /admin/v1/reconcile."""

from __future__ import annotations

import json
from pathlib import Path

from creditgate.money import cents
from tests import support
from tests.limits_support import authorize


def test_reconcile_reports_held_that_is_not_the_open_holds(fresh_database_url: str, tmp_path: Path) -> None:
    url = fresh_database_url
    settings = support.make_settings(url, tmp_path)
    with support.live_server(settings) as server:
        corrupt, clean = support.create_account(server), support.create_account(server)
        for account in (corrupt, clean):
            support.grant(server, account, 100)
        with server.admin() as c:
            for account in (corrupt, clean):
                assert authorize(c, account, "r1", estimate="0.05")["allowed"] is True
                assert authorize(c, account, "r2", estimate="0.02")["allowed"] is True
            voided = authorize(c, corrupt, "r3", estimate="0.10")
            assert c.post(f"/v1/gateway/holds/{voided['hold_id']}/void").status_code == 200
            # open holds that agree with held pass
            assert c.get("/admin/v1/reconcile").json() == {"ok": True, "accounts_checked": 2, "problems": []}

        support.query(url, "UPDATE accounts SET held = held + :x WHERE id = :a", a=corrupt, x=cents(3))
        problem = {
            "account_id": corrupt,
            "check": "held == sum(open holds)",
            "held_usd": "0.10",
            "open_holds_usd": "0.07",
        }
        with server.admin() as c:
            report = c.get("/admin/v1/reconcile").json()
        assert report["ok"] is False and report["problems"] == [problem]

        proc = support.cli(url, "reconcile", data_dir=tmp_path, check=False)
        assert proc.returncode == 1
        assert "RECONCILE FAILED: 1 problem(s)" in proc.stderr and corrupt in proc.stderr
        assert clean not in proc.stderr and "held == sum(open holds)" in proc.stderr
        assert json.loads(proc.stdout)["problems"] == [problem]

        # held dropped to zero while holds stay open is caught too (an account with no open
        # holds at all must also be compared, not skipped by the join)
        support.query(url, "UPDATE accounts SET held = 0 WHERE id = :a", a=corrupt)
        support.query(url, "UPDATE holds SET status = 'voided' WHERE account_id = :a", a=clean)
        with server.admin() as c:
            report = c.get("/admin/v1/reconcile").json()
        assert [(p["account_id"], p["held_usd"], p["open_holds_usd"]) for p in report["problems"]] == sorted(
            [(corrupt, "0.00", "0.07"), (clean, "0.07", "0.00")]
        )

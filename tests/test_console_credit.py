"""Credit posted from the console's form, on SQLite and PostgreSQL: amounts typed in dollars
become whole cents, and a form posted twice (a double click, a resubmitted page) posts once."""

from __future__ import annotations

import pytest

from creditgate.errors import Conflict, NotFound, ValidationError
from creditgate.workflows import console, grants
from tests import support
from tests.test_console_read_models import NOW
from tests.usage_support import run_at


@pytest.mark.parametrize(
    ("text", "signed", "cents"),
    [("25", False, 2500), ("0.01", False, 1), ("-3.50", True, -350), ("1000000", True, 100_000_000)],
)
def test_parse_cents(text: str, signed: bool, cents: int) -> None:
    assert console.parse_cents(text, signed=signed) == cents


@pytest.mark.parametrize(
    ("text", "signed"),
    [
        ("-1", False),
        ("0", True),
        ("0.00", False),
        ("0.001", True),
        ("1e3", False),
        ("", True),
        ("ten", False),
    ],
)
def test_parse_cents_rejects(text: str, signed: bool) -> None:
    with pytest.raises(ValidationError) as info:
        console.parse_cents(text, signed=signed)
    assert info.value.field == "amount"


def test_a_form_posts_once(server: support.LiveServer, database_url: str) -> None:
    account = support.create_account(server)
    key = console.new_form_key()
    grant = grants.Grant(account, 1250, reason="welcome")
    first = run_at(database_url, NOW, lambda ctx: console.post_credit_once(ctx, grant, key))
    again = run_at(database_url, NOW, lambda ctx: console.post_credit_once(ctx, grant, key))
    assert first.new and not again.new and again.entry == first.entry
    assert first.entry.kind == "grant" and first.entry.amount == 1250 * 10**7
    assert first.entry.reason == "welcome" and first.entry.balance_after == 1250 * 10**7
    with pytest.raises(Conflict):
        other = grants.Grant(account, 1251, reason="welcome")
        run_at(database_url, NOW, lambda ctx: console.post_credit_once(ctx, other, key))
    fix = grants.Adjustment(account, -250, reason="typo")
    posted = run_at(database_url, NOW, lambda ctx: console.post_credit_once(ctx, fix, console.new_form_key()))
    assert posted.new and posted.entry.balance_after == 1000 * 10**7
    assert support.balance_units(server, account) == 1000 * 10**7
    rows = support.query(database_url, "SELECT count(*) FROM ledger_entries WHERE account_id = :a", a=account)
    assert rows[0][0] == 2


def test_nothing_is_claimed_when_the_post_fails(server: support.LiveServer, database_url: str) -> None:
    key = console.new_form_key()
    with pytest.raises(NotFound):
        run_at(database_url, NOW, lambda ctx: console.post_credit_once(ctx, grants.Grant("nobody", 5), key))
    with pytest.raises(ValidationError):
        bad = grants.Grant(support.create_account(server), 10**12)
        run_at(database_url, NOW, lambda ctx: console.post_credit_once(ctx, bad, key))
    assert (
        support.query(database_url, "SELECT count(*) FROM idempotency_keys WHERE key = :k", k=key)[0][0] == 0
    )

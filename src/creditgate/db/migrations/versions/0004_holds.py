"""Holds, per-minute spend buckets and the running window sum used by enforcement. On
PostgreSQL also `creditgate_authorize`, the whole authorize decision in one statement (the same
rules as limits.service.authorize, which SQLite runs in Python).

Revision ID: 0004_holds
Revises: 0002_spending_limits
"""

import sqlalchemy as sa
from alembic import op

from creditgate.db.types import Json, UTCDateTime

revision = "0004_holds"
down_revision = "0002_spending_limits"
branch_labels = None
depends_on = None


def _account_fk(table: str) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(
        "account_id",
        sa.String(64),
        sa.ForeignKey("accounts.id", name=f"fk_{table}_account_id_accounts"),
        nullable=False,
    )


AUTHORIZE_FN = """
CREATE OR REPLACE FUNCTION creditgate_authorize(
    p_account text, p_request text, p_amount bigint, p_now timestamptz, p_expires timestamptz,
    p_hold_id text, p_model text, p_provider text, p_metadata jsonb)
RETURNS TABLE (o_outcome text, o_reason text, o_retry_after_ms bigint,
               o_remaining_credit bigint, o_remaining_limit bigint)
LANGUAGE plpgsql AS $fn$
DECLARE
    acct record;
    lim record;
    need bigint := greatest(p_amount, 1);
    available bigint;
    period interval;
    w_start timestamptz;
    spend bigint;
    allowed_spend bigint;
    until timestamptz;
    bucket timestamptz;
BEGIN
    SELECT balance, held, credit_limit, mode INTO acct FROM accounts WHERE id = p_account FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'missing'::text, NULL::text, NULL::bigint, NULL::bigint, NULL::bigint;
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM holds WHERE account_id = p_account AND request_id = p_request) THEN
        RETURN QUERY SELECT 'replayed'::text, NULL::text, NULL::bigint, NULL::bigint, NULL::bigint;
        RETURN;
    END IF;
    available := acct.balance - acct.held + CASE WHEN acct.mode = 'postpaid' THEN acct.credit_limit ELSE 0 END;
    SELECT sl.amount, sl.duration, sl.strategy, ls.duration AS s_duration, ls.strategy AS s_strategy,
           ls.window_start, ls.window_spend
      INTO lim
      FROM spending_limits sl LEFT JOIN limit_state ls ON ls.account_id = sl.account_id
     WHERE sl.account_id = p_account;
    IF FOUND THEN
        period := CASE lim.duration WHEN 'daily' THEN interval '1 day' WHEN 'weekly' THEN interval '7 days'
                  ELSE interval '30 days' END;
        IF lim.strategy = 'sliding' THEN
            w_start := date_trunc('minute', p_now, 'UTC') - period;
        ELSE
            w_start := date_trunc(CASE lim.duration WHEN 'daily' THEN 'day' WHEN 'weekly' THEN 'week'
                                  ELSE 'month' END, p_now, 'UTC');
        END IF;
        IF lim.s_duration = lim.duration AND lim.s_strategy = lim.strategy AND lim.window_start = w_start THEN
            spend := lim.window_spend;
        ELSE
            IF lim.s_duration = lim.duration AND lim.s_strategy = lim.strategy AND lim.strategy = 'sliding'
               AND lim.window_start < w_start AND w_start < lim.window_start + period THEN
                spend := lim.window_spend - (SELECT coalesce(sum(amount), 0) FROM spend_buckets
                    WHERE account_id = p_account AND bucket_start >= lim.window_start AND bucket_start < w_start);
            ELSE
                spend := (SELECT coalesce(sum(amount), 0) FROM spend_buckets
                    WHERE account_id = p_account AND bucket_start >= w_start);
            END IF;
            INSERT INTO limit_state (account_id, duration, strategy, window_start, window_spend)
            VALUES (p_account, lim.duration, lim.strategy, w_start, spend)
            ON CONFLICT (account_id) DO UPDATE SET duration = excluded.duration, strategy = excluded.strategy,
                window_start = excluded.window_start, window_spend = excluded.window_spend;
        END IF;
    END IF;
    IF available < need THEN
        RETURN QUERY SELECT 'denied'::text, 'insufficient_credit'::text, NULL::bigint, NULL::bigint, NULL::bigint;
        RETURN;
    END IF;
    IF lim.amount IS NOT NULL AND spend + acct.held + need > lim.amount THEN
        IF need <= lim.amount THEN
            allowed_spend := lim.amount - acct.held - need;
            IF allowed_spend < 0 THEN
                until := (SELECT min(expires_at) FROM holds WHERE account_id = p_account AND status = 'open');
            ELSIF lim.strategy = 'fixed' THEN
                until := CASE lim.duration WHEN 'daily' THEN w_start + interval '1 day'
                         WHEN 'weekly' THEN w_start + interval '7 days'
                         ELSE ((w_start AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC' END;
            ELSE
                SELECT t.bucket_start INTO bucket FROM (
                    SELECT b.bucket_start, sum(b.amount) OVER (ORDER BY b.bucket_start) AS total
                      FROM spend_buckets b WHERE b.account_id = p_account AND b.bucket_start >= w_start) t
                 WHERE t.total >= spend - allowed_spend ORDER BY t.bucket_start LIMIT 1;
                until := bucket + period + interval '1 minute';
            END IF;
        END IF;
        RETURN QUERY SELECT 'denied'::text, 'spending_limit'::text,
            CASE WHEN until IS NULL THEN NULL
                 ELSE greatest(0, ceil(extract(epoch FROM until - p_now) * 1000))::bigint END,
            NULL::bigint, NULL::bigint;
        RETURN;
    END IF;
    INSERT INTO holds (id, account_id, request_id, amount, status, model, provider, metadata,
                       remaining_credit, remaining_limit, created_at, expires_at, closed_at, captured,
                       overrun, late, event_id)
    VALUES (p_hold_id, p_account, p_request, p_amount, 'open', p_model, p_provider, p_metadata,
            available - p_amount, lim.amount - spend - acct.held - p_amount, p_now, p_expires, NULL, NULL,
            0, false, NULL);
    IF p_amount <> 0 THEN
        UPDATE accounts SET held = held + p_amount WHERE id = p_account;
    END IF;
    RETURN QUERY SELECT 'granted'::text, NULL::text, NULL::bigint, available - p_amount,
                        lim.amount - spend - acct.held - p_amount;
END
$fn$;
"""


# Many authorizes in one statement (a worker's batch of concurrent requests), in account-id
# order so that concurrent batches lock accounts in the same order and never deadlock.
AUTHORIZE_MANY_FN = """
CREATE OR REPLACE FUNCTION creditgate_authorize_many(
    p_accounts text[], p_requests text[], p_amounts bigint[], p_now timestamptz[], p_expires timestamptz[],
    p_hold_ids text[], p_models text[], p_providers text[], p_metadata text[])
RETURNS TABLE (o_index int, o_outcome text, o_reason text, o_retry_after_ms bigint,
               o_remaining_credit bigint, o_remaining_limit bigint)
LANGUAGE plpgsql AS $fn$
DECLARE
    i int;
BEGIN
    FOR i IN SELECT s.i FROM generate_subscripts(p_accounts, 1) AS s(i) ORDER BY p_accounts[s.i], s.i LOOP
        RETURN QUERY SELECT i, a.* FROM creditgate_authorize(
            p_accounts[i], p_requests[i], p_amounts[i], p_now[i], p_expires[i], p_hold_ids[i], p_models[i],
            p_providers[i], p_metadata[i]::jsonb) AS a;
    END LOOP;
END
$fn$;
"""


def upgrade() -> None:
    op.create_table(
        "holds",
        sa.Column("id", sa.String(40), nullable=False),
        _account_fk("holds"),
        sa.Column("request_id", sa.String(200), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("model", sa.String(200), nullable=True),
        sa.Column("provider", sa.String(64), nullable=True),
        sa.Column("metadata", Json, nullable=True),
        sa.Column("remaining_credit", sa.BigInteger, nullable=False),
        sa.Column("remaining_limit", sa.BigInteger, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("closed_at", UTCDateTime, nullable=True),
        sa.Column("captured", sa.BigInteger, nullable=True),
        sa.Column("overrun", sa.BigInteger, nullable=False),
        sa.Column("late", sa.Boolean, nullable=False),
        sa.Column("event_id", sa.String(200), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_holds"),
        sa.UniqueConstraint("account_id", "request_id", name="uq_holds_account_id_request_id"),
    )
    op.create_index("ix_holds_status_expires_at", "holds", ["status", "expires_at"])
    op.create_index("ix_holds_account_id_status", "holds", ["account_id", "status"])
    op.create_table(
        "spend_buckets",
        _account_fk("spend_buckets"),
        sa.Column("bucket_start", UTCDateTime, nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("account_id", "bucket_start", name="pk_spend_buckets"),
    )
    op.create_table(
        "limit_state",
        _account_fk("limit_state"),
        sa.Column("duration", sa.String(8), nullable=False),
        sa.Column("strategy", sa.String(8), nullable=False),
        sa.Column("window_start", UTCDateTime, nullable=False),
        sa.Column("window_spend", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("account_id", name="pk_limit_state"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(AUTHORIZE_FN)
        op.execute(AUTHORIZE_MANY_FN)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS creditgate_authorize_many")
        op.execute("DROP FUNCTION IF EXISTS creditgate_authorize")
    op.drop_table("limit_state")
    op.drop_table("spend_buckets")
    op.drop_index("ix_holds_account_id_status", table_name="holds")
    op.drop_index("ix_holds_status_expires_at", table_name="holds")
    op.drop_table("holds")

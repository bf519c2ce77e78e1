-- creditgate_authorize_many: the hold decision on PostgreSQL, for one request or a batch, in one
-- statement. Twin of creditgate/limits/decision.py (the same rules in Python, which SQLite runs);
-- tests/test_hold_twins.py plays both on the same random sequences and asserts the same answers.
--
-- Requests are taken in account-id order, so concurrent batches lock accounts in the same order
-- and never deadlock; each account is locked and read once, and its `held` written once, however
-- many requests it has in the batch.
--
-- Each result row is the OUT columns set and emitted with RETURN NEXT: a plain assignment is
-- evaluated without the executor, where RETURN QUERY SELECT ran a query per row (backend CPU
-- for one request 413 -> 357 us, for 64 requests 5,467 -> 5,267 us; docs/performance.md).
--
-- A change to this file needs a new migration that re-creates the function from a copy of the
-- new text (see migrations 0008_hold_sql, 0012_postpaid_limits); tests/test_hold_twins.py fails
-- until it exists.
CREATE OR REPLACE FUNCTION creditgate_authorize_many(
    p_accounts text[], p_requests text[], p_amounts bigint[], p_now timestamptz[], p_expires timestamptz[],
    p_hold_ids text[], p_models text[], p_providers text[], p_metadata text[])
RETURNS TABLE (o_index int, o_outcome text, o_reason text, o_retry_after_ms bigint,
               o_remaining_credit bigint, o_remaining_limit bigint)
LANGUAGE plpgsql AS $fn$
DECLARE
    i int;
    v_cur text := NULL;
    v_found boolean := false;
    v_balance bigint;
    v_held bigint;
    v_start_held bigint;
    v_allowance bigint;
    lim record;
    v_has_limit boolean := false;
    v_period interval;
    v_state_ok boolean;
    v_state_start timestamptz;
    v_state_spend bigint;
    v_ws timestamptz;
    v_spend bigint;
    v_need bigint;
    v_available bigint;
    v_allowed_spend bigint;
    v_until timestamptz;
    v_bucket timestamptz;
BEGIN
    FOR i IN SELECT s.i FROM generate_subscripts(p_accounts, 1) AS s(i) ORDER BY p_accounts[s.i], s.i LOOP
        IF v_cur IS DISTINCT FROM p_accounts[i] THEN
            IF v_found AND v_held <> v_start_held THEN
                UPDATE accounts SET held = v_held WHERE id = v_cur;
            END IF;
            v_cur := p_accounts[i];
            -- the effective postpaid limit: the soft limit capped by the hard one (limits/postpaid.py)
            SELECT a.balance, a.held,
                   least(coalesce(a.postpaid_soft_limit, a.postpaid_hard_limit), a.postpaid_hard_limit)
              INTO v_balance, v_held, v_allowance
              FROM accounts a WHERE a.id = v_cur FOR UPDATE;
            v_found := FOUND;
            v_start_held := v_held;
            IF v_found THEN
                -- usage stored but not applied yet counts as spent (metering/applier.py); read
                -- after the lock, so an apply that committed meanwhile is seen in both
                v_balance := v_balance - (SELECT coalesce(sum(p.cost), 0) FROM usage_pending p
                                           WHERE p.account_id = v_cur);
                SELECT sl.amount, sl.duration, sl.strategy, ls.duration AS s_duration,
                       ls.strategy AS s_strategy, ls.window_start, ls.window_spend
                  INTO lim
                  FROM spending_limits sl LEFT JOIN limit_state ls ON ls.account_id = sl.account_id
                 WHERE sl.account_id = v_cur;
                v_has_limit := FOUND;
                IF v_has_limit THEN
                    -- hours, not days: timestamptz + '1 day' is taken in the session's time
                    -- zone (23 or 25 hours across a daylight-saving change); windows are UTC
                    v_period := CASE lim.duration WHEN 'daily' THEN interval '24 hours'
                                WHEN 'weekly' THEN interval '168 hours' ELSE interval '720 hours' END;
                    v_state_ok := coalesce(lim.s_duration = lim.duration AND lim.s_strategy = lim.strategy, false);
                    v_state_start := lim.window_start;
                    v_state_spend := lim.window_spend;
                END IF;
            END IF;
        END IF;
        IF NOT v_found THEN
            o_index := i; o_outcome := 'missing'; o_reason := NULL;
            o_retry_after_ms := NULL; o_remaining_credit := NULL; o_remaining_limit := NULL;
            RETURN NEXT;
            CONTINUE;
        END IF;
        IF EXISTS (SELECT 1 FROM holds h WHERE h.account_id = v_cur AND h.request_id = p_requests[i]) THEN
            o_index := i; o_outcome := 'replayed'; o_reason := NULL;
            o_retry_after_ms := NULL; o_remaining_credit := NULL; o_remaining_limit := NULL;
            RETURN NEXT;
            CONTINUE;
        END IF;
        IF v_has_limit THEN
            IF lim.strategy = 'sliding' THEN
                v_ws := date_trunc('minute', p_now[i], 'UTC') - v_period;
            ELSE
                v_ws := date_trunc(CASE lim.duration WHEN 'daily' THEN 'day' WHEN 'weekly' THEN 'week'
                                   ELSE 'month' END, p_now[i], 'UTC');
            END IF;
            IF v_state_ok AND v_state_start = v_ws THEN
                v_spend := v_state_spend;
            ELSE
                IF v_state_ok AND lim.strategy = 'sliding' AND v_state_start < v_ws
                   AND v_ws < v_state_start + v_period THEN
                    v_spend := v_state_spend - (SELECT coalesce(sum(b.amount), 0) FROM spend_buckets b
                        WHERE b.account_id = v_cur AND b.bucket_start >= v_state_start AND b.bucket_start < v_ws);
                ELSE
                    v_spend := (SELECT coalesce(sum(b.amount), 0) FROM spend_buckets b
                        WHERE b.account_id = v_cur AND b.bucket_start >= v_ws);
                END IF;
                INSERT INTO limit_state AS st (account_id, duration, strategy, window_start, window_spend)
                VALUES (v_cur, lim.duration, lim.strategy, v_ws, v_spend)
                ON CONFLICT (account_id) DO UPDATE SET duration = excluded.duration,
                    strategy = excluded.strategy, window_start = excluded.window_start,
                    window_spend = excluded.window_spend;
                v_state_ok := true;
                v_state_start := v_ws;
                v_state_spend := v_spend;
            END IF;
            v_spend := v_spend + (SELECT coalesce(sum(p.cost), 0) FROM usage_pending p
                                   WHERE p.account_id = v_cur AND p.received_at >= v_ws);
        END IF;
        v_need := greatest(p_amounts[i], 1);
        v_available := v_balance - v_held + v_allowance;
        IF v_available < v_need THEN
            o_index := i; o_outcome := 'denied'; o_reason := 'insufficient_credit';
            o_retry_after_ms := NULL; o_remaining_credit := NULL; o_remaining_limit := NULL;
            RETURN NEXT;
            CONTINUE;
        END IF;
        IF v_has_limit AND v_spend + v_held + v_need > lim.amount THEN
            v_until := NULL;
            IF v_need <= lim.amount THEN
                v_allowed_spend := lim.amount - v_held - v_need;
                IF v_allowed_spend < 0 THEN
                    v_until := (SELECT min(h.expires_at) FROM holds h
                                 WHERE h.account_id = v_cur AND h.status = 'open');
                ELSIF lim.strategy = 'fixed' THEN
                    v_until := CASE lim.duration WHEN 'daily' THEN v_ws + interval '24 hours'
                               WHEN 'weekly' THEN v_ws + interval '168 hours'
                               ELSE ((v_ws AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC' END;
                ELSE
                    SELECT t.bucket_start INTO v_bucket FROM (
                        SELECT b.bucket_start, sum(b.amount) OVER (ORDER BY b.bucket_start) AS total
                          FROM spend_buckets b WHERE b.account_id = v_cur AND b.bucket_start >= v_ws) t
                     WHERE t.total >= v_spend - v_allowed_spend ORDER BY t.bucket_start LIMIT 1;
                    v_until := v_bucket + v_period + interval '1 minute';
                END IF;
            END IF;
            o_index := i; o_outcome := 'denied'; o_reason := 'spending_limit';
            o_retry_after_ms := CASE WHEN v_until IS NULL THEN NULL
                ELSE greatest(0, ceil(extract(epoch FROM v_until - p_now[i]) * 1000))::bigint END;
            o_remaining_credit := NULL; o_remaining_limit := NULL;
            RETURN NEXT;
            CONTINUE;
        END IF;
        INSERT INTO holds (id, account_id, request_id, amount, status, model, provider, metadata,
                           remaining_credit, remaining_limit, created_at, expires_at, closed_at, captured,
                           overrun, late, event_id)
        VALUES (p_hold_ids[i], v_cur, p_requests[i], p_amounts[i], 'open', p_models[i], p_providers[i],
                p_metadata[i]::jsonb, v_available - p_amounts[i],
                CASE WHEN v_has_limit THEN lim.amount - v_spend - v_held - p_amounts[i] END,
                p_now[i], p_expires[i], NULL, NULL, 0, false, NULL);
        o_index := i; o_outcome := 'granted'; o_reason := NULL; o_retry_after_ms := NULL;
        o_remaining_credit := v_available - p_amounts[i];
        o_remaining_limit := CASE WHEN v_has_limit THEN lim.amount - v_spend - v_held - p_amounts[i] END;
        RETURN NEXT;
        v_held := v_held + p_amounts[i];
    END LOOP;
    IF v_found AND v_held <> v_start_held THEN
        UPDATE accounts SET held = v_held WHERE id = v_cur;
    END IF;
END
$fn$;

"""PostgreSQL: settle_stk_callback(), an STK callback's writes as one call, so the callback
needs no transaction of its own (payments/store_settle.py)

Revision ID: 0012_settle_stk_callback
Revises: 0011_deliveries_notify
Create Date: 2026-12-12 09:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012_settle_stk_callback"
down_revision: str | None = "0011_deliveries_notify"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A function call is one statement, so it commits (or rolls back) as a whole without a
# BEGIN and a COMMIT around it. Inside it, each statement is run as the same statements
# in a transaction would be: in order, and (VOLATILE, READ COMMITTED) each with a fresh
# snapshot, so the balance rows are locked before the statements that move them start.
# That is the order payments/store.py explains (its _LOCK_BALANCES): it keeps racing
# credits from deadlocking.
#
# The payment is settled only if its row is still the version the caller read
# (p_version, its xmin) and pending: then the caller's event, deliveries and entry, built
# from that version, are the ones to write. Otherwise nothing is written and it returns
# false, for the caller's general path to decide.
FUNCTION = """
CREATE FUNCTION settle_stk_callback(
    p_id varchar, p_version text, p_status varchar, p_result_code varchar,
    p_result_desc varchar, p_receipt varchar, p_transaction_date varchar,
    p_settled_by varchar, p_now timestamp, p_checkout varchar, p_merchant varchar,
    p_body text, p_source_ip varchar,
    p_reset_guard boolean,
    e_id varchar, e_account_id varchar, e_type varchar, e_object_id varchar, e_payload text,
    e_created_at timestamp,
    d_id varchar[], d_account_id varchar[], d_event_id varchar[], d_endpoint_id varchar[],
    d_url varchar[], d_body text[], d_format varchar[], d_status varchar[],
    d_attempt_count integer[], d_next_attempt_at timestamp[], d_last_status_code integer[],
    d_created_at timestamp[], d_updated_at timestamp[],
    j_id varchar, j_key varchar, j_kind varchar, j_description varchar, j_reference varchar,
    j_accounts varchar[], j_amounts bigint[], j_moved varchar[], j_deltas bigint[]
) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_account varchar;
    v_phone varchar;
    v_entry varchar;
BEGIN
    UPDATE payments SET
        status = p_status, result_code = p_result_code, result_desc = p_result_desc,
        mpesa_receipt = p_receipt, transaction_date = p_transaction_date,
        settled_by = p_settled_by, next_query_at = NULL, finalized_at = p_now,
        updated_at = p_now, checkout_request_id = p_checkout, merchant_request_id = p_merchant
    WHERE id = p_id AND xmin = p_version::xid AND status = 'pending'
    RETURNING account_id, phone INTO v_account, v_phone;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    INSERT INTO daraja_callbacks (payment_id, body, source_ip, outcome, received_at)
    VALUES (p_id, p_body, p_source_ip, 'applied', p_now);
    IF j_key IS NOT NULL THEN
        PERFORM 1 FROM ledger_accounts WHERE id = ANY(j_moved)
          ORDER BY kind IN ('wallet', 'payout_hold'), id
            FOR NO KEY UPDATE;
        INSERT INTO journal_entries (id, key, kind, description, reference, created_at)
        VALUES (j_id, j_key, j_kind, j_description, j_reference, e_created_at)
        ON CONFLICT DO NOTHING RETURNING id INTO v_entry;
        IF v_entry IS NOT NULL THEN
            INSERT INTO postings (entry_id, ledger_account_id, amount)
            SELECT v_entry, p.account, p.amount
              FROM unnest(j_accounts, j_amounts) AS p(account, amount);
            UPDATE ledger_accounts l SET balance = l.balance + m.delta
              FROM unnest(j_moved, j_deltas) AS m(account, delta)
             WHERE l.id = m.account;
        END IF;
    END IF;
    IF p_reset_guard THEN
        UPDATE stk_phone_guards SET consecutive_failures = 0, updated_at = p_now
         WHERE account_id = v_account AND phone = v_phone AND consecutive_failures > 0;
    END IF;
    INSERT INTO events (id, account_id, type, object_id, payload, created_at)
    VALUES (e_id, e_account_id, e_type, e_object_id, e_payload, e_created_at);
    INSERT INTO deliveries (id, account_id, event_id, endpoint_id, url, body, format, status,
                            attempt_count, next_attempt_at, last_status_code, created_at,
                            updated_at)
    SELECT * FROM unnest(d_id, d_account_id, d_event_id, d_endpoint_id, d_url, d_body,
                         d_format, d_status, d_attempt_count, d_next_attempt_at,
                         d_last_status_code, d_created_at, d_updated_at);
    RETURN true;
END
$$
"""
SIGNATURE = """settle_stk_callback(
    varchar, text, varchar, varchar, varchar, varchar, varchar, varchar, timestamp, varchar,
    varchar, text, varchar, boolean, varchar, varchar, varchar, varchar, text, timestamp,
    varchar[], varchar[], varchar[], varchar[], varchar[], text[], varchar[], varchar[],
    integer[], timestamp[], integer[], timestamp[], timestamp[], varchar, varchar, varchar,
    varchar, varchar, varchar[], bigint[], varchar[], bigint[])"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite settles a callback through the ORM, in a transaction
    op.execute(FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"DROP FUNCTION {SIGNATURE}")

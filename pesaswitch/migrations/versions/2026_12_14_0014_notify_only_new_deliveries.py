"""PostgreSQL: the deliveries trigger notifies only when its INSERT wrote a row

Revision ID: 0014_notify_only_new_deliveries
Revises: 0013_payments_due_index
Create Date: 2026-12-14 09:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014_notify_only_new_deliveries"
down_revision: str | None = "0013_payments_due_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A statement trigger fires for an INSERT of no rows too, and a callback's settlement
# inserts its deliveries from arrays that are empty for an account with no endpoints
# (settle_stk_callback, payments/store.py). Each such NOTIFY woke every dispatcher for
# nothing, and at commit a notifying transaction takes PostgreSQL's database-wide
# notification lock, which queues the commits of every other notifying transaction
# behind its own. The transition table tells whether the statement wrote a row.
NOTIFY_IF_INSERTED = """
CREATE OR REPLACE FUNCTION notify_deliveries() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM inserted_deliveries) THEN
        PERFORM pg_notify('pesaswitch_deliveries', '');
    END IF;
    RETURN NULL;
END
$$
"""
TRIGGER_WITH_ROWS = """
CREATE TRIGGER deliveries_notify AFTER INSERT ON deliveries
    REFERENCING NEW TABLE AS inserted_deliveries
    FOR EACH STATEMENT EXECUTE FUNCTION notify_deliveries()
"""
# 0011's, for the downgrade
NOTIFY_ALWAYS = """
CREATE OR REPLACE FUNCTION notify_deliveries() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('pesaswitch_deliveries', '');
    RETURN NULL;
END
$$
"""
TRIGGER_ALWAYS = """
CREATE TRIGGER deliveries_notify AFTER INSERT ON deliveries
    FOR EACH STATEMENT EXECUTE FUNCTION notify_deliveries()
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite's dispatcher watches the table instead (webhooks/wakeup.py)
    op.execute("DROP TRIGGER deliveries_notify ON deliveries")
    op.execute(NOTIFY_IF_INSERTED)
    op.execute(TRIGGER_WITH_ROWS)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER deliveries_notify ON deliveries")
    op.execute(NOTIFY_ALWAYS)
    op.execute(TRIGGER_ALWAYS)

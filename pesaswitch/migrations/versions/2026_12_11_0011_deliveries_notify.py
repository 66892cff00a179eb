"""PostgreSQL: NOTIFY pesaswitch_deliveries after every INSERT into deliveries, so the
dispatcher wakes at commit rather than at its next poll (webhooks/wakeup.py)

Revision ID: 0011_deliveries_notify
Revises: 0010_c2b_seam
Create Date: 2026-12-11 09:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011_deliveries_notify"
down_revision: str | None = "0010_c2b_seam"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# FOR EACH STATEMENT: one notification per INSERT however many rows it writes, and
# PostgreSQL folds identical notifications of one transaction into one.
FUNCTION = """
CREATE FUNCTION notify_deliveries() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('pesaswitch_deliveries', '');
    RETURN NULL;
END
$$
"""
TRIGGER = """
CREATE TRIGGER deliveries_notify AFTER INSERT ON deliveries
    FOR EACH STATEMENT EXECUTE FUNCTION notify_deliveries()
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite has no cross-process signal: its dispatcher polls
    op.execute(FUNCTION)
    op.execute(TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER deliveries_notify ON deliveries")
    op.execute("DROP FUNCTION notify_deliveries()")

"""payments: the reconciler's index on next_query_at, only for rows that have one, instead
of (status, next_query_at)

Revision ID: 0013_payments_due_index
Revises: 0012_settle_stk_callback
Create Date: 2026-12-13 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_payments_due_index"
down_revision: str | None = "0012_settle_stk_callback"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Why: many statements pick one payment by a unique column and ``status = 'pending'``
# (the STK callback's read and settle, every conditional UPDATE). On a table PostgreSQL
# has not analysed yet (a new database, the first minute of a busy one) both the unique
# index and one led by status estimate one row, the tie went to (status, next_query_at),
# and each callback walked every pending payment and its dead versions (issue 11's
# twelfth round: 20 heap fetches per scan, two scans per payment). A partial index on
# next_query_at serves the reconciler's "due" query (``next_query_at IS NOT NULL AND
# next_query_at <= now``) and cannot serve a query that does not imply its predicate.
# Only in-flight payments have a next_query_at, so the index also stays small.
PREDICATE = "next_query_at IS NOT NULL"


def upgrade() -> None:
    op.drop_index("ix_payments_reconcile", table_name="payments")
    op.create_index(
        "ix_payments_due",
        "payments",
        ["next_query_at"],
        sqlite_where=sa.text(PREDICATE),
        postgresql_where=sa.text(PREDICATE),
    )


def downgrade() -> None:
    op.drop_index("ix_payments_due", table_name="payments")
    op.create_index("ix_payments_reconcile", "payments", ["status", "next_query_at"])

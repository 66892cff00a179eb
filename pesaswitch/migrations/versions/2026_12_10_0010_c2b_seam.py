"""payments.duplicate_of (an STK payment whose M-Pesa transaction a C2B payment holds);
c2b_transactions by payment (an STK payment's echo)

Revision ID: 0010_c2b_seam
Revises: 0009_c2b
Create Date: 2026-12-10 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_c2b_seam"
down_revision: str | None = "0009_c2b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


FK_NAME = "fk_payments_duplicate_of_payments"


def upgrade() -> None:
    op.create_index("ix_c2b_transactions_payment", "c2b_transactions", ["payment_id"])
    if op.get_bind().dialect.name == "sqlite":
        # SQLite's ADD COLUMN takes a REFERENCES clause when the default is NULL; Alembic
        # would rebuild the whole payments table (batch mode) to add the constraint.
        op.execute(
            "ALTER TABLE payments ADD COLUMN duplicate_of VARCHAR(40) REFERENCES payments (id)"
        )
        return
    op.add_column("payments", sa.Column("duplicate_of", sa.String(length=40), nullable=True))
    op.create_foreign_key(FK_NAME, "payments", "payments", ["duplicate_of"], ["id"])


def downgrade() -> None:
    op.drop_index("ix_c2b_transactions_payment", "c2b_transactions")
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint(FK_NAME, "payments", type_="foreignkey")
    op.drop_column("payments", "duplicate_of")

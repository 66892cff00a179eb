"""c2b: registrations, transactions, notifications; payments.source; STK receipt queries

Revision ID: 0009_c2b
Revises: 0008_refunds
Create Date: 2026-12-03 06:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_c2b"
down_revision: str | None = "0008_refunds"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "payments",
        sa.Column("source", sa.String(length=10), nullable=False, server_default="stk"),
    )
    if op.get_bind().dialect.name != "sqlite":
        # C2B phones come masked or hashed (64 hex); SQLite does not enforce lengths.
        op.alter_column(
            "payments", "phone", type_=sa.String(length=64), existing_type=sa.String(length=12)
        )
    # The receipt sweep looks for completed payments without a receipt.
    op.create_index(
        "ix_payments_missing_receipt",
        "payments",
        ["finalized_at"],
        sqlite_where=sa.text("status = 'completed' AND mpesa_receipt IS NULL"),
        postgresql_where=sa.text("status = 'completed' AND mpesa_receipt IS NULL"),
    )
    op.create_table(
        "c2b_registrations",
        sa.Column("channel_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("shortcode", sa.String(length=10), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("validation_enabled", sa.Boolean(), nullable=False),
        sa.Column("account_pattern", sa.String(length=200), nullable=True),
        sa.Column("min_amount", sa.Integer(), nullable=True),
        sa.Column("max_amount", sa.Integer(), nullable=True),
        sa.Column("validation_url", sa.String(length=2000), nullable=True),
        sa.Column("default_action", sa.String(length=10), nullable=False),
        sa.Column("registered_at", sa.DateTime(), nullable=True),
        sa.Column("swept_until", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_c2b_registrations_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["channel_id"], ["channels.id"], name=op.f("fk_c2b_registrations_channel_id_channels")
        ),
        sa.PrimaryKeyConstraint("channel_id", name=op.f("pk_c2b_registrations")),
        sa.UniqueConstraint("shortcode", name=op.f("uq_c2b_registrations_shortcode")),
        sa.UniqueConstraint("token", name=op.f("uq_c2b_registrations_token")),
    )
    op.create_index(op.f("ix_c2b_registrations_account_id"), "c2b_registrations", ["account_id"])
    op.create_table(
        "c2b_transactions",
        sa.Column("trans_id", sa.String(length=20), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("channel_id", sa.Integer(), nullable=False),
        sa.Column("payment_id", sa.String(length=40), nullable=True),
        sa.Column("shortcode", sa.String(length=10), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("bill_ref", sa.String(length=100), nullable=False),
        sa.Column("msisdn", sa.String(length=64), nullable=False),
        sa.Column("payer_name", sa.String(length=200), nullable=False),
        sa.Column("trans_time", sa.String(length=14), nullable=True),
        sa.Column("source", sa.String(length=12), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_c2b_transactions_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["channel_id"], ["channels.id"], name=op.f("fk_c2b_transactions_channel_id_channels")
        ),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["payments.id"], name=op.f("fk_c2b_transactions_payment_id_payments")
        ),
        sa.PrimaryKeyConstraint("trans_id", name=op.f("pk_c2b_transactions")),
    )
    op.create_index("ix_c2b_transactions_account", "c2b_transactions", ["account_id", "created_at"])
    op.create_table(
        "c2b_notifications",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=True),
        sa.Column("channel_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("trans_id", sa.String(length=20), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("source_ip", sa.String(length=64), nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("result_code", sa.String(length=10), nullable=True),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_c2b_notifications_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["channel_id"], ["channels.id"], name=op.f("fk_c2b_notifications_channel_id_channels")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_c2b_notifications")),
    )
    op.create_index("ix_c2b_notifications_account", "c2b_notifications", ["account_id", "id"])
    op.create_table(
        "stk_receipt_queries",
        sa.Column("payment_id", sa.String(length=40), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_at", sa.DateTime(), nullable=True),
        sa.Column("done_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["payments.id"], name=op.f("fk_stk_receipt_queries_payment_id_payments")
        ),
        sa.PrimaryKeyConstraint("payment_id", name=op.f("pk_stk_receipt_queries")),
    )
    op.create_index(op.f("ix_stk_receipt_queries_next_at"), "stk_receipt_queries", ["next_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_stk_receipt_queries_next_at"), table_name="stk_receipt_queries")
    op.drop_table("stk_receipt_queries")
    op.drop_index("ix_c2b_notifications_account", table_name="c2b_notifications")
    op.drop_table("c2b_notifications")
    op.drop_index("ix_c2b_transactions_account", table_name="c2b_transactions")
    op.drop_table("c2b_transactions")
    op.drop_index(op.f("ix_c2b_registrations_account_id"), table_name="c2b_registrations")
    op.drop_table("c2b_registrations")
    op.drop_index("ix_payments_missing_receipt", table_name="payments")
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column(
            "payments", "phone", type_=sa.String(length=12), existing_type=sa.String(length=64)
        )
    with op.batch_alter_table("payments") as batch:
        batch.drop_column("source")

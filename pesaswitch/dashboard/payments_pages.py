"""Overview, payments list and search, a payment's story, re-query, CSV export."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse

from pesaswitch.dashboard import charts, queries
from pesaswitch.dashboard.queries import PaymentSearch
from pesaswitch.dashboard.web import ViewerDep, back_to, checked_form, chrome, render, svg
from pesaswitch.db import read_sessions
from pesaswitch.errors import ValidationFailed
from pesaswitch.payments.models import PaymentStatus
from pesaswitch.payments.tasks import reconcile_payment
from pesaswitch.refunds import service as refunds
from pesaswitch.runtime import RuntimeDep

router = APIRouter(prefix="/dashboard", include_in_schema=False)


@router.get("")
async def overview(request: Request, runtime: RuntimeDep, viewer: ViewerDep) -> Response:
    scope = viewer.account_id
    async with read_sessions(runtime.sessionmaker)() as session:
        today = await queries.totals_since(
            session, account_id=scope, since=queries.nairobi_midnight()
        )
        month = await queries.totals_since(
            session, account_id=scope, since=queries.nairobi_month_start()
        )
        days = await queries.daily(session, account_id=scope)
        recent, _ = await queries.payments_page(
            session, account_id=scope, search=PaymentSearch(), after=None, limit=8
        )
        context = await chrome(session, viewer)
    return render(
        request, "overview.html", today=today, month=month, days=days, recent=recent,
        chart=svg(charts.daily_bars(days)), **context,
    )  # fmt: skip


def _search(
    status: str | None, q: str | None, created_from: str | None, created_to: str | None
) -> PaymentSearch:
    def day(value: str | None, name: str) -> date | None:
        if not value:
            return None
        try:
            return date.fromisoformat(value)
        except ValueError as exc:
            raise ValidationFailed(f"{name} must be a date such as 2026-11-22") from exc

    return PaymentSearch(
        status=status or None,
        q=(q or "").strip() or None,
        created_from=day(created_from, "From"),
        created_to=day(created_to, "To"),
    )


SearchText = Annotated[str | None, Query(max_length=100)]


@router.get("/payments")
async def payments(
    request: Request, runtime: RuntimeDep, viewer: ViewerDep,
    status: SearchText = None, q: SearchText = None, created_from: SearchText = None,
    created_to: SearchText = None, after: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:  # fmt: skip
    search = _search(status, q, created_from, created_to)
    async with read_sessions(runtime.sessionmaker)() as session:
        rows, next_after = await queries.payments_page(
            session, account_id=viewer.account_id, search=search, after=after
        )
        context = await chrome(session, viewer)
    params = {k: v for k, v in request.query_params.items() if k != "after" and v}
    return render(
        request, "payments.html", payments=rows, next_after=next_after, search=search,
        params=params, statuses=[s.value for s in PaymentStatus], first_page=after is None,
        **context,
    )  # fmt: skip


@router.get("/payments.csv")
async def payments_csv(
    runtime: RuntimeDep, viewer: ViewerDep,
    status: SearchText = None, q: SearchText = None, created_from: SearchText = None,
    created_to: SearchText = None,
) -> Response:  # fmt: skip
    search = _search(status, q, created_from, created_to)
    columns = [
        "id", "created_at", "status", "amount", "currency", "phone", "reference",
        "gateway_reference", "mpesa_receipt", "result_code", "result_desc", "description",
        "finalized_at", "account_id",
    ]  # fmt: skip

    async def rows() -> AsyncIterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(columns)
        async with read_sessions(runtime.sessionmaker)() as session:
            async for batch in queries.stream_payments(
                session, account_id=viewer.account_id, search=search
            ):
                for p in batch:
                    writer.writerow([
                        p.id, p.created_at.isoformat(), p.status, p.amount, p.currency,
                        p.phone, p.external_reference or p.reference, p.reference,
                        p.mpesa_receipt or "", p.result_code or "", p.result_desc or "",
                        _csv_safe(p.description or ""),
                        p.finalized_at.isoformat() if p.finalized_at else "", p.account_id,
                    ])  # fmt: skip
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    return StreamingResponse(
        rows(),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": 'attachment; filename="payments.csv"',
            "Cache-Control": "no-store",
        },
    )


def _csv_safe(text: str) -> str:
    # A cell starting with = + - @ is run as a formula by spreadsheets (CSV injection).
    return "'" + text if text[:1] in {"=", "+", "-", "@"} else text


@router.get("/payments/{payment_id}")
async def payment_detail(
    payment_id: str, request: Request, runtime: RuntimeDep, viewer: ViewerDep
) -> Response:
    async with read_sessions(runtime.sessionmaker)() as session:
        payment = await queries.get_payment(
            session, account_id=viewer.account_id, payment_id=payment_id
        )
        history = await queries.payment_history(session, payment=payment)
        returns = await refunds.payment_detail(session, payment=payment)
        context = await chrome(session, viewer)
    return render(
        request, "payment.html", payment=payment, history=history, returns=returns, **context
    )


@router.post("/payments/{payment_id}/requery")
async def requery(
    payment_id: str, request: Request, runtime: RuntimeDep, viewer: ViewerDep
) -> Response:
    """Ask M-Pesa now instead of waiting for the reconciler's next turn."""
    await checked_form(request, runtime, viewer)
    async with read_sessions(runtime.sessionmaker)() as session:
        payment = await queries.get_payment(
            session, account_id=viewer.account_id, payment_id=payment_id
        )
    path = f"/dashboard/payments/{payment.id}"
    if payment.status != PaymentStatus.PENDING.value or payment.checkout_request_id is None:
        return back_to(path, "Only a pending payment that reached M-Pesa can be re-queried")
    await reconcile_payment(runtime, payment.id)
    async with read_sessions(runtime.sessionmaker)() as session:
        payment = await queries.get_payment(
            session, account_id=viewer.account_id, payment_id=payment_id
        )
    return back_to(path, f"M-Pesa was asked; the payment is {payment.status}")

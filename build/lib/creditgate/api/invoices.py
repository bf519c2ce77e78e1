"""Invoice PDFs: `GET /v1/billing/invoices/{id}/pdf?key=...`.

The link is a capability, like Stripe's hosted invoice URLs: each invoice has its own random
key (24 bytes), so a link opens in a browser without a token and cannot be guessed or
turned into another account's invoice. A wrong or missing key is a plain 404.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import Response

from creditgate.api.state import services
from creditgate.billing import invoices, statements
from creditgate.billing.pdf import render_invoice_pdf
from creditgate.ledger import service as ledger

router = APIRouter(prefix="/v1/billing")


@router.get("/invoices/{invoice_id}/pdf")
async def invoice_pdf(request: Request, invoice_id: str) -> Response:
    svc = services(request)
    key = request.query_params.get("key", "")
    async with svc.db.read() as conn:
        invoice = await invoices.invoice_for_download(conn, invoice_id, key)
        account = await ledger.get_account(conn, invoice.account_id)
        lines = await statements.pdf_lines(conn, invoice)
    pdf = await asyncio.to_thread(render_invoice_pdf, invoice, account.name, "creditgate", lines)
    return Response(
        pdf,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'inline; filename="invoice-{invoice.number}.pdf"',
            "Cache-Control": "private, no-store",
            "Referrer-Policy": "no-referrer",
            "X-Robots-Tag": "noindex",
        },
    )

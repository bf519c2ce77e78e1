"""Invoice PDFs: `GET /v1/billing/invoices/{id}/pdf?key=...`.

The link is a capability, like Stripe's hosted invoice URLs: each invoice has its own random
key (24 bytes), so a link opens in a browser without a token and cannot be guessed or
turned into another account's invoice. A wrong or missing key is a plain 404; a repeated
one is a 400.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import Response

from creditgate.api.schemas.common import operation
from creditgate.api.state import services
from creditgate.billing import documents, invoices
from creditgate.billing.pdf import render
from creditgate.errors import ValidationError

router = APIRouter(prefix="/v1/billing")


@router.get(
    "/invoices/{invoice_id}/pdf",
    **operation(
        ok=None,
        media_type="application/pdf",
        auth=False,
        errors=[404],
        parameters=[{"name": "key", "in": "query", "required": True, "schema": {"type": "string"}}],
        summary="The invoice as a PDF; the per-invoice key in the link is the credential",
    ),
)
async def invoice_pdf(request: Request, invoice_id: str) -> Response:
    svc = services(request)
    keys = request.query_params.getlist("key")
    if len(keys) > 1:  # `?key=x&key=<real>`: a proxy and we must not read different keys
        raise ValidationError("key must be given once", field="key")
    key = keys[0] if keys else ""
    async with svc.db.read() as conn:
        invoice = await invoices.invoice_for_download(conn, invoice_id, key)
        document = await documents.document(conn, invoice, svc.seller, svc.settings.invoice_extra_fonts)
    pdf = await asyncio.to_thread(render, document)
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

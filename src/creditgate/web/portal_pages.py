"""The customer portal's pages under /portal: one account per session, every read and write
through the workflows the APIs use."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from creditgate.web.sessions import WebSession, context, portal_session
from creditgate.web.templating import render
from creditgate.workflows import portal_reads

router = APIRouter(prefix="/portal", include_in_schema=False)


@router.get("")
async def home(request: Request, web: WebSession = Depends(portal_session)) -> Response:
    """The balance: available credit, holds, promotional grants and the postpaid allowance."""
    balance = await portal_reads.balance(context(request), web.account_id)
    return render(request, "portal/balance.html", title="Balance", balance=balance)

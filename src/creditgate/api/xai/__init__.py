"""The xAI Management API's billing routes under /v1/billing/teams/{team_id}
(contract: xai-billing.md), served as protojson, plus the key validation route.

Served: billing info, payment methods, invoices, prepaid balance, usage analytics and the
postpaid invoice preview; see docs/xai.md for what is left.
"""

from fastapi import APIRouter

from creditgate.api.xai import balance, billing_info, invoices, keys, payment_methods, preview, usage

router = APIRouter()
for _module in (keys, billing_info, payment_methods, invoices, balance, usage, preview):
    router.include_router(_module.router)

__all__ = ["router"]

"""The xAI Management API's billing routes under /v1/billing/teams/{team_id}
(contract: xai-billing.md), served as protojson, plus the key validation route.

Served: billing info, payment methods, invoices, prepaid balance, usage analytics, postpaid
spending limits and the postpaid invoice preview. Top-up and the default payment method are
not registered yet (docs/xai.md).
"""

from fastapi import APIRouter

from creditgate.api.xai import (
    balance,
    billing_info,
    invoices,
    keys,
    payment_methods,
    preview,  # postpaid invoice preview (the billing cycle)
    spending_limits,  # postpaid spending limits
    usage,
)

router = APIRouter()
for _module in (keys, billing_info, payment_methods, invoices, balance, usage, preview):
    router.include_router(_module.router)
router.include_router(spending_limits.router)

__all__ = ["router"]

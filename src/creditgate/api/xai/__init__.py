"""The xAI Management API's billing routes under /v1/billing/teams/{team_id}
(contract: xai-billing.md), served as protojson, plus the key validation route.

Served: billing info, payment methods and the default one, invoices, prepaid balance and
top-up, usage analytics, postpaid spending limits and the postpaid invoice preview
(docs/xai.md).
"""

from fastapi import APIRouter

from creditgate.api.xai import (
    balance,
    billing_info,
    invoices,
    keys,
    payment_default,
    payment_methods,
    preview,  # postpaid invoice preview (the billing cycle)
    spending_limits,  # postpaid spending limits
    topup,
    usage,
)

router = APIRouter()
for _module in (keys, billing_info, payment_methods, invoices, balance, usage, preview):
    router.include_router(_module.router)
router.include_router(spending_limits.router)
for _module in (payment_default, topup):  # xai-rest: the writes of phase 2
    router.include_router(_module.router)

__all__ = ["router"]

"""The Cloudflare AI Gateway billing API under /client/v4 (contract: cloudflare-billing.md).

Twelve SDK calls: four reads (reads.py), top-up and its status (topup.py), and the auto
top-up and spending-limit configuration (config.py). Errors use Cloudflare's envelope
(common.render_error, registered for the /client/v4 prefix).
"""

from fastapi import APIRouter

from creditgate.api.cloudflare import config, reads, topup

router = APIRouter()
router.include_router(reads.router)
router.include_router(topup.router)
router.include_router(config.router)

__all__ = ["router"]

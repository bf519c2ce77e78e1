"""HTTP adapters: the admin API, the gateway API and the billing-compatible APIs."""

from creditgate.api.app import create_app

__all__ = ["create_app"]

"""The portal in Stripe mode (against localstripe): Stripe.js is the one outside script the
policy allows, the card element gets a SetupIntent's client_secret, a saved payment method
posted back becomes the default, and a top-up needing 3-D Secure hands Stripe.js its
client_secret. (Stripe.js itself cannot load here; the sandbox browser tests cover the flow.)"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import stripe_support as ls
from tests import support
from tests.portal_support import csrf, portal_client, post_form
from tests.stripe_support import localstripe_url  # noqa: F401 - fixture
from tests.support import LiveServer


@pytest.fixture
def stripe_server(
    fresh_database_url: str,
    tmp_path: Path,
    localstripe_url: str,  # noqa: F811
) -> Iterator[LiveServer]:
    settings = support.make_settings(fresh_database_url, tmp_path).replace(
        payments="stripe",
        stripe_api_key=ls.API_KEY,
        stripe_webhook_secret="whsec_portal_tests",
        stripe_api_base=localstripe_url,
        stripe_max_network_retries=0,
        stripe_publishable_key="pk_test_portal",
    )
    with support.live_server(settings) as live:
        yield live


def _payment_method(url: str, number: str) -> str:
    card = {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"}
    created = ls.raw_client(url).v1.payment_methods.create(params={"type": "card", "card": card})  # type: ignore[typeddict-item]
    return str(created.id)


def test_stripe_mode_pages(stripe_server: LiveServer, localstripe_url: str) -> None:  # noqa: F811
    account = support.create_account(stripe_server)
    with portal_client(stripe_server, account) as browser:
        r = browser.get("/portal/payment-methods")
        csp = r.headers["content-security-policy"]
        assert "script-src 'self' https://js.stripe.com;" in csp and "unsafe-inline" not in csp
        assert "js.stripe.com" not in r.text  # loaded only where a card is entered
        adding = browser.get("/portal/payment-methods?add=1").text
        assert '<script src="https://js.stripe.com/v3/" defer></script>' in adding
        assert re.search(r'data-client-secret="seti_\w+_secret_\w+"', adding)
        assert 'data-publishable-key="pk_test_portal"' in adding
        # what stripe.js posts back after confirmCardSetup: the saved payment method
        method = _payment_method(localstripe_url, "4000002500003155")
        saved = post_form(browser, "/portal/payment-methods", "/portal/payment-methods", {"card": method})
        assert saved.status_code == 303, saved.text
        assert "ending 3155" in browser.get("/portal/payment-methods").text
        paid = post_form(
            browser, "/portal/top-up", "/portal/top-up", {"amount": "20", "request_key": "stripe-1"}
        )
        assert paid.status_code == 303 and paid.headers["location"].startswith("/portal/top-up/")
        step = browser.get(paid.headers["location"])
        assert step.status_code == 200 and "Needs authentication" in step.text
        assert re.search(r'data-client-secret="pi_\w+_secret_\w+"', step.text)
        assert "Complete authentication" not in step.text  # the sandbox's buttons are not shown
        assert support.balance_units(stripe_server, account) == 0
        assert csrf(step.text)

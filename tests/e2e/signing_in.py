"""Signing in through the real login form, as every browser walk begins."""
from __future__ import annotations

from tests import factories


def sign_in(page, base: str, email: str) -> None:
    """Sign ``email`` in (the factories' password) and wait until the portal has left /login."""
    page.goto(f"{base}/login")
    page.fill("#email", email)
    page.fill("#password", factories.PASSWORD)
    page.click("button[type=submit]")
    try:
        page.wait_for_url(lambda url: "/login" not in url)
    except Exception:
        raise AssertionError(f"sign-in of {email} failed: {page.url} {page.inner_text('body')[:800]}")

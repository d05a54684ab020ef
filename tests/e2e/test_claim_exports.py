"""Billing in a real browser: a refused 837P keeps the form's values with the error beside the
field; a good one downloads a file pyx12 accepts, listed on the exports page."""
from __future__ import annotations

from datetime import timedelta

import pytest

from portal.extensions import db
from tests import factories
from tests.web.test_billing_board import DAY, prepare_day
from tests.x12_check import assert_valid_837p

pytestmark = pytest.mark.e2e


def test_837p_form_errors_inline_then_download_and_history(live_server, tablet, world):
    page, base = tablet, live_server
    prepare_day(world, DAY - timedelta(days=1), close_pm=True)
    prepare_day(world, DAY)
    email = world.billing.email
    db.session.rollback()  # no open SQLite transaction while the live server works
    page.goto(f"{base}/login")
    page.fill("#email", email)
    page.fill("#password", factories.PASSWORD)
    page.click("button[type=submit]")
    page.goto(f"{base}/billing/exports")
    form = "form[action='/billing/837p']"
    page.fill(f"{form} input[name=from]", DAY.isoformat())
    page.fill(f"{form} input[name=to]", (DAY - timedelta(days=1)).isoformat())
    page.select_option(f"{form} select[name=payer]", "sunrise_medicaid_mco")
    page.click(f"{form} button")
    error = page.locator("#x12-to-error")
    assert "after the end date" in error.inner_text()
    assert page.locator(f"{form} input[name=from]").input_value() == DAY.isoformat()
    assert page.locator(f"{form} select[name=payer]").input_value() == "sunrise_medicaid_mco"
    assert page.locator(f"{form} input[name=to]").get_attribute("aria-describedby") == "x12-to-error"
    page.fill(f"{form} input[name=from]", (DAY - timedelta(days=1)).isoformat())
    page.fill(f"{form} input[name=to]", DAY.isoformat())
    with page.expect_download() as dl:
        page.click(f"{form} button")
    with open(dl.value.path(), "rb") as fh:
        data = fh.read()
    assert_valid_837p(data.decode())
    page.goto(f"{base}/billing/exports")
    assert page.locator("text=#1").count() >= 1
    page.click("a[href='/billing/837p/1']")
    assert "ISA13 000000001" in page.inner_text("main")

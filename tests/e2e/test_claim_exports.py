"""Billing in a real browser: a refused 837P keeps the form's values with the error beside the
field; a good one runs as a background job whose page shows a progress bar, then downloads a
file pyx12 accepts, listed on the exports page; the CSV export's progress bar on the exports
page ends in its download."""
from __future__ import annotations

from datetime import timedelta

import pytest

from portal.extensions import db
from tests import factories
from tests.web.test_billing_board import DAY, prepare_day
from tests.x12_check import assert_valid_837p

pytestmark = pytest.mark.e2e


def test_837p_form_errors_inline_then_download_and_history(live_server, job_worker, tablet, world):
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
    page.click(f"{form} button")
    page.wait_for_url(f"{base}/jobs/*")
    assert page.locator("h1").inner_text() == "837P claim file"
    link = page.locator("a:has-text('Download 837p-')")
    link.wait_for()  # the page polls its progress about every second until the file is ready
    assert "Export #1: 2 claims, 3 lines" in page.inner_text("main")
    with page.expect_download() as dl:
        link.click()
    with open(dl.value.path(), "rb") as fh:
        data = fh.read()
    assert_valid_837p(data.decode())
    page.goto(f"{base}/billing/exports")
    assert page.locator("text=#1").count() >= 1
    page.click("a[href='/billing/837p/1']")
    assert "ISA13 000000001" in page.inner_text("main")


def test_csv_export_progress_then_download(live_server, job_worker, tablet, world):
    page, base = tablet, live_server
    prepare_day(world, DAY - timedelta(days=1), close_pm=True)
    prepare_day(world, DAY)
    email = world.billing.email
    db.session.rollback()
    page.goto(f"{base}/login")
    page.fill("#email", email)
    page.fill("#password", factories.PASSWORD)
    page.click("button[type=submit]")
    page.goto(f"{base}/billing/exports")
    form = "form[action='/billing/exports']"
    page.fill(f"{form} input[name=from]", (DAY - timedelta(days=1)).isoformat())
    page.fill(f"{form} input[name=to]", DAY.isoformat())
    page.click(f"{form} button")
    # the job's component swaps in under the form: a labelled progress bar, then the link
    link = page.locator("#export-job a:has-text('Download claim-lines-')")
    link.wait_for()
    assert page.url == f"{base}/billing/exports"
    assert "5 lines for 3 patients." in page.inner_text("#export-job")
    with page.expect_download() as dl:
        link.click()
    with open(dl.value.path(), "rb") as fh:
        header = fh.readline().decode()
    assert header.startswith("dos,patient_id,mrn")

"""A wrangler's way in: Airflow's trigger form in a real browser (Debian's Chromium, headless).

Screenshots are kept in ``artifacts/`` at the repository root (and the test's tmp dir).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.fixtures.airflow import DAG_ID, RUN_TIMEOUT, AirflowStack
from tests.fixtures.paths import REPO_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = REPO_ROOT / "artifacts"
MALFORMED = "1234; rm -rf /"
# The UI renders slowly on a loaded machine; waits are for elements, not timed assertions.
UI_TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"no Chromium at {CHROMIUM} (make install puts Debian's chromium in)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser, airflow_stack: AirflowStack) -> Iterator[Page]:
    """Logged in as the standalone's admin, on the archive_submission page."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    standalone = airflow_stack.standalone
    page.goto(f"{standalone.base_url}/dags/{DAG_ID}")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(standalone.password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"**/dags/{DAG_ID}")
    yield page
    context.close()


def keep_screenshot(page: Page, name: str, tmp_path: Path) -> Path:
    shot = tmp_path / name
    page.screenshot(path=shot, full_page=True)
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(shot, ARTIFACTS / name)
    return shot


def fill_trigger_form(page: Page, submission_uuid: str) -> None:
    page.get_by_role("button", name="Trigger").first.click()
    field = page.locator("#element_submission_uuid")
    expect(field).to_be_visible(timeout=UI_TIMEOUT_MS)
    field.fill(submission_uuid)
    page.get_by_test_id("trigger-dag-submit").click()


def shown_run_state(page: Page, run_id: str) -> str:
    """The state word next to the run's heading ("Running", "Success" ...)."""
    heading = page.get_by_role("heading", name=run_id, exact=True)
    expect(heading).to_be_visible(timeout=UI_TIMEOUT_MS)
    return heading.locator("xpath=..").inner_text().replace(run_id, "").strip()


def wait_until_finished(page: Page, run_id: str) -> str:
    """The run's state as its page shows it, reloading until it is success or failed."""
    deadline = time.monotonic() + RUN_TIMEOUT
    while (state := shown_run_state(page, run_id)) not in ("Success", "Failed"):
        if time.monotonic() > deadline:
            break
        page.wait_for_timeout(3000)
        page.reload()
    return state


def test_a_wrangler_archives_a_submission_from_the_trigger_form(
    page: Page, airflow_stack: AirflowStack, tmp_path: Path
) -> None:
    (submission_uuid,) = airflow_stack.sandbox.seed(jobs=["plain"], reads=50)
    fill_trigger_form(page, submission_uuid)
    page.wait_for_url(f"**/dags/{DAG_ID}/runs/**")
    run_id = unquote(page.url.rsplit("/runs/", 1)[1].split("?")[0])

    state = wait_until_finished(page, run_id)
    keep_screenshot(page, "trigger-form-run-succeeded.png", tmp_path)
    assert state == "Success"
    run = airflow_stack.api.run(DAG_ID, run_id)
    assert run["state"] == "success"
    assert run["conf"]["submission_uuid"] == submission_uuid
    assert airflow_stack.sandbox.submission_summary(submission_uuid)["envelope_state"] == "Archived"


def test_the_trigger_form_refuses_a_malformed_uuid(
    page: Page, airflow_stack: AirflowStack, tmp_path: Path
) -> None:
    fill_trigger_form(page, MALFORMED)
    expect(page.get_by_text("Failed to Trigger Dag")).to_be_visible(timeout=UI_TIMEOUT_MS)
    dialog = page.get_by_role("dialog")
    refusal = dialog.get_by_text("Invalid input for param submission_uuid")
    expect(refusal).to_contain_text("does not match", timeout=UI_TIMEOUT_MS)
    refusal.scroll_into_view_if_needed()
    keep_screenshot(page, "trigger-form-refuses-malformed-uuid.png", tmp_path)
    assert "/runs/" not in page.url
    runs = airflow_stack.api.json("GET", f"/dags/{DAG_ID}/dagRuns", params={"limit": 1000})
    assert all(run["conf"].get("submission_uuid") != MALFORMED for run in runs["dag_runs"])

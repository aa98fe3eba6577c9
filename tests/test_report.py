"""The comparison report: text from the CLI, and the /_bridge/compare page in Chromium."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from pydantic import SecretStr
from starlette.applications import Starlette

from legacy_bridge.app import create_app
from legacy_bridge.cli import main
from legacy_bridge.emulator.app import DEMO_API_KEY, DEMO_COMPANY_TOKEN
from legacy_bridge.emulator.dataset import DEMO_PLAN_ID
from legacy_bridge.settings import Settings
from support import ADMIN_TOKEN, MAPPINGS

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
def drifting_proxy(make_emulator: Callable[..., Starlette],
                   serve_http: Callable[[Starlette], str], tmp_path: Path,
                   tokens_file: Path) -> tuple[str, str]:
    """A proxy in shadow mode over an emulator whose legacy side drifts; (URL, store URL)."""
    upstream = serve_http(make_emulator(drift=frozenset({"enum"})))
    store = f"sqlite:///{tmp_path}/report.sqlite3"
    app = create_app(Settings(
        upstream_url=upstream, legacy_url=upstream, upstream_api_key=SecretStr(DEMO_API_KEY),
        tokens_file=tokens_file, mappings_dir=MAPPINGS, mode="shadow",
        shadow_primary="graphql", store_url=store, admin_token=SecretStr(ADMIN_TOKEN)))
    base = serve_http(app)
    for route in ("progress", "users"):
        for page in (1, 2, 3):
            httpx.get(f"{base}/api/v2/plans/{DEMO_PLAN_ID}/{route}",
                      params={"page": page, "per_page": 100},
                      headers={"Authorization": f"Bearer {DEMO_COMPANY_TOKEN}"})
    deadline = time.monotonic() + 20
    while app.state.bridge.shadow.done < 6:
        assert time.monotonic() < deadline, "shadow comparisons did not finish"
        time.sleep(0.05)
    return base, store


def test_report_command_shows_rates_fields_and_examples(
        drifting_proxy: tuple[str, str]) -> None:
    _, store = drifting_proxy
    result = CliRunner().invoke(main, ["compare", "report", "--store-url", store])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert any(line.startswith("progress: 3 comparisons, ") for line in lines)
    assert any(line.startswith("users: 3 comparisons, 0 differ") for line in lines)
    assert any(line.strip().startswith("stats.status") for line in lines)
    assert any("latest stats.status" in line and "'static-access'" in line for line in lines)


ARTIFACTS = Path(__file__).resolve().parent.parent / ".artifacts"  # kept after the run


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (.ci/run installs it)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    os.environ["PLAYWRIGHT_BROWSERS_PATH"] = str(tmp_path / "browsers")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, env={**os.environ, "HOME": str(tmp_path)},
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"])
        try:
            yield browser.new_page(extra_http_headers={
                "Authorization": f"Bearer {ADMIN_TOKEN}"})
        finally:
            browser.close()


def test_compare_page_renders_the_mismatch_rows_in_chromium(
        drifting_proxy: tuple[str, str], chromium: Any) -> None:
    base, _ = drifting_proxy
    page = chromium
    page.goto(f"{base}/_bridge/compare")
    mismatches = page.locator("#route-progress tr.mismatch")
    examples = page.locator("#route-progress tr.example")
    assert mismatches.count() == 1
    assert mismatches.first.inner_text().startswith("stats.status")
    assert "static-access" in examples.first.inner_text()
    assert page.locator("#route-users tr.mismatch").count() == 0
    assert "every field agrees" in page.locator("#route-users").inner_text()
    # the mode each route is in, and its agreement trend, drawn without a script
    assert page.locator("#route-progress .mode").inner_text() == "shadow"
    assert page.locator("#route-progress h2 svg.trend").count() == 1
    assert page.locator("#route-progress tr.mismatch svg.trend").count() == 1
    assert page.locator("script").count() == 0
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "compare.png"), full_page=True)


def test_usage_page_groups_what_each_client_still_uses_in_chromium(
        drifting_proxy: tuple[str, str], chromium: Any) -> None:
    base, _ = drifting_proxy
    page = chromium
    page.goto(f"{base}/_bridge/usage")
    client = page.locator("#client-demo-company")
    assert client.count() == 1
    text = client.inner_text()
    assert "6 requests" in text and "last seen" in text
    rows = client.locator("tr").all_inner_texts()
    assert any(r.startswith("progress\t3\t") and "per_page" in r and "stats.status" in r
               for r in rows)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "usage.png"), full_page=True)

"""/status.html in a real headless Chromium, with JavaScript switched off.

Set EBS_SAVE_SCREENSHOT=1 to refresh docs/img/status-page.png from this test.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import struct
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from ebs.devstack.waiting import wait_until
from tests.helpers.api import (
    API_TOKEN,
    BODHI,
    KOJI_WEB,
    TEMPORAL_UI,
    Stack,
    api_app,
    bearer,
    http,
    progress_batch,
    served_on_loopback,
    stack_fixture,  # noqa: F401 (the `stack` fixture)
)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
DOC_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "img" / "status-page.png"

pytestmark = pytest.mark.skipif(
    not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
    reason="needs Debian's chromium and chromium-driver (run.sh installs them)",
)


def browser() -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--disable-extensions", "--no-first-run",
        "--disable-sync", "--disable-default-apps", "--window-size=1280,1500",
    ):
        options.add_argument(arg)
    # The page must work without JavaScript.
    options.add_experimental_option(
        "prefs", {"profile.managed_default_content_settings.javascript": 2}
    )
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


def wait_page(driver: webdriver.Chrome, ok: Callable[[str], bool], timeout: float = 10.0) -> str:
    """The page source, once `ok` holds on it."""

    def source() -> str:
        html = driver.page_source
        return html if ok(html) else ""

    return wait_until(source, timeout, "the page condition", interval=0.1)


@pytest.fixture
async def served(stack: Stack) -> AsyncIterator[str]:
    """The API on a loopback port, refreshing its page every second."""
    async with served_on_loopback(api_app(stack, refresh_seconds=1)) as url:
        yield url


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


async def test_status_page_in_a_browser(stack: Stack, served: str, tmp_path: Path) -> None:
    await stack.reset_collector(lull=0.2)
    async with http(api_app(stack)) as api:
        # One finished batch, one running, and a component waiting for the next.
        queued = await api.post("/trigger", json={"components": ["python3.14"]},
                                headers=bearer(API_TOKEN))
        assert queued.status_code == 200, queued.text
        first = await stack.wait_for_batch()
        await stack.finish_batch(first, "succeeded")
        await api.post(
            "/trigger", json={"components": ["bash", "glibc", "llvm", "coreutils"]},
            headers=bearer(API_TOKEN),
        )
        second = await stack.wait_for_batch()
        await stack.script_batch(second, progress_batch)
        await api.post("/trigger", json={"components": ["ipa"]}, headers=bearer(API_TOKEN))

    driver = await asyncio.to_thread(browser)
    try:
        def look() -> dict[str, Any]:
            driver.get(f"{served}/status.html")
            links = {
                (section, a.text): a.get_attribute("href")
                for section in ("header", "#queue", "#current", "#recent")
                for a in driver.find_elements(By.CSS_SELECTOR, f"{section} a")
            }
            return {
                "title": driver.title,
                "refresh": driver.find_element(
                    By.CSS_SELECTOR, 'meta[http-equiv="refresh"]'
                ).get_attribute("content"),
                "scripts": len(driver.find_elements(By.TAG_NAME, "script")),
                "queue": driver.find_element(By.ID, "queue").text,
                "current": driver.find_element(By.ID, "current").text,
                "recent": driver.find_element(By.ID, "recent").text,
                "slices": [h.text for h in driver.find_elements(By.CSS_SELECTOR, "#current h3")],
                "links": links,
                "png": driver.get_screenshot_as_png(),
            }

        def look_steady() -> dict[str, Any]:
            # The page reloads itself every second: a reload in the middle of
            # reading makes an element stale; read it again.
            from selenium.common.exceptions import StaleElementReferenceException

            for _ in range(5):
                try:
                    return look()
                except StaleElementReferenceException:
                    continue
            return look()

        page = await asyncio.to_thread(look_steady)
        assert page["title"] == "ebs · ELN rebuild status"
        assert page["refresh"] == "1"
        assert page["scripts"] == 0
        assert "Queue (1)" in page["queue"] and "freeipa-4.12.2-1.fc45" in page["queue"]
        assert page["slices"] == ["Slice 0 · done", "Slice 10 · building", "Slice 1000 · building"]
        assert "building:slice 10 attempt 2" in page["current"]
        assert "buildArch failed: %check exited 1" in page["current"]
        links = page["links"]
        update = "FEDORA-ELN-2026-0a1b2c3d4e"
        assert links["#current", "9001"] == f"{KOJI_WEB}/taskinfo?taskID=9001"
        assert links["#current", "9011"] == f"{KOJI_WEB}/taskinfo?taskID=9011"
        assert links["#current", update] == f"{BODHI}/updates/{update}"
        assert links["#current", second] == f"{TEMPORAL_UI}/namespaces/default/workflows/{second}"
        # Past batches link to their exact run.
        assert links["#recent", first].startswith(
            f"{TEMPORAL_UI}/namespaces/default/workflows/{first}/"
        )
        assert links["#queue", "running"] == (
            f"{TEMPORAL_UI}/namespaces/default/workflows/ebs-collector"
        )
        assert links["header", "Temporal Web UI"] == f"{TEMPORAL_UI}/"
        assert "succeeded" in page["recent"] and first in page["recent"]
        width, height = png_size(page["png"])
        assert width >= 1000 and height >= 800
        (tmp_path / "status-page.png").write_bytes(page["png"])
        if os.environ.get("EBS_SAVE_SCREENSHOT"):
            DOC_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            DOC_SCREENSHOT.write_bytes(page["png"])

        # The page refreshes itself: the end of the batch shows up without navigating
        # (and the queued freeipa becomes the next batch).
        await stack.finish_batch(second, "partial")
        await asyncio.to_thread(
            wait_page, driver, lambda html: "partial" in html and "Queue (0)" in html
        )
        recent = await asyncio.to_thread(lambda: driver.find_element(By.ID, "recent").text)
        row = next(line for line in recent.splitlines() if second in line)
        # 4 packages: llvm built, bash failed, glibc and coreutils unfinished.
        assert "completed partial" in row and row.endswith("4 1 1 bash"), row
    finally:
        await asyncio.to_thread(driver.quit)

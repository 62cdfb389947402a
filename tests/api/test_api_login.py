"""The original's operator habits on the API: browser login (/login,
/oidc/callback, /logout) in a real headless Chromium against a local OIDC
provider, /control/pause|unpause, /loglevel/<LEVEL> (API and workers), and the
original's JSON-array body for /trigger."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from selenium.webdriver.common.by import By

from ebs.contracts.names import COLLECTOR_WORKFLOW_ID, QUERY_LOG_LEVEL
from ebs.loglevel import follow_log_level
from tests.api.test_status_page import CHROMEDRIVER, CHROMIUM, browser, wait_page
from tests.helpers.api import (
    API_TOKEN,
    API_TOKEN_NAME,
    Stack,
    api_app,
    bearer,
    eventually,
    http,
    oidc_stack_fixture,  # noqa: F401 (the `oidc_stack` fixture)
    served_on_loopback,
)
from tests.helpers.oidc import (
    ADMIN_GROUP,
    CLIENT_SECRET,
    OidcProvider,
    oidc_provider_fixture,  # noqa: F401 (the `oidc_provider` fixture)
)

PAGE_TIMEOUT = 30.0  # generous: a loaded CI machine
needs_chromium = pytest.mark.skipif(
    not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
    reason="needs Debian's chromium and chromium-driver (run.sh installs them)",
)


@pytest.fixture
def root_level() -> Iterator[None]:
    """Tests here change the root logger's level: put it back."""
    level = logging.getLogger().level
    yield
    logging.getLogger().setLevel(level)


def login_app(stack: Stack, tmp_path: Path) -> FastAPI:
    secret = tmp_path / "oidc-client-secret"
    secret.write_text(CLIENT_SECRET + "\n")
    return api_app(stack, oidc_client_secret_file=str(secret))


@pytest.fixture
async def served(oidc_stack: Stack, tmp_path: Path) -> AsyncIterator[str]:
    """The API (with browser login) on a loopback port."""
    async with served_on_loopback(login_app(oidc_stack, tmp_path)) as url:
        yield url


@needs_chromium
async def test_browser_login_flow(
    oidc_stack: Stack, oidc_provider: OidcProvider, served: str, root_level: None
) -> None:
    p = oidc_provider
    p.users.update({"olga": [ADMIN_GROUP, "packager"], "pete": ["packager"]})
    await oidc_stack.reset_collector()
    async with http(api_app(oidc_stack)) as api:
        await api.get("/startup")
    driver = await asyncio.to_thread(browser)

    def log_in(user: str, path: str, expect: str) -> str:
        driver.get(served + path)
        # The provider's login form.
        wait_page(driver, lambda s: 'id="username"' in s, PAGE_TIMEOUT)
        assert driver.current_url.startswith(p.base_url + "/Authorization?")
        driver.find_element(By.ID, "username").send_keys(user)
        driver.find_element(By.ID, "login").click()
        # Through /oidc/callback and back to `path`.
        return wait_page(
            driver, lambda s: expect in s and driver.current_url == served + path, PAGE_TIMEOUT
        )

    def page(path: str, expect: str, final: str | None = None) -> str:
        driver.get(served + path)
        url = served + (final or path)
        return wait_page(driver, lambda s: expect in s and driver.current_url == url, PAGE_TIMEOUT)

    try:
        # An admin: /trigger sends the browser to the provider and back.
        source = await asyncio.to_thread(log_in, "olga", "/trigger", "Logged in as")
        assert "Logged in as: <strong id=\"user\">olga</strong>" in source
        cookie = driver.get_cookie("ebs_session")
        assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Lax"

        # The session cookie is enough for the admin endpoints.
        await asyncio.to_thread(page, "/loglevel/debug", "Log level set to DEBUG")
        assert logging.getLogger().level == logging.DEBUG
        await asyncio.to_thread(page, "/control/pause", "Paused by olga")
        assert (await oidc_stack.collector_status()).paused
        await asyncio.to_thread(page, "/control/unpause", "Unpaused by olga")
        assert not (await oidc_stack.collector_status()).paused

        # Logged out: the cookie no longer opens anything.
        await asyncio.to_thread(page, "/logout?return_to=/alive", "alive", "/alive")
        assert driver.get_cookie("ebs_session") is None
        await asyncio.to_thread(page, "/control/pause", "authentication required")
        assert not (await oidc_stack.collector_status()).paused

        # Not an admin: logged in, but refused.
        source = await asyncio.to_thread(log_in, "pete", "/trigger", "Access denied")
        assert "Access denied. You must be a member of one of these admin groups: " \
            f"{ADMIN_GROUP}" in source
        await asyncio.to_thread(page, "/control/pause", "Access denied")
        assert not (await oidc_stack.collector_status()).paused
        # Only the code exchange went to the token endpoint, once per login.
        assert p.requests.count("/Token") == 2
    finally:
        await asyncio.to_thread(driver.quit)


async def test_callback_answers_like_the_original(
    oidc_stack: Stack, tmp_path: Path
) -> None:
    async with http(login_app(oidc_stack, tmp_path)) as api:
        resp = await api.get(
            "/oidc/callback", params={"error": "access_denied", "error_description": "nope"}
        )
        assert (resp.status_code, resp.text) == (401, "Authentication failed: nope")
        resp = await api.get("/oidc/callback", params={"code": "x"})
        assert (resp.status_code, resp.text) == (400, "Missing code or state parameter")
        resp = await api.get("/oidc/callback", params={"code": "x", "state": "forged"})
        assert (resp.status_code, resp.text) == (400, "Invalid or expired state parameter")
        # /login sends the browser to the provider with the original's scopes.
        resp = await api.get("/login", params={"return_to": "https://evil.example/"})
        assert resp.status_code == 302
        location = resp.headers["location"]
        assert "response_type=code" in location and "scope=openid+profile" in location
        assert "redirect_uri=http%3A%2F%2Febs.test%2Foidc%2Fcallback" in location
        # /trigger in a browser without a session: to /login and back.
        resp = await api.get("/trigger")
        assert (resp.status_code, resp.headers["location"]) == (
            302, "/login?return_to=%2Ftrigger")
    # Without the client secret there is no browser login.
    async with http(api_app(oidc_stack)) as api:
        resp = await api.get("/login")
        assert resp.status_code == 404 and "Authentication not configured" in resp.text


async def test_trigger_takes_the_originals_array(oidc_stack: Stack) -> None:
    await oidc_stack.reset_collector()
    async with http(api_app(oidc_stack)) as api:
        await api.get("/startup")
        resp = await api.post("/trigger", json=["glibc", "bash"], headers=bearer(API_TOKEN))
        assert resp.status_code == 200, resp.text
        assert resp.json()["queued"] == 2 and resp.json()["requested_by"] == API_TOKEN_NAME
        resp = await api.post("/trigger", json={"components": ["llvm"]},
                              headers=bearer(API_TOKEN))
        assert resp.status_code == 200 and resp.json()["queued"] == 1
        for bad in (["no/such name"], [1, 2], "bash", {"packages": ["bash"]}):
            resp = await api.post("/trigger", json=bad, headers=bearer(API_TOKEN))
            assert resp.status_code == 422, (bad, resp.text)
        resp = await api.post("/trigger", json=["coreutils"])
        assert resp.status_code == 401
    queued = await oidc_stack.collector_status()
    assert sorted(e.component for e in queued.queued) == ["bash", "glibc", "llvm"]


async def test_control_pause_and_unpause(oidc_stack: Stack) -> None:
    await oidc_stack.reset_collector()
    async with http(api_app(oidc_stack)) as api:
        await api.get("/startup")
        for method in ("POST", "GET"):
            resp = await api.request(method, "/control/pause")
            assert resp.status_code == 401
            resp = await api.request(method, "/control/pause", headers=bearer(API_TOKEN))
            assert (resp.status_code, resp.text) == (200, f"Paused by {API_TOKEN_NAME}\n")
            assert resp.headers["content-type"].startswith("text/plain")
            assert (await oidc_stack.collector_status()).paused
            resp = await api.request(method, "/control/unpause", headers=bearer(API_TOKEN))
            assert (resp.status_code, resp.text) == (200, f"Unpaused by {API_TOKEN_NAME}\n")
            assert not (await oidc_stack.collector_status()).paused


async def test_loglevel_for_the_api_and_the_workers(
    oidc_stack: Stack, root_level: None
) -> None:
    await oidc_stack.reset_collector()
    root = logging.getLogger()
    async with http(api_app(oidc_stack)) as api:
        await api.get("/startup")
        assert (await api.get("/loglevel/DEBUG")).status_code == 401
        resp = await api.get("/loglevel/bogus", headers=bearer(API_TOKEN))
        assert (resp.status_code, resp.text) == (400, "Invalid log level: BOGUS")
        resp = await api.get("/loglevel/debug", headers=bearer(API_TOKEN))
        assert (resp.status_code, resp.text) == (200, "Log level set to DEBUG")
        assert root.level == logging.DEBUG
    handle = oidc_stack.client.get_workflow_handle(COLLECTOR_WORKFLOW_ID)
    assert await handle.query(QUERY_LOG_LEVEL, result_type=str) == "DEBUG"

    # A worker process follows the collector's level.
    root.setLevel(logging.WARNING)
    follower = asyncio.create_task(follow_log_level(oidc_stack.client, interval=0.05))
    try:
        async def level() -> int:
            return root.level

        await eventually(level, lambda lv: lv == logging.DEBUG)
        async with http(api_app(oidc_stack)) as api:
            await api.post("/loglevel/error", headers=bearer(API_TOKEN))
        root.setLevel(logging.WARNING)  # as if this were another process
        await eventually(level, lambda lv: lv == logging.ERROR)
    finally:
        follower.cancel()


async def test_a_session_cannot_be_used_from_another_site(
    oidc_stack: Stack, tmp_path: Path
) -> None:
    """A link on another site to /control/pause carries the Lax cookie on a
    top-level navigation; the browser marks it cross-site and ebs refuses it."""
    from base64 import b64encode

    from itsdangerous import TimestampSigner

    from ebs.api.login import session_key

    session = {"user": {"name": "olga", "groups": [ADMIN_GROUP], "exp": time.time() + 60}}
    signed = TimestampSigner(session_key(CLIENT_SECRET)).sign(
        b64encode(json.dumps(session).encode())
    )
    await oidc_stack.reset_collector()
    async with http(login_app(oidc_stack, tmp_path)) as api:
        await api.get("/startup")
        api.cookies.set("ebs_session", signed.decode())
        resp = await api.get("/control/pause", headers={"Sec-Fetch-Site": "cross-site"})
        assert resp.status_code == 403 and "cross-site" in resp.text
        assert not (await oidc_stack.collector_status()).paused
        resp = await api.get("/control/pause", headers={"Sec-Fetch-Site": "none"})
        assert (resp.status_code, resp.text) == (200, "Paused by olga\n")
        resp = await api.get("/control/unpause", headers={"Sec-Fetch-Site": "same-origin"})
        assert resp.status_code == 200
        # A forged cookie is no session at all.
        api.cookies.set("ebs_session", signed.decode()[:-2] + "xx")
        resp = await api.get("/control/pause")
        assert resp.status_code == 401

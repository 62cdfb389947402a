"""The API's codec server (ebs.api.codec): Temporal's remote codec protocol and
CORS for the Web UI, and the real `temporal` CLI decoding a large result through it."""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.testing import WorkflowEnvironment

from ebs.api.app import create_app
from ebs.config.loader import parse_config
from ebs.devstack.processes import free_port, port_open
from ebs.devstack.temporal import dev_server_argv
from ebs.devstack.waiting import until
from ebs.payload_codec import DATA_CONVERTER, ENCODING
from ebs.temporal_client import connect_to, temporal_cli_path
from tests.helpers.api import config_text, eventually, http, served_on_loopback
from tests.helpers.payloads import big_batch_result, run_large_result

UI = "http://localhost:8233"
OTHER = "https://evil.example"


def codec_app(address: str = "127.0.0.1:9", origins: tuple[str, ...] = (UI,)) -> FastAPI:
    text = config_text(address) + f"api:\n  codec_cors_origins: {list(origins)}\n"

    async def no_temporal() -> Client:
        raise AssertionError("the codec server must not need Temporal")

    return create_app(parse_config(text), connect=no_temporal)


def as_json(payloads: list[Payload]) -> str:
    return json_format.MessageToJson(Payloads(payloads=payloads))


def from_json(text: str) -> list[Payload]:
    return list(json_format.Parse(text, Payloads()).payloads)


async def test_decode_and_encode_speak_payloads_protobuf_json() -> None:
    result = big_batch_result(2000)
    (plain,) = DataConverter.default.payload_converter.to_payloads([result])
    (packed,) = await DATA_CONVERTER.encode([result])
    (small,) = DataConverter.default.payload_converter.to_payloads([{"x": 1}])
    async with http(codec_app()) as api:
        # The Web UI sends X-Namespace (ignored) and, if so configured, its token.
        resp = await api.post("/codec/decode", content=as_json([packed, small]), headers={
            "Content-Type": "application/json", "X-Namespace": "ebs",
            "Authorization": "Bearer not-checked"})
        assert resp.status_code == 200, resp.text
        assert resp.headers["content-type"] == "application/json"
        assert from_json(resp.text) == [plain, small]
        # A proxy may put the namespace in the path: the last part decides. (Bodies
        # are capped at the API's 1 MB: encode what a user types, not a batch.)
        (mid,) = DataConverter.default.payload_converter.to_payloads([big_batch_result(300)])
        resp = await api.post("/codec/ebs/encode", content=as_json([mid, small]))
        assert resp.status_code == 200, resp.text
        encoded = from_json(resp.text)
        assert encoded[0].metadata["encoding"] == ENCODING and encoded[1] == small
        assert json.loads(resp.text)["payloads"][1]["metadata"]["encoding"] == "anNvbi9wbGFpbg=="
        assert from_json((await api.post("/codec/decode", content=resp.text)).text) == [
            mid, small]


async def test_bad_requests() -> None:
    async with http(codec_app()) as api:
        assert (await api.post("/codec/compress", content=as_json([]))).status_code == 404
        bad = await api.post("/codec/decode", content=b"not json")
        assert bad.status_code == 400 and "Payloads protobuf JSON" in bad.json()["detail"]
        broken = Payload(metadata={"encoding": ENCODING}, data=b"not zlib")
        resp = await api.post("/codec/decode", content=as_json([broken]))
        assert resp.status_code == 400 and "cannot decode" in resp.json()["detail"]


async def test_cors_for_the_configured_web_ui_only() -> None:
    async with http(codec_app()) as api:
        pre = await api.options("/codec/decode", headers={
            "Origin": UI, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-namespace"})
        assert pre.status_code == 204
        assert pre.headers["access-control-allow-origin"] == UI
        assert "POST" in pre.headers["access-control-allow-methods"]
        allowed = {h.strip().lower()
                   for h in pre.headers["access-control-allow-headers"].split(",")}
        assert {"content-type", "x-namespace", "authorization"} <= allowed
        post = await api.post("/codec/decode", content=as_json([]), headers={"Origin": UI})
        assert post.status_code == 200 and post.headers["access-control-allow-origin"] == UI
        assert from_json(post.text) == []

        refused = await api.options("/codec/decode", headers={
            "Origin": OTHER, "Access-Control-Request-Method": "POST"})
        assert refused.status_code == 403
        assert "access-control-allow-origin" not in refused.headers
        assert "api.codec_cors_origins" in refused.json()["detail"]
        other = await api.post("/codec/decode", content=as_json([]), headers={"Origin": OTHER})
        assert "access-control-allow-origin" not in other.headers
        # CORS stays on /codec: the write endpoints are not opened to the Web UI.
        pre_trigger = await api.options("/trigger", headers={
            "Origin": UI, "Access-Control-Request-Method": "POST"})
        assert "access-control-allow-origin" not in pre_trigger.headers

    async with http(codec_app(origins=())) as api:  # the production default: none
        pre = await api.options("/codec/decode", headers={
            "Origin": UI, "Access-Control-Request-Method": "POST"})
        assert pre.status_code == 403


async def test_the_temporal_cli_shows_a_large_result_through_the_codec_endpoint(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    handle = await run_large_result(time_skipping_env.client)
    address = time_skipping_env.client.service_client.config.target_host

    async def show(*extra: str) -> dict[str, Any]:
        proc = await asyncio.create_subprocess_exec(
            temporal_cli_path(), "workflow", "show", "--address", address,
            "--workflow-id", handle.id, "--output", "json", *extra,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
        assert proc.returncode == 0, err.decode()
        return json.loads(out)

    def result_of(history: dict[str, Any]) -> dict[str, Any]:
        (done,) = [e for e in history["events"]
                   if "workflowExecutionCompletedEventAttributes" in e]
        return done["workflowExecutionCompletedEventAttributes"]["result"]["payloads"][0]

    raw = result_of(await show())
    assert raw["metadata"]["encoding"] == "YmluYXJ5L3psaWI="  # binary/zlib
    async with served_on_loopback(codec_app(address)) as base:
        decoded = result_of(await show("--codec-endpoint", f"{base}/codec"))
    assert base64.b64decode(decoded["metadata"]["encoding"]) == b"json/plain"
    shown = json.loads(base64.b64decode(decoded["data"]))
    assert len(shown["packages"]) == 2000
    assert shown["packages"][0]["component"] == "python-package-0000"


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


@pytest.mark.skipif(not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
                    reason="needs Debian's chromium and chromium-driver (run.sh installs them)")
async def test_the_web_ui_shows_a_compressed_result_decoded(tmp_path: Path) -> None:
    """The real Web UI of `temporal server start-dev --ui-codec-endpoint`, in
    headless Chromium, fetches the result through the API's /codec (CORS)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    port, ui_port = free_port(), free_port()
    ui = f"http://127.0.0.1:{ui_port}"
    async with served_on_loopback(codec_app(origins=(ui,))) as base:
        argv = dev_server_argv(port, ui_port=ui_port) + ["--ui-codec-endpoint", f"{base}/codec"]
        with open(tmp_path / "temporal.log", "wb") as log:
            server = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        driver = None
        try:
            await until(lambda: (port_open(port) and port_open(ui_port)) or None, 60,
                        "the dev server")
            client = await connect_to(f"127.0.0.1:{port}")
            handle = await run_large_result(client, packages=300)
            options = webdriver.ChromeOptions()
            options.binary_location = CHROMIUM
            for arg in ("--headless=new", "--no-sandbox", "--disable-gpu",
                        "--disable-dev-shm-usage", "--no-first-run", "--window-size=1280,1500"):
                options.add_argument(arg)
            driver = await asyncio.to_thread(
                webdriver.Chrome, service=Service(executable_path=CHROMEDRIVER), options=options)
            await asyncio.to_thread(
                driver.get, f"{ui}/namespaces/default/workflows/{handle.id}")

            def shown() -> bool:
                # the Result card, decoded (compressed, it is base64 bytes)
                return "python-package-0000" in driver.page_source

            async def page_shows() -> bool:
                return await asyncio.to_thread(shown)

            await eventually(page_shows, bool, timeout=60)
        finally:
            if driver is not None:
                await asyncio.to_thread(driver.quit)
            server.terminate()
            server.wait(10)

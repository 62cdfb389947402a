"""deploy/temporal/scripts/: shellcheck; the search-attribute script run against a
real Temporal dev server (idempotent, fails fast on a type clash, gives up at its deadline)."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from ebs.contracts.search import SEARCH_ATTRIBUTES
from ebs.temporal_client import temporal_cli_path
from tests.helpers.deploy import (
    REGISTER_SCRIPT,
    SCRIPTS,
    tool,
)
from tests.helpers.temporal import start_local


def test_scripts_pass_shellcheck() -> None:
    scripts = sorted(SCRIPTS.glob("*.sh"))
    assert scripts
    result = subprocess.run(
        [tool("shellcheck"), "--shell=sh", *map(str, scripts)],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for script in scripts:
        assert os.access(script, os.X_OK), f"{script} is not executable"


def test_register_script_lists_ebs_search_attributes() -> None:
    match = re.search(r'^ATTRIBUTES="([^"]*)"', REGISTER_SCRIPT.read_text(), re.M)
    assert match, "ATTRIBUTES=... not found in the script"
    listed = dict(pair.split(":", 1) for pair in match[1].split())
    assert listed == SEARCH_ATTRIBUTES


@pytest_asyncio.fixture(scope="module")
async def dev_server() -> AsyncIterator[WorkflowEnvironment]:
    """A private Temporal dev server: these tests create namespaces and clashes."""
    env = await start_local()
    async with env:
        yield env


async def _run_register_script(env: WorkflowEnvironment, namespace: str,
                               **extra: str) -> tuple[int, str]:
    environ = {
        **os.environ,
        "PATH": f"{Path(temporal_cli_path()).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": namespace,
        "EBS_WAIT_SECONDS": "60",
        **extra,
    }
    proc = await asyncio.create_subprocess_exec(
        "/bin/sh", str(REGISTER_SCRIPT), env=environ,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def _search_attribute_types(env: WorkflowEnvironment, namespace: str) -> dict[str, str]:
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest

    resp = await env.client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    names = {
        IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD: "Keyword",
        IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST: "KeywordList",
        IndexedValueType.INDEXED_VALUE_TYPE_TEXT: "Text",
    }
    return {k: names.get(v, str(v)) for k, v in resp.custom_attributes.items()}


async def test_register_script_creates_namespace_and_is_idempotent(
    dev_server: WorkflowEnvironment,
) -> None:
    for _ in range(2):
        code, out = await _run_register_script(
            dev_server, "ebs-deploy", EBS_CREATE_NAMESPACE="true"
        )
        assert code == 0, out
    assert "Namespace ebs-deploy exists" in out
    types = await _search_attribute_types(dev_server, "ebs-deploy")
    assert {k: v for k, v in types.items() if k in SEARCH_ATTRIBUTES} == SEARCH_ATTRIBUTES


async def test_register_script_fails_fast_on_a_type_clash(dev_server: WorkflowEnvironment) -> None:
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest

    await dev_server.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace="default",
            search_attributes={"EbsOutcome": IndexedValueType.INDEXED_VALUE_TYPE_TEXT},
        )
    )
    loop = asyncio.get_running_loop()
    started = loop.time()
    code, out = await _run_register_script(dev_server, "default")
    assert code != 0
    assert "EbsOutcome" in out and "different type" in out, out
    assert loop.time() - started < 30, "a clash is final: no waiting for the deadline"


async def test_register_script_gives_up_at_its_deadline() -> None:
    environ = {
        **os.environ,
        "PATH": f"{Path(temporal_cli_path()).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "TEMPORAL_ADDRESS": "127.0.0.1:1",  # nothing listens there
        "EBS_WAIT_SECONDS": "0",
    }
    proc = await asyncio.create_subprocess_exec(
        "/bin/sh", str(REGISTER_SCRIPT), env=environ,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode != 0
    assert "gave up" in out.decode()

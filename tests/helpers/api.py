"""Fixtures shared by the operator-surface tests (API, CLI, status page, temporal CLI).

Modules import the fixtures they use (`stack_fixture`, ...;
pytest knows them by their `name`). Each module gets
its own Temporal dev server (real server, real SQLite visibility with the ebs
search attributes) and a worker hosting the real BatchCollector (see
tests/api/test_api_workflows.py for what stands in for Koji and the batch).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from fastapi import FastAPI
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from ebs.api.app import create_app
from ebs.api.server import uvicorn_server
from ebs.api.tokens import ApiTokens, hash_token
from ebs.config.holder import ConfigHolder
from ebs.config.loader import parse_config
from ebs.config.model import EbsConfig
from ebs.config.packages import build_package_lists
from ebs.contracts.batch import BatchResult, BatchSettings
from ebs.contracts.collector import CollectorStatus
from ebs.contracts.names import COLLECTOR_WORKFLOW_ID, QUERY_STATUS
from ebs.contracts.search import CONFIG_VERSION_KEY, OUTCOME_KEY, PACKAGES_KEY, PHASE_KEY
from ebs.devstack import waiting
from ebs.workflows.collector import BatchCollector
from ebs.workflows.ledger import ComponentLedger
from tests.api.test_api_workflows import (
    SIGNAL_FINISH,
    SIGNAL_SCRIPT,
    RawhideKoji,
    ScriptedBatch,
    World,
)
from tests.helpers.oidc import ADMIN_GROUP, AUDIENCE, OidcProvider
from tests.helpers.temporal import start_local

TASK_QUEUE = "ebs"
API_TOKEN = "test-token-0123456789abcdef"
API_TOKEN_NAME = "release-bot"
KOJI_WEB = "http://koji.test/koji"
BODHI = "http://bodhi.test"
TEMPORAL_UI = "http://temporal-ui.test"

RAWHIDE_BUILDS = {
    "bash": "bash-5.3.0-2.fc45",
    "glibc": "glibc-2.42-4.fc45",
    "llvm": "llvm-21.1.0-1.fc45",
    "coreutils": "coreutils-9.7-3.fc45",
    "freeipa": "freeipa-4.12.2-1.fc45",
    "python3.14": "python3.14-3.14.0-1.fc45",
    "kernel": "kernel-6.17.0-0.rc1.fc45",
}

CONFIG = """\
configuration:
  koji:
    server: http://127.0.0.1:9/kojihub
    weburl: {koji_web}
    auth: none
    trigger_tag: f45
    build_target: eln
    stable_tag: eln
  bodhi:
    url: {bodhi}/
    auth: none
  control:
    exclude: ['^kernel$']
    ordering: {{'^llvm$': 0, '^glibc$': 10}}
  email: false
  open_id_connect: {oidc}
components:
  overrides:
    bash: {{}}
    glibc: {{}}
    llvm: {{}}
    coreutils: {{}}
    kernel: {{}}
    python3.14: {{}}
    ipa: {{upstream_name: freeipa}}
temporal:
  address: {address}
  task_queue: {task_queue}
  ui_url: {temporal_ui}
timers:
  lull: 60
"""

T = TypeVar("T")


def config_text(address: str, issuer: str | None = None) -> str:
    oidc = "false"
    if issuer:
        oidc = (
            f"{{auth_url: '{issuer}/Authorization', token_endpoint: '{issuer}/Token', "
            f"client_id: {AUDIENCE}, issuer: '{issuer}', userinfo_endpoint: '{issuer}/userinfo', "
            f"admin_groups: [{ADMIN_GROUP}]}}"
        )
    return CONFIG.format(
        koji_web=KOJI_WEB, bodhi=BODHI, oidc=oidc, address=address, task_queue=TASK_QUEUE,
        temporal_ui=TEMPORAL_UI,
    )


async def eventually(
    probe: Callable[[], Awaitable[T]], ok: Callable[[T], bool], timeout: float = 15.0
) -> T:
    """Poll `probe` until `ok` holds on its value (returned); real processes, real
    time. The failure names the last value seen."""
    seen: list[T] = []

    async def check() -> bool:
        seen[:] = [await probe()]
        return ok(seen[0])

    try:
        await waiting.eventually(check, timeout, "condition")
    except TimeoutError:
        raise AssertionError(
            f"condition not met within {timeout} s; last value: {seen[0]!r}") from None
    return seen[0]


@dataclass
class Stack:
    """A Temporal dev server with an ebs worker, and the config that points at it."""

    env: WorkflowEnvironment
    client: Client
    address: str
    world: World
    config: EbsConfig
    config_path: Path
    tokens_path: Path

    async def reset_collector(self, lull: float = 3600.0) -> None:
        """Terminate the collector (and its batch) so the next test starts fresh."""
        self.world.lull = lull
        handle = self.client.get_workflow_handle(COLLECTOR_WORKFLOW_ID)
        try:
            desc = await handle.describe()
            if desc.status == WorkflowExecutionStatus.RUNNING:
                await handle.terminate(reason="test reset")
        except RPCError:
            pass

    async def collector_running(self) -> bool:
        handle = self.client.get_workflow_handle(COLLECTOR_WORKFLOW_ID)
        try:
            return (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
        except RPCError:
            return False

    async def collector_status(self) -> CollectorStatus:
        handle = self.client.get_workflow_handle(COLLECTOR_WORKFLOW_ID)
        status: CollectorStatus = await handle.query(
            QUERY_STATUS, result_type=CollectorStatus
        )
        return status

    async def wait_for_batch(self) -> str:
        """The id of the batch the collector runs (after the lull)."""
        status = await eventually(self.collector_status, lambda s: bool(s.current_batch_id))
        return status.current_batch_id

    async def script_batch(self, batch_id: str, edit: Callable[[BatchResult], None]) -> None:
        handle = self.client.get_workflow_handle(batch_id)
        snapshot: BatchResult = await handle.query(QUERY_STATUS, result_type=BatchResult)
        edit(snapshot)
        await handle.signal(SIGNAL_SCRIPT, snapshot)
        await eventually(
            lambda: handle.query(QUERY_STATUS, result_type=BatchResult),
            lambda s: s == snapshot,
        )

    async def finish_batch(self, batch_id: str, outcome: str) -> None:
        handle = self.client.get_workflow_handle(batch_id)
        await handle.signal(SIGNAL_FINISH, outcome)
        await handle.result()
        # The collector records the batch summary once the child's result arrives.
        await eventually(
            self.collector_status,
            lambda s: any(b.batch_id == batch_id for b in s.recent_batches),
        )


def progress_batch(snapshot: BatchResult) -> None:
    """A realistic mid-batch snapshot: llvm (slice 0) built and filed in Bodhi,
    glibc (slice 10) failed once and building again, the rest still pending
    except bash, which failed for good."""
    snapshot.outcome = "building:slice 10 attempt 2"
    snapshot.side_tags = ["eln-build-side-4242"]
    snapshot.updates = ["FEDORA-ELN-2026-0a1b2c3d4e"]
    for p in snapshot.packages:
        if p.component == "llvm":
            p.state, p.attempts, p.task_ids = "succeeded", 1, [9001]
            p.task_urls = [f"{KOJI_WEB}/taskinfo?taskID=9001"]
            p.nvr, p.build_id = "llvm-21.1.0-1.eln152", 77
            p.update_alias = "FEDORA-ELN-2026-0a1b2c3d4e"
            p.update_url = f"{BODHI}/updates/FEDORA-ELN-2026-0a1b2c3d4e"
        elif p.component == "glibc":
            p.state, p.attempts, p.task_ids = "building", 2, [9002, 9010]
            p.task_urls = [f"{KOJI_WEB}/taskinfo?taskID=9002", f"{KOJI_WEB}/taskinfo?taskID=9010"]
        elif p.component == "bash":
            p.state, p.attempts, p.task_ids = "failed", 2, [9003, 9011]
            p.task_urls = []  # links then come from koji.weburl
            p.reason = "buildArch failed: %check exited 1"


async def make_stack(tmp: Path, issuer: str | None = None) -> AsyncIterator[Stack]:
    env = await start_local(
        search_attributes=[PACKAGES_KEY, PHASE_KEY, OUTCOME_KEY, CONFIG_VERSION_KEY],
        dev_server_log_level="error",
    )
    address = env.client.service_client.config.target_host
    text = config_text(address, issuer)
    config = parse_config(text, "test-config.yaml")
    config_path = tmp / "ebs.yaml"
    config_path.write_text(text)
    tokens_path = tmp / "api-tokens"
    tokens_path.write_text(
        f"# test tokens\n{hash_token(API_TOKEN)} {API_TOKEN_NAME}\n"
        "plain-token-for-ci-0123456789\n"
    )
    lists = build_package_lists({}, config.components.overrides)
    world = World(
        holder=ConfigHolder.fixed(config, lists),
        koji=RawhideKoji({"f45": dict(RAWHIDE_BUILDS), "eln": {}}),
        settings=BatchSettings(
            build_target="eln", stable_tag="eln", trigger_tag="f45",
            ordering=dict(config.configuration.control.ordering), koji_weburl=KOJI_WEB,
            bodhi_url=BODHI, temporal_ui_url=TEMPORAL_UI, config_version="test",
        ),
    )
    worker = Worker(
        env.client,
        task_queue=TASK_QUEUE,
        workflows=[BatchCollector, ScriptedBatch, ComponentLedger],
        activities=world.activities(),
        activity_executor=ThreadPoolExecutor(max_workers=4),
    )
    try:
        async with worker:
            yield Stack(env, env.client, address, world, config, config_path, tokens_path)
    finally:
        await env.shutdown()


def api_app(stack: Stack, **kwargs: Any) -> FastAPI:
    defaults: dict[str, Any] = {
        "client": stack.client,
        "tokens": ApiTokens(stack.tokens_path),
        "query_timeout": 5.0,
        "update_timeout": 30.0,
    }
    return create_app(stack.config, **{**defaults, **kwargs})


def http(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ebs.test")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module", name="stack")
async def stack_fixture(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    async for s in make_stack(tmp_path_factory.mktemp("ebs")):
        yield s


@pytest.fixture(scope="module", name="oidc_stack")
async def oidc_stack_fixture(
    tmp_path_factory: pytest.TempPathFactory, oidc_provider: OidcProvider
) -> AsyncIterator[Stack]:
    async for s in make_stack(tmp_path_factory.mktemp("ebs"), oidc_provider.issuer):
        yield s


@asynccontextmanager
async def served_on_loopback(app: FastAPI) -> AsyncIterator[str]:
    """`app` under uvicorn on a free loopback port, for the block; yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn_server(app, log_level="warning")
    task = asyncio.create_task(server.serve(sockets=[sock]))

    async def started() -> bool:
        return bool(server.started)

    await eventually(started, bool)  # bounded: a server that never starts fails here
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()

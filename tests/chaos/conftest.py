"""Fixtures of the chaos suite: a Temporal dev server per module (a child
process, killable) and the `chaos` row recorder (see record.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator, Iterator
from typing import Any

import pytest

from tests.chaos.harness import TemporalServer
from tests.chaos.record import Rows

# Namespaces for scenarios that run the BatchCollector (its workflow id is fixed,
# so each such scenario needs a namespace of its own).
NAMESPACES = [f"chaos-{i}" for i in range(1, 9)]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: Any
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Remember the test's outcome for the `chaos` fixture's teardown."""
    report = yield
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        item.chaos_outcome = (  # type: ignore[attr-defined]
            "xfailed" if hasattr(report, "wasxfail") and report.outcome == "skipped"
            else report.outcome
        )
    return report


@pytest.fixture
def chaos(request: pytest.FixtureRequest) -> Iterator[Rows]:
    rows = Rows(request.node.nodeid, slow=request.node.get_closest_marker("slow") is not None)
    yield rows
    rows.finish(getattr(request.node, "chaos_outcome", "failed"))


@pytest.fixture(scope="module")
async def temporal(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[TemporalServer]:
    server = TemporalServer(tmp_path_factory.mktemp("temporal"), namespaces=NAMESPACES)
    await server.start()
    yield server
    server.stop()

"""Fixtures for tests against the real Koji hub (and, from rs-bodhi, Bodhi).

* ``koji_stack`` (session): a KojiStack (tests/realstack/koji_stack.py) —
  private PostgreSQL, the real hub on a free port, the stand-in builder and
  kojira, Fedora-shaped tags and Rawhide builds. Skipped, with one line on
  EBS_KOJI_HUB_SRC, only where no hub source exists; where it exists a stack
  that cannot start is an error, never a skip.
* ``koji_stack_fresh`` (function): the same stack, with the builder's scripts
  reset and builder/kojira resumed, for tests that script them.
* ``unique`` (function): a short name unique to the test (package names,
  side-tag keys).

Every test under tests/realstack/ carries the ``realstack`` marker.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.realstack.hubenv import SKIP_REASON, hub_source
from tests.realstack.koji_stack import KojiStack

HERE = Path(__file__).parent
_counter = itertools.count(1)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.realstack)


@pytest.fixture(scope="session")
def koji_stack() -> Iterator[KojiStack]:
    source = hub_source()
    if source is None:
        pytest.skip(SKIP_REASON)
    stack = KojiStack.start(source)
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def koji_stack_fresh(koji_stack: KojiStack) -> Iterator[KojiStack]:
    koji_stack.builder.resume()
    koji_stack.kojira.resume()
    yield koji_stack
    for package in list(koji_stack.builder._scripts):  # noqa: SLF001
        koji_stack.builder.release(package)
    koji_stack.builder.resume()
    koji_stack.kojira.resume()


@pytest.fixture
def unique() -> str:
    return f"t{os.getpid() % 1000}x{next(_counter)}"

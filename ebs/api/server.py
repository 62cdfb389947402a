"""`ebs api`: the FastAPI app under uvicorn, configured from an ebs config file."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Sequence

import uvicorn
from fastapi import FastAPI
from temporalio.client import Client
from temporalio.runtime import Runtime

from ebs.api.app import create_app
from ebs.api.metrics import prometheus_runtime
from ebs.api.tokens import ApiTokens
from ebs.config.model import EbsConfig
from ebs.temporal_client import connect

log = logging.getLogger(__name__)


class UnsafeOptions(ValueError):
    """Options that would expose the API (exit status 2)."""


def is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_anonymous_writes(host: str, allow_anonymous_writes: bool) -> None:
    """--allow-anonymous-writes only on a loopback address; UnsafeOptions otherwise."""
    if allow_anonymous_writes and not is_loopback(host):
        raise UnsafeOptions(
            f"--allow-anonymous-writes needs a loopback --host (127.0.0.1, ::1), not {host!r}"
        )


def build_app(
    cfg: EbsConfig,
    *,
    api_tokens_file: str | None = None,
    allow_anonymous_writes: bool = False,
    sdk_metrics: bool = True,
    metrics_from: Sequence[str] = (),
    oidc_client_secret_file: str | None = None,
) -> FastAPI:
    """The API as `ebs api` runs it: its own Temporal client (with SDK metrics)."""
    tokens = ApiTokens(api_tokens_file) if api_tokens_file else None
    sdk_url = None
    if sdk_metrics:
        runtime, sdk_url = prometheus_runtime()
        # ebs.temporal_client.connect() uses the default runtime: make it this one.
        Runtime.set_default(runtime, error_if_already_set=False)

    async def connect_client() -> Client:
        return await connect(cfg.temporal)

    if allow_anonymous_writes:
        log.warning("write endpoints accept anonymous requests (--allow-anonymous-writes)")
    return create_app(
        cfg,
        connect=connect_client,
        tokens=tokens,
        allow_anonymous_writes=allow_anonymous_writes,
        sdk_metrics_url=sdk_url,
        metrics_from=metrics_from,
        oidc_client_secret_file=oidc_client_secret_file,
    )


def uvicorn_server(
    app: FastAPI, host: str = "127.0.0.1", port: int = 8080, log_level: str = "info"
) -> uvicorn.Server:
    """A uvicorn server for the app. Inside a running event loop (`ebs dev`,
    tests) use `await server.serve(sockets=[bound_socket])` and stop it with
    `server.should_exit = True`."""
    return uvicorn.Server(
        uvicorn.Config(app, host=host, port=port, log_level=log_level, proxy_headers=True)
    )


def serve(
    cfg: EbsConfig,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    api_tokens_file: str | None = None,
    allow_anonymous_writes: bool = False,
    sdk_metrics: bool = True,
    metrics_from: Sequence[str] = (),
    log_level: str = "info",
    oidc_client_secret_file: str | None = None,
) -> None:
    check_anonymous_writes(host, allow_anonymous_writes)
    app = build_app(
        cfg,
        api_tokens_file=api_tokens_file,
        allow_anonymous_writes=allow_anonymous_writes,
        sdk_metrics=sdk_metrics,
        metrics_from=metrics_from,
        oidc_client_secret_file=oidc_client_secret_file,
    )
    uvicorn_server(app, host, port, log_level).run()

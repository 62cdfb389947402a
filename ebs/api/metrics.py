"""GET /metrics: ebs's own Prometheus metrics plus the Temporal SDK's.

Three sources end up in one text exposition:
- the process registry (ebs.metrics: batches, packages, Koji calls, bridge
  messages...; counters move in the process that does the work, so `ebs dev`
  shows them all and a split deployment scrapes the worker and bridge too);
- gauges refreshed at scrape time from Temporal: the collector's queue length
  and the number of RebuildBatch executions per status (visibility count), so
  the API alone already shows how many batches ran, failed or run now;
- the Temporal SDK's metrics of this process's client (request counts and
  latencies), exported by a temporalio Runtime with a PrometheusConfig on a
  loopback port and appended here.
"""

from __future__ import annotations

import logging
import socket

import httpx
from prometheus_client import REGISTRY, CollectorRegistry, Gauge, generate_latest
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from ebs import metrics as m
from ebs.api.control import Control, TemporalUnavailable

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def prometheus_runtime(host: str = "127.0.0.1") -> tuple[Runtime, str]:
    """A Temporal runtime exporting SDK metrics on a free loopback port, and its URL."""
    with socket.socket() as s:
        s.bind((host, 0))
        port = s.getsockname()[1]
    runtime = Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(bind_address=f"{host}:{port}", durations_as_seconds=True)
        )
    )
    return runtime, f"http://{host}:{port}/metrics"


class MetricsExporter:
    def __init__(self, sdk_metrics_url: str | None = None) -> None:
        self.sdk_metrics_url = sdk_metrics_url
        self.registry = CollectorRegistry(auto_describe=True)
        self.batches = Gauge(
            "ebs_batches_by_status",
            "RebuildBatch executions known to Temporal visibility, by execution status",
            ["status"],
            registry=self.registry,
        )

    async def _refresh(self, control: Control) -> None:
        try:
            info = await control.collector_info()
            if info.state is not None:
                m.QUEUE_LENGTH.set(len(info.state.queued))
            counts = await control.batch_counts()
        except TemporalUnavailable as err:
            log.warning("metrics: %s", err)
            return
        self.batches.clear()
        for status, count in counts.items():
            self.batches.labels(status=status).set(count)

    async def _sdk_metrics(self) -> bytes:
        if not self.sdk_metrics_url:
            return b""
        try:
            async with httpx.AsyncClient(timeout=2.0) as http:
                resp = await http.get(self.sdk_metrics_url)
            resp.raise_for_status()
        except httpx.HTTPError as err:
            log.warning("metrics: Temporal SDK metrics unavailable: %s", err)
            return b""
        body = resp.content
        return body if body.endswith(b"\n") or not body else body + b"\n"

    async def render(self, control: Control | None) -> bytes:
        if control is not None:
            await self._refresh(control)
        sdk = await self._sdk_metrics()
        return generate_latest(REGISTRY) + generate_latest(self.registry) + sdk

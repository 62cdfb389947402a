"""GET /metrics: figures from Temporal at scrape time, plus the Temporal SDK's.

- From the collector's status query: ebs_queue_length and the running totals
  it keeps across restarts and continue-as-new (ebs_batches_started_total,
  ebs_batches_finished_total{outcome}, ebs_packages_built_total,
  ebs_packages_failed_total); absent while the collector cannot answer.
- From visibility: ebs_batches_by_status, RebuildBatch executions per status.
- This process's registry (Python runtime metrics). Koji, Bodhi, email and bus
  counters move in the worker and the bridge, which serve them on their own
  --metrics-port: scrape those, or name them with `ebs api --metrics-from URL`
  and their ebs_* families are appended here too (`ebs dev` does).
- The Temporal SDK's metrics of the API's client, exported by a temporalio
  Runtime with a PrometheusConfig on a loopback port and appended here.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Iterator, Sequence

import httpx
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from ebs.api.control import Control, TemporalUnavailable
from ebs.contracts.collector import CollectorStatus

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


class TemporalFigures(Collector):
    """The figures of the last scrape's Temporal answers, as metric families."""

    def __init__(self) -> None:
        self.state: CollectorStatus | None = None
        self.batch_counts: dict[str, int] | None = None

    def collect(self) -> Iterator[Metric]:
        queue = GaugeMetricFamily("ebs_queue_length", "Components queued for the next batch")
        started = CounterMetricFamily("ebs_batches_started", "Rebuild batches started")
        finished = CounterMetricFamily(
            "ebs_batches_finished", "Rebuild batches finished, by outcome", labels=["outcome"]
        )
        built = CounterMetricFamily("ebs_packages_built", "Packages rebuilt successfully")
        failed = CounterMetricFamily("ebs_packages_failed", "Packages whose rebuild failed")
        by_status = GaugeMetricFamily(
            "ebs_batches_by_status",
            "RebuildBatch executions known to Temporal visibility, by execution status",
            labels=["status"],
        )
        if self.state is not None:
            totals = self.state.totals
            queue.add_metric([], self.state.queue_length)
            started.add_metric([], totals.batches_started)
            for outcome, count in sorted(totals.batches_finished.items()):
                finished.add_metric([outcome], count)
            built.add_metric([], totals.packages_built)
            failed.add_metric([], totals.packages_failed)
        for status, count in sorted((self.batch_counts or {}).items()):
            by_status.add_metric([status], count)
        yield from (queue, started, finished, built, failed, by_status)


class PeerFigures(Collector):
    """The ebs_* families of the last scrape of the worker's and the bridge's
    metrics endpoints, merged by name (a sample seen twice is kept once)."""

    def __init__(self) -> None:
        self.families: list[Metric] = []

    def collect(self) -> Iterator[Metric]:
        yield from self.families

    @staticmethod
    def merge(texts: Sequence[str]) -> list[Metric]:
        merged: dict[str, Metric] = {}
        seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
        for text in texts:
            for family in text_string_to_metric_families(text):
                if not family.name.startswith("ebs_"):
                    continue  # process and runtime metrics are each process's own
                into = merged.setdefault(
                    family.name, Metric(family.name, family.documentation, family.type)
                )
                for sample in family.samples:
                    key = (sample.name, tuple(sorted(sample.labels.items())))
                    if key not in seen:
                        seen.add(key)
                        into.samples.append(sample)
        return list(merged.values())


class MetricsExporter:
    def __init__(self, sdk_metrics_url: str | None = None,
                 peer_urls: Sequence[str] = ()) -> None:
        self.sdk_metrics_url = sdk_metrics_url
        self.peer_urls = list(peer_urls)
        self.figures = TemporalFigures()
        self.peers = PeerFigures()
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(self.figures)
        self.registry.register(self.peers)

    @staticmethod
    async def _ask(
        control: Control | None,
    ) -> tuple[CollectorStatus | None, dict[str, int] | None]:
        if control is None:
            return None, None
        try:
            info = await control.collector_info()
            return info.state, await control.batch_counts()
        except TemporalUnavailable as err:
            log.warning("metrics: %s", err)
            return None, None

    @staticmethod
    async def _fetch(url: str | None, what: str) -> bytes:
        if not url:
            return b""
        try:
            async with httpx.AsyncClient(timeout=2.0) as http:
                resp = await http.get(url)
            resp.raise_for_status()
        except httpx.HTTPError as err:
            log.warning("metrics: %s at %s unavailable: %s", what, url, err)
            return b""
        body = resp.content
        return body if body.endswith(b"\n") or not body else body + b"\n"

    async def render(self, control: Control | None) -> bytes:
        state, counts = await self._ask(control)
        sdk, *peers = await asyncio.gather(
            self._fetch(self.sdk_metrics_url, "Temporal SDK metrics"),
            *(self._fetch(url, "metrics") for url in self.peer_urls),
        )
        try:
            families = PeerFigures.merge([p.decode() for p in peers])
        except ValueError as err:  # not Prometheus text
            log.warning("metrics: unreadable answer from --metrics-from: %s", err)
            families = []
        # No await from here on: concurrent scrapes cannot mix their answers.
        self.figures.state, self.figures.batch_counts = state, counts
        self.peers.families = families
        # A family a peer sends replaces this process's copy of it (the API has
        # the same ebs.metrics registered, never moved).
        own = _Without(REGISTRY, {f.name for f in families})
        return generate_latest(own) + generate_latest(self.registry) + sdk


class _Without:
    """A registry's families but the named ones, for generate_latest."""

    def __init__(self, registry: CollectorRegistry, names: set[str]) -> None:
        self._registry, self._names = registry, names

    def collect(self) -> Iterator[Metric]:
        return (m for m in self._registry.collect() if m.name not in self._names)

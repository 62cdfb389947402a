"""Prometheus metrics of ebs, one registry per process (worker, bridge, API).

Each process exposes its own: the API serves /metrics, the worker and the
bridge can serve theirs on a port of their own (see their --metrics-port).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

BATCHES_STARTED = Counter("ebs_batches_started", "Rebuild batches started")
BATCHES_FINISHED = Counter(
    "ebs_batches_finished", "Rebuild batches finished, by outcome", ["outcome"]
)
PACKAGES_BUILT = Counter("ebs_packages_built", "Packages rebuilt successfully")
PACKAGES_FAILED = Counter("ebs_packages_failed", "Packages whose rebuild failed")
QUEUE_LENGTH = Gauge("ebs_queue_length", "Components queued for the next batch")

BRIDGE_MESSAGES = Counter(
    "ebs_bridge_messages", "Bus messages seen by the bridge, by topic kind and outcome",
    ["kind", "outcome"],
)

KOJI_CALLS = Counter("ebs_koji_calls", "Koji hub HTTP requests, by method", ["method"])
KOJI_LATENCY = Histogram(
    "ebs_koji_call_seconds", "Koji hub request latency", ["method"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
BODHI_CALLS = Counter("ebs_bodhi_calls", "Bodhi requests, by operation", ["operation"])

EMAILS_SENT = Counter("ebs_emails_sent", "Emails sent, by kind", ["kind"])
EMAILS_FAILED = Counter("ebs_emails_failed", "Emails that could not be sent, by kind", ["kind"])

"""Prometheus metrics that move in the process doing the work.

Koji/Bodhi calls and emails move in the worker, bus messages in the bridge;
each serves its own with --metrics-port. Batch and package totals and the queue
length come from the collector workflow instead: the API's /metrics exports
them at scrape time (ebs.api.metrics).
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

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

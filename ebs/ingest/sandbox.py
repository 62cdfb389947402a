"""fedora-messaging configuration for a broker on this machine.

The shipped ebs/ingest/conf/sandbox.toml with its broker URL, queue, consumer
count and ebs log level changed: what `ebs dev`, the tests and the benchmarks
give `ebs ingest`, so they all run the configuration users get.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

SANDBOX_TOML = Path(__file__).parent / "conf" / "sandbox.toml"
SANDBOX_QUEUE = "ebs-sandbox"
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _replace(text: str, pattern: str, line: str) -> str:
    new, n = re.subn(pattern, line.replace("\\", r"\\"), text, count=1, flags=re.MULTILINE)
    if n != 1:
        raise ValueError(f"{SANDBOX_TOML} has no line matching {pattern!r}")
    return new


def sandbox_messaging_config(
    amqp_url: str,
    *,
    queue: str = SANDBOX_QUEUE,
    consumers: int | None = None,
    ebs_log_level: str | None = None,
    app: str | None = None,
) -> str:
    """The sandbox TOML for `amqp_url`, checked to parse and to say what was asked."""
    if not _BARE_KEY.fullmatch(queue):
        raise ValueError(f"queue name {queue!r}: letters, digits, '-' and '_' only")
    text = SANDBOX_TOML.read_text()
    text = _replace(text, r'^amqp_url = ".*"$', f'amqp_url = "{amqp_url}"')
    text = text.replace(f"[queues.{SANDBOX_QUEUE}]", f"[queues.{queue}]")
    text = text.replace(f'queue = "{SANDBOX_QUEUE}"', f'queue = "{queue}"')
    if consumers is not None:
        text = _replace(text, r"^consumers = \d+$", f"consumers = {int(consumers)}")
    if ebs_log_level is not None:
        text = _replace(text, r'(?<=\[log_config\.loggers\.ebs\]\n)level = ".*"$',
                        f'level = "{ebs_log_level.upper()}"')
    if app is not None:
        text = _replace(text, r'^app = ".*"$', f'app = "{app}"')
    parsed = tomllib.loads(text)
    assert parsed["amqp_url"] == amqp_url and list(parsed["queues"]) == [queue]
    assert all(b["queue"] == queue for b in parsed["bindings"])
    return text

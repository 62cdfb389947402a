"""`ebs dev` watching its own broker for ebs's messages (ebs-messages topics):
each is printed and appended to a JSON-lines file the status page shows."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

DEV_TOPIC_PREFIX = "org.fedoraproject.dev"
QUEUE = "ebs-dev-messages"

log = logging.getLogger(__name__)


def publish_toml(amqp_url: str) -> str:
    """fedora-messaging configuration for the dev worker's publishing."""
    return (
        "# ebs dev: the worker publishes ebs's messages to the private broker\n"
        f'amqp_url = "{amqp_url}"\n'
        'publish_exchange = "amq.topic"\n'
        f'topic_prefix = "{DEV_TOPIC_PREFIX}"\n'
    )


class BusWatch:
    """A queue of ebs's messages on the private broker, read with basic_get."""

    def __init__(self, amqp_url: str, record: Path) -> None:
        import pika

        self.record = record
        self._conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
        self._ch = self._conn.channel()
        self._ch.queue_declare(QUEUE, exclusive=True)  # gone with this run
        self._ch.queue_bind(QUEUE, "amq.topic", routing_key=f"{DEV_TOPIC_PREFIX}.ebs.#")

    def poll(self) -> list[str]:
        """New messages as printable lines (recorded in `record` as well)."""
        from fedora_messaging.message import get_message

        lines: list[str] = []
        while True:
            method, props, body = self._ch.basic_get(QUEUE, auto_ack=True)
            if method is None:
                return lines
            try:
                msg = get_message(method.routing_key, props, body)
                entry: dict[str, Any] = {
                    "id": msg.id, "topic": msg.topic, "summary": msg.summary,
                    "sent_at": str(msg._headers.get("sent-at", "")), "url": msg.url or "",
                }
            except Exception as err:  # shown, not fatal: a dev tool
                entry = {"id": getattr(props, "message_id", ""), "topic": method.routing_key,
                         "summary": f"(invalid message: {err})", "sent_at": "", "url": ""}
            with self.record.open("a") as out:
                out.write(json.dumps(entry) + "\n")
            lines.append(f"bus: {entry['topic']}: {entry['summary']}")

    def close(self) -> None:
        try:
            self._conn.close()
        except Exception:  # the broker may be gone already
            pass


def recent(record: str | Path, limit: int = 20) -> list[dict[str, Any]]:
    """The last `limit` recorded messages, newest first."""
    try:
        lines = Path(record).read_text().splitlines()[-limit:]
    except OSError:
        return []
    out = []
    for line in reversed(lines):
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out

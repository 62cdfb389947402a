"""The ebs-messages schema package (messages/): entry points, schemas, the
properties FMN uses; and what the Announcer makes of a batch's packages."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from ebs_messages import MESSAGE_CLASSES
from fedora_messaging.exceptions import ValidationError
from fedora_messaging.message import WARNING, get_class, get_name

from ebs.api.html import render_status
from ebs.api.models import CollectorView, StatusResponse
from ebs.bus import ebs_message
from ebs.contracts.bus import batch_url, message_id
from ebs.devstack.messages import recent

BASE = {"batch_id": "ebs-batch-1", "batch_url": "http://ui/namespaces/default/workflows/b1",
        "agent": "releng-bot"}
PKG = {**BASE, "component": "bash", "rawhide_nvr": "bash-5.3-1.fc45",
       "eln_nvr": "bash-5.3-1.eln152", "task_ids": [7],
       "task_urls": ["https://koji/taskinfo?taskID=7"], "attempts": 1, "scratch": False}
UPDATE = {**BASE, "alias": "FEDORA-ELN-2026-1", "url": "https://bodhi/updates/FEDORA-ELN-2026-1",
          "builds": ["bash-5.3-1.eln152", "zsh-5.9-1.eln152"], "components": ["zsh", "bash"]}
BODIES: dict[str, dict[str, Any]] = {
    "ebs.batch.started": {**BASE, "packages": [{"component": "bash",
                                                "rawhide_nvr": "bash-5.3-1.fc45"}],
                          "scratch": False, "started_at": "2026-01-01T00:00:00+00:00"},
    "ebs.batch.finished": {**BASE, "outcome": "partial", "packages": ["bash", "rust"],
                           "built": ["bash"], "failed": ["rust"],
                           "updates": [{"alias": "FEDORA-ELN-2026-1", "url": "u"}],
                           "started_at": "s", "finished_at": "f", "error": ""},
    "ebs.package.built": PKG,
    "ebs.package.failed": {**PKG, "eln_nvr": "", "reason": "buildArch failed"},
    "ebs.update.filed": UPDATE,
    "ebs.update.stable": UPDATE,
    "ebs.update.unstable": {**UPDATE, "pending": ["bash-5.3-1.eln152"],
                            "reason": "not in eln after 1209600 s"},
}


def test_every_topic_has_a_class_registered_under_the_entry_point() -> None:
    assert set(MESSAGE_CLASSES) == set(BODIES)
    for topic, cls in MESSAGE_CLASSES.items():
        name = get_name(cls)  # the fedora.messages entry point name
        assert get_class(name) is cls, topic
        assert cls.topic == topic


@pytest.mark.parametrize("topic", sorted(BODIES))
def test_each_message_validates_and_has_what_fmn_needs(topic: str) -> None:
    msg = ebs_message(topic, BODIES[topic], message_id("ebs-batch-1", topic))
    assert msg.id == message_id("ebs-batch-1", topic)
    assert msg.topic == topic  # the deployment's topic_prefix is added on publishing
    assert msg.app_name == "ebs" and msg.agent_name == "releng-bot"
    assert msg.usernames == ["releng-bot"]
    assert msg.packages and all(isinstance(p, str) for p in msg.packages)
    assert msg.summary and str(msg).startswith(msg.summary)
    assert msg.url
    with pytest.raises(ValidationError):
        ebs_message(topic, {**BODIES[topic], "batch_id": 5})
    missing = dict(BODIES[topic])
    missing.pop("batch_url")
    with pytest.raises(ValidationError):
        ebs_message(topic, missing)


def test_summaries_say_what_happened_to_which_package() -> None:
    failed = ebs_message("ebs.package.failed", BODIES["ebs.package.failed"])
    assert failed.summary == "ebs failed to rebuild bash-5.3-1.fc45 for ELN: buildArch failed"
    assert failed.severity == WARNING and failed.packages == ["bash"]
    built = ebs_message("ebs.package.built", PKG)
    assert built.summary == "ebs rebuilt bash-5.3-1.fc45 for ELN as bash-5.3-1.eln152"
    assert "Koji task: https://koji/taskinfo?taskID=7" in str(built)
    update = ebs_message("ebs.update.filed", UPDATE)
    assert update.packages == ["bash", "zsh"]
    assert update.summary == "ebs filed Bodhi update FEDORA-ELN-2026-1 for 2 ELN rebuild(s)"
    finished = ebs_message("ebs.batch.finished", BODIES["ebs.batch.finished"])
    assert finished.summary == (
        "ebs finished ELN rebuild batch ebs-batch-1: partial (1 built, 1 failed: rust)")
    with pytest.raises(ValueError, match="no topic"):
        ebs_message("ebs.nope", BASE)


def test_message_ids_depend_on_batch_and_event_only() -> None:
    assert message_id("b1", "package.built/bash") == message_id("b1", "package.built/bash")
    assert message_id("b1", "package.built/bash") != message_id("b2", "package.built/bash")
    assert message_id("b1", "package.built/bash") != message_id("b1", "package.failed/bash")
    assert batch_url("http://ui/", "default", "ebs-batch-1") == (
        "http://ui/namespaces/default/workflows/ebs-batch-1")
    assert batch_url("", "default", "x") == ""


def test_the_status_page_lists_recorded_bus_messages(tmp_path: Path) -> None:
    record = tmp_path / "messages.jsonl"
    assert recent(record) == []
    entries = [
        {"id": "1", "topic": "org.fedoraproject.dev.ebs.batch.started",
         "summary": "ebs started ELN rebuild batch b of 1 package(s): rust", "sent_at": "t0",
         "url": ""},
        {"id": "2", "topic": "org.fedoraproject.dev.ebs.package.failed",
         "summary": "ebs failed to rebuild rust-1-1.fc45 for ELN: boom", "sent_at": "t1",
         "url": "https://koji/taskinfo?taskID=9"},
    ]
    record.write_text("".join(json.dumps(e) + "\n" for e in entries))
    assert [m["id"] for m in recent(record)] == ["2", "1"]  # newest first
    status = StatusResponse(generated_at=datetime.now(UTC),
                            collector=CollectorView(exists=True, answered=True))
    page = render_status(status, 30, recent(record))
    assert 'id="messages"' in page and "ebs failed to rebuild rust-1-1.fc45" in page
    assert 'href="https://koji/taskinfo?taskID=9"' in page
    assert 'id="messages"' not in render_status(status, 30)

"""What one bus message means to ebs: a pure function, no I/O.

`decide(message, rules)` turns a Koji message into one of

* `Drop(kind, reason, malformed)`: irrelevant (most traffic) or malformed;
* `SignalTag(TagEvent)`: an eligible build tagged into the trigger tag;
* `SignalTask(workflow_id, TaskStateEvent)`: a build task ebs submitted
  changed state (buildsys.task.state.change, sent for scratch builds) or its
  build finished (buildsys.build.state.change, for draft and real builds); the
  attempt workflow waiting on it is named in the build request's
  `custom_user_metadata` (`ebs_workflow_id`). Anyone can put that there, so
  it must name a build attempt (never the collector or a batch), with
  `koji.username` set only that user's tasks count, and the attempt accepts a
  message only for a task id it submitted itself (ebs.workflows.attempt): so
  without `koji.username` task messages still spare the 5-minute poll;
* `SignalRepo(RepoEvent)`: a repo event for a side tag; which batch waits on
  it is looked up on the Temporal side (the collector's routing query).

Every event id is the bus message id, so a redelivered message is the same
event and the workflows drop the duplicate. It never raises: anything it cannot
read is `Drop(malformed=True)`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import jsonschema
import jsonschema.exceptions

from ebs.bus import (
    KOJI_MESSAGE_CLASSES,
    TOPIC_BUILD_STATE,
    TOPIC_REPO_DONE,
    TOPIC_REPO_INIT,
    TOPIC_TAG,
    TOPIC_TASK_STATE,
    koji_topic,
)
from ebs.contracts.events import RepoEvent, TagEvent, TaskStateEvent
from ebs.contracts.koji import KojiTaskState

# custom_user_metadata key ebs puts in every build it submits.
WORKFLOW_ID_KEY = "ebs_workflow_id"
# koji.TASK_STATES names.
TASK_STATES = frozenset(KojiTaskState)
# Koji's sidetag plugin names side tags `<base tag>-side-<id>`.
SIDE_TAG = re.compile(r"-side-\d+$")
MAX_WORKFLOW_ID = 1000  # Temporal's default limit on id length
# The workflow ids ebs.workflows.attempt.attempt_workflow_id makes.
ATTEMPT_ID = re.compile(r"-slice-?\d+-attempt\d+-chunk\d+$")
MAX_NAME = 255

KIND_TAG = "tag"
KIND_TASK = "task"
KIND_REPO = "repo"
KIND_OTHER = "other"

# koji.BUILD_STATES -> the state of the build task it stands for. A build that
# is still BUILDING (0) or was DELETED (2) says nothing new about its task.
BUILD_TO_TASK_STATE = {
    1: KojiTaskState.CLOSED, 3: KojiTaskState.FAILED, 4: KojiTaskState.CANCELED,
}

_KINDS = {
    TOPIC_TAG: KIND_TAG,
    TOPIC_TASK_STATE: KIND_TASK,
    TOPIC_BUILD_STATE: KIND_TASK,
    TOPIC_REPO_INIT: KIND_REPO,
    TOPIC_REPO_DONE: KIND_REPO,
}


def kind_of(topic: str) -> str:
    """tag | task | repo | other, for a routing key (the metrics' `kind` label)."""
    return _KINDS.get(koji_topic(topic) or "", KIND_OTHER)


class Rules(Protocol):
    """What the decision needs from the configuration (see ebs.ingest.rules)."""

    @property
    def trigger_tag(self) -> str: ...

    @property
    def koji_user(self) -> str | None: ...

    def is_eligible(self, component: str) -> bool: ...

    def eln_name(self, component: str) -> str | None: ...


@dataclass(frozen=True)
class Incoming:
    """A received message, reduced to what the decision reads."""

    topic: str  # the routing key, e.g. org.fedoraproject.prod.buildsys.tag
    message_id: str | None
    body: Any
    sent_at: str | None = None  # the `sent-at` header (ISO 8601), if any
    # fedora-messaging already validated the body with the Koji class of this topic
    schema_checked: bool = False

    @classmethod
    def from_message(cls, msg: Any) -> Incoming:
        """From a fedora_messaging Message (which the library validated with
        the class its schema header names)."""
        headers = getattr(msg, "_headers", None) or {}
        sent_at = headers.get("sent-at") if isinstance(headers, Mapping) else None
        topic = str(msg.topic or "")
        expected = KOJI_MESSAGE_CLASSES.get(koji_topic(topic) or "")
        return cls(
            topic=topic,
            message_id=msg.id,
            body=msg.body,
            sent_at=sent_at if isinstance(sent_at, str) else None,
            schema_checked=expected is not None and type(msg) is expected,
        )


@dataclass(frozen=True)
class Drop:
    kind: str
    reason: str
    malformed: bool = False


@dataclass(frozen=True)
class SignalTag:
    event: TagEvent
    kind: str = KIND_TAG


@dataclass(frozen=True)
class SignalTask:
    workflow_id: str
    event: TaskStateEvent
    kind: str = KIND_TASK


@dataclass(frozen=True)
class SignalRepo:
    event: RepoEvent
    kind: str = KIND_REPO


Decision = Drop | SignalTag | SignalTask | SignalRepo


class _Malformed(Exception):
    pass


_validators: dict[str, Any] = {}


def _validator(topic: str) -> Any:
    validator = _validators.get(topic)
    if validator is None:
        schema = KOJI_MESSAGE_CLASSES[topic].body_schema
        validator = jsonschema.validators.validator_for(schema)(schema)
        _validators[topic] = validator
    return validator


def _check_schema(topic: str, body: Any) -> None:
    """The Koji body schema of `topic`: the library checks it only when the
    publisher set the schema header, so a body without one is checked here."""
    if not isinstance(body, dict):
        raise _Malformed(f"body is a {type(body).__name__}, not an object")
    error = jsonschema.exceptions.best_match(_validator(topic).iter_errors(body))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "body"
        raise _Malformed(f"schema: {where}: {_short(error.message)}")


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _name(body: Mapping[str, Any], key: str, *, required: bool = True) -> str:
    value = body.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value or len(value) > MAX_NAME or value != value.strip():
        raise _Malformed(f"{key}: expected a non-empty name, got {_short(repr(value), 60)}")
    return value


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Malformed(f"{what}: expected an integer, got {_short(repr(value), 60)}")
    if isinstance(value, float) and not value.is_integer():
        raise _Malformed(f"{what}: expected an integer, got {value!r}")
    if not 0 <= value < 2**63:  # Koji ids are positive database keys
        raise _Malformed(f"{what}: out of range: {_short(repr(value), 60)}")
    return int(value)


def event_id(msg: Incoming) -> str:
    """The message id; for a message without one (a misbehaving publisher), a
    digest of topic and body, so its redeliveries still share one id."""
    if isinstance(msg.message_id, str) and msg.message_id.strip():
        return msg.message_id.strip()
    try:
        canonical = json.dumps(msg.body, sort_keys=True, default=repr)
    except (TypeError, ValueError):
        canonical = repr(msg.body)
    digest = hashlib.sha256(f"{msg.topic}\n{canonical}".encode("utf-8", "replace")).hexdigest()
    return f"sha256:{digest[:32]}"


def _sent_at(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except (ValueError, OverflowError, OSError):
        return None


def decide(msg: Incoming, rules: Rules) -> Decision:
    topic = koji_topic(msg.topic) if isinstance(msg.topic, str) else None
    kind = _KINDS.get(topic or "", KIND_OTHER)
    if topic is None or kind == KIND_OTHER:
        return Drop(kind, f"topic {_short(repr(msg.topic), 80)} is not one ebs follows")
    try:
        if not msg.schema_checked:
            _check_schema(topic, msg.body)
        if kind == KIND_TAG:
            return _decide_tag(msg, rules)
        if topic == TOPIC_BUILD_STATE:
            return _decide_build(msg, rules)
        if kind == KIND_TASK:
            return _decide_task(msg, rules)
        return _decide_repo(msg, topic)
    except _Malformed as err:
        return Drop(kind, str(err), malformed=True)


def _decide_tag(msg: Incoming, rules: Rules) -> Decision:
    body = msg.body
    tag = body.get("tag")
    if tag != rules.trigger_tag:
        return Drop(KIND_TAG, f"tag {_short(repr(tag), 80)} is not the trigger tag")
    component = _name(body, "name")
    version = _name(body, "version")
    release = _name(body, "release")
    if not rules.is_eligible(component):
        return Drop(KIND_TAG, f"{component} is not eligible")
    build_id = body.get("build_id")
    eln_name = rules.eln_name(component)
    return SignalTag(
        TagEvent(
            component=component,
            nvr=f"{component}-{version}-{release}",
            build_id=0 if build_id is None else _int(build_id, "build_id"),
            tag=tag,
            event_id=event_id(msg),
            tagged_at=_sent_at(msg.sent_at),
            eln_name=eln_name if eln_name and eln_name != component else "",
        )
    )


def _workflow_id(request: Any) -> str | None:
    """The attempt workflow named in a build request's custom_user_metadata."""
    if not isinstance(request, list) or len(request) < 3 or not isinstance(request[2], dict):
        return None
    metadata = request[2].get("custom_user_metadata")
    if not isinstance(metadata, dict) or WORKFLOW_ID_KEY not in metadata:
        return None
    workflow_id = metadata[WORKFLOW_ID_KEY]
    if (
        not isinstance(workflow_id, str)
        or not workflow_id.strip()
        or len(workflow_id) > MAX_WORKFLOW_ID
    ):
        raise _Malformed(f"{WORKFLOW_ID_KEY}: not a workflow id: {_short(repr(workflow_id), 60)}")
    return workflow_id


def _decide_task(msg: Incoming, rules: Rules) -> Decision:
    body = msg.body
    if body.get("method") != "build":
        return Drop(KIND_TASK, f"method {_short(repr(body.get('method')), 40)} is not build")
    if rules.koji_user and body.get("owner") != rules.koji_user:
        return Drop(KIND_TASK, f"task owner {_short(repr(body.get('owner')), 60)} is not ebs")
    info = body["info"]
    workflow_id = _workflow_id(info.get("request") if isinstance(info, dict) else None)
    if workflow_id is None:
        return Drop(KIND_TASK, f"build request has no {WORKFLOW_ID_KEY}")
    if not ATTEMPT_ID.search(workflow_id):
        return _not_an_attempt(workflow_id)
    state = body.get("new")
    if state not in TASK_STATES:
        raise _Malformed(f"new: not a task state: {_short(repr(state), 40)}")
    task_id = _int(body.get("id"), "id")
    return SignalTask(
        workflow_id, TaskStateEvent(task_id=task_id, state=state, event_id=event_id(msg))
    )


def _decide_build(msg: Incoming, rules: Rules) -> Decision:
    """A draft or real build of ours finished: its task is done too."""
    body = msg.body
    if rules.koji_user and body.get("owner") != rules.koji_user:
        return Drop(KIND_TASK, f"build owner {_short(repr(body.get('owner')), 60)} is not ebs")
    state = BUILD_TO_TASK_STATE.get(body.get("new"))  # type: ignore[arg-type]
    if state is None:
        return Drop(KIND_TASK, f"build state {_short(repr(body.get('new')), 20)} is not final")
    if body.get("task_id") is None:
        return Drop(KIND_TASK, "build has no task (an import)")
    workflow_id = _workflow_id(body.get("request"))
    if workflow_id is None:
        return Drop(KIND_TASK, f"build request has no {WORKFLOW_ID_KEY}")
    if not ATTEMPT_ID.search(workflow_id):
        return _not_an_attempt(workflow_id)
    task_id = _int(body.get("task_id"), "task_id")
    return SignalTask(
        workflow_id, TaskStateEvent(task_id=task_id, state=state, event_id=event_id(msg))
    )


def _not_an_attempt(workflow_id: str) -> Drop:
    return Drop(
        KIND_TASK, f"{WORKFLOW_ID_KEY} {_short(repr(workflow_id), 80)} names no build attempt"
    )


def _decide_repo(msg: Incoming, topic: str) -> Decision:
    body = msg.body
    tag = _name(body, "tag")
    if not SIDE_TAG.search(tag):
        return Drop(KIND_REPO, f"{tag} is not a side tag")
    repo_id = body.get("repo_id")
    return SignalRepo(
        RepoEvent(
            tag=tag,
            kind="done" if topic == TOPIC_REPO_DONE else "init",
            repo_id=0 if repo_id is None else _int(repo_id, "repo_id"),
            event_id=event_id(msg),
        )
    )

"""The bridge's decision function: pure, so tested directly and fuzzed."""

from __future__ import annotations

import asyncio
import copy
import functools
import logging
from datetime import UTC, datetime
from typing import Any

import pytest
from fedora_messaging.exceptions import Drop as DropMessage
from fedora_messaging.message import Message
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from ebs.config.eligibility import Eligibility
from ebs.config.model import ControlConfig, Override
from ebs.config.packages import build_package_lists
from ebs.ingest.bridge import Bridge
from ebs.ingest.decide import (
    ATTEMPT_ID,
    KIND_OTHER,
    KIND_REPO,
    KIND_TAG,
    KIND_TASK,
    SIDE_TAG,
    Drop,
    Incoming,
    SignalRepo,
    SignalTag,
    SignalTask,
    decide,
    event_id,
)
from ebs.ingest.forward import Forwarder
from ebs.ingest.rules import ConfigRules
from ebs.workflows.attempt import attempt_workflow_id

PROD = "org.fedoraproject.prod."
ATTEMPT_WF = "ebs-batch-1-slice1000-attempt1-chunk0"  # as attempt_workflow_id names it
TAG_TOPIC = PROD + "buildsys.tag"
TASK_TOPIC = PROD + "buildsys.task.state.change"
REPO_DONE = PROD + "buildsys.repo.done"
REPO_INIT = PROD + "buildsys.repo.init"


def rules(koji_user: str | None = "ebs-bot") -> ConfigRules:
    lists = build_package_lists(
        {"bash": "eln/source", "kernel": "eln/source", "coreutils": "eln/source"},
        {"ipa": Override(upstream_name="freeipa")},
    )
    eligibility = Eligibility(lists, ControlConfig(exclude=["^kernel$"]))
    return ConfigRules(trigger_tag="f45", koji_user=koji_user, eligibility=eligibility)


RULES = rules()


def tag_body(**over: Any) -> dict[str, Any]:
    body = {
        "build_id": 2620000,
        "name": "bash",
        "tag_id": 1234,
        "instance": "primary",
        "tag": "f45",
        "user": "bodhi",
        "version": "5.2.37",
        "release": "1.fc45",
        "owner": "someone",
    }
    body.update(over)
    return body


def task_body(**over: Any) -> dict[str, Any]:
    opts = {"custom_user_metadata": {"ebs_workflow_id": ATTEMPT_WF}}
    body = {
        "id": 12345678,
        "info": {
            "id": 12345678,
            "method": "build",
            "host_id": None,
            "arch": "noarch",
            "result": None,
            "request": ["git+https://src.fedoraproject.org/rpms/bash.git#abc", "eln-side-7", opts],
            "children": [],
            "state": 2,
            "create_time": 1700000000.0,
            "url": "https://koji/taskinfo?taskID=12345678",
        },
        "method": "build",
        "attribute": "state",
        "old": "OPEN",
        "new": "CLOSED",
        "srpm": "bash",
        "owner": "ebs-bot",
        "base_url": "https://koji.fedoraproject.org",
        "files_base_url": "https://kojipkgs.fedoraproject.org",
        "instance": "primary",
    }
    body.update(over)
    return body


def msg(topic: str, body: Any, mid: str | None = "m-1", sent_at: str | None = None) -> Incoming:
    return Incoming(topic=topic, message_id=mid, body=body, sent_at=sent_at)


# ---- tags -----------------------------------------------------------------------


def test_eligible_tag_in_trigger_tag_becomes_a_tag_event() -> None:
    d = decide(msg(TAG_TOPIC, tag_body(), "uuid-1", "2026-11-25T09:00:00+00:00"), RULES)
    assert isinstance(d, SignalTag)
    ev = d.event
    assert (ev.component, ev.nvr, ev.build_id, ev.tag) == (
        "bash",
        "bash-5.2.37-1.fc45",
        2620000,
        "f45",
    )
    assert ev.event_id == "uuid-1"
    assert ev.source == "bus"
    assert ev.tagged_at == datetime(2026, 11, 25, 9, tzinfo=UTC).timestamp()


def test_renamed_package_is_eligible_under_its_fedora_name() -> None:
    d = decide(msg(TAG_TOPIC, tag_body(name="freeipa")), RULES)
    assert isinstance(d, SignalTag) and d.event.component == "freeipa"
    # ELN's name is not what Koji tags in Rawhide.
    assert decide(msg(TAG_TOPIC, tag_body(name="ipa")), RULES) == Drop(
        KIND_TAG, "ipa is not eligible"
    )


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (tag_body(tag="f45-updates-candidate"), "is not the trigger tag"),
        (tag_body(tag=None), "is not the trigger tag"),
        (tag_body(name="kernel"), "kernel is not eligible"),  # excluded
        (tag_body(name="not-in-eln"), "not-in-eln is not eligible"),
    ],
)
def test_irrelevant_tags_are_dropped(body: dict[str, Any], reason: str) -> None:
    d = decide(msg(TAG_TOPIC, body), RULES)
    assert isinstance(d, Drop) and not d.malformed and d.kind == KIND_TAG
    assert reason in d.reason


def test_the_trigger_tag_is_the_resolved_one_from_the_rules() -> None:
    other = ConfigRules("f46", "ebs-bot", RULES.eligibility)
    assert isinstance(decide(msg(TAG_TOPIC, tag_body(tag="f46")), other), SignalTag)
    assert isinstance(decide(msg(TAG_TOPIC, tag_body()), other), Drop)


@pytest.mark.parametrize(
    "body",
    [
        tag_body(build_id="2620000"),  # schema: integer
        tag_body(name=None),
        tag_body(version=""),
        {k: v for k, v in tag_body().items() if k != "release"},
        tag_body(name=" bash"),
        ["not", "an", "object"],
        None,
    ],
)
def test_malformed_tag_bodies_are_dropped_as_malformed(body: Any) -> None:
    d = decide(msg(TAG_TOPIC, body), RULES)
    assert isinstance(d, Drop) and d.malformed and d.kind == KIND_TAG


def test_event_id_is_the_message_id_or_a_stable_digest() -> None:
    assert event_id(msg(TAG_TOPIC, tag_body(), "abc")) == "abc"
    a = event_id(msg(TAG_TOPIC, tag_body(), None))
    b = event_id(msg(TAG_TOPIC, copy.deepcopy(tag_body()), ""))
    assert a == b and a.startswith("sha256:")
    assert a != event_id(msg(TAG_TOPIC, tag_body(release="2.fc45"), None))


def test_topics_from_any_environment_and_unprefixed_ones_are_read() -> None:
    for topic in ("org.fedoraproject.stg.buildsys.tag", "buildsys.tag"):
        assert isinstance(decide(msg(topic, tag_body()), RULES), SignalTag)
    for topic in ("org.fedoraproject.prod.buildsys.untag", "org.centos.prod.buildsys.tag", ""):
        d = decide(msg(topic, tag_body()), RULES)
        assert isinstance(d, Drop) and d.kind == KIND_OTHER and not d.malformed


# ---- tasks ----------------------------------------------------------------------


def test_build_task_of_ebs_is_routed_to_the_workflow_in_its_metadata() -> None:
    d = decide(msg(TASK_TOPIC, task_body(), "uuid-7"), RULES)
    assert isinstance(d, SignalTask)
    assert d.workflow_id == ATTEMPT_WF
    assert (d.event.task_id, d.event.state, d.event.event_id) == (12345678, "CLOSED", "uuid-7")


def test_without_a_configured_koji_user_task_and_build_messages_still_route() -> None:
    # Anyone's task may carry the metadata: the attempt accepts a message only
    # for a task id it submitted (ebs.workflows.attempt), so routing is safe.
    for koji_user in (None, ""):
        for topic, body in ((TASK_TOPIC, task_body(owner="someone")),
                            (BUILD_TOPIC, build_body(owner="someone"))):
            d = decide(msg(topic, body), rules(koji_user=koji_user))
            assert isinstance(d, SignalTask), (topic, d)
            assert d.workflow_id == ATTEMPT_WF


def test_metadata_naming_no_build_attempt_routes_nothing() -> None:
    assert ATTEMPT_WF == attempt_workflow_id("ebs-batch-1", 1000, 1, 0)
    assert ATTEMPT_ID.search(attempt_workflow_id("b", -5, 2, 3))
    for other in ("ebs-collector", "ebs-batch-1", "ebs-batch-1-slice0-attempt1"):
        opts = {"custom_user_metadata": {"ebs_workflow_id": other}}
        info = dict(task_body()["info"], request=["git+https://x#a", "eln-side-7", opts])
        for koji_user in (None, "ebs-bot"):
            d = decide(msg(TASK_TOPIC, task_body(info=info)), rules(koji_user=koji_user))
            assert isinstance(d, Drop) and not d.malformed, d
            assert "names no build attempt" in d.reason


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (task_body(owner="someone-else"), "is not ebs"),
        (task_body(method="buildArch"), "is not build"),
        (task_body(method="tagBuild"), "is not build"),
    ],
)
def test_other_tasks_are_dropped(body: dict[str, Any], reason: str) -> None:
    d = decide(msg(TASK_TOPIC, body), RULES)
    assert isinstance(d, Drop) and not d.malformed and reason in d.reason


def test_build_without_ebs_metadata_is_irrelevant() -> None:
    body = task_body()
    body["info"]["request"] = ["git+https://src/rpms/bash.git#abc", "eln", {}]
    d = decide(msg(TASK_TOPIC, body), RULES)
    assert isinstance(d, Drop) and not d.malformed
    body["info"]["request"] = ["git+https://src/rpms/bash.git#abc", "eln"]
    assert isinstance(decide(msg(TASK_TOPIC, body), RULES), Drop)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda b: b["info"]["request"][2]["custom_user_metadata"].update(ebs_workflow_id=7),
        lambda b: b["info"]["request"][2]["custom_user_metadata"].update(ebs_workflow_id=" "),
        lambda b: b.update(new="EXPLODED"),
        lambda b: b.update(id="12"),  # schema: integer
        lambda b: b.pop("owner"),  # schema: required
        lambda b: b["info"].pop("arch"),  # schema: required in info
    ],
)
def test_malformed_task_messages(mutate: Any) -> None:
    body = task_body()
    mutate(body)
    d = decide(msg(TASK_TOPIC, body), RULES)
    assert isinstance(d, Drop) and d.malformed and d.kind == KIND_TASK


# ---- repos ----------------------------------------------------------------------


def test_repo_events_for_side_tags_go_to_routing() -> None:
    body = {"instance": "primary", "repo_id": 99, "tag": "eln-build-side-4242", "tag_id": 5}
    d = decide(msg(REPO_DONE, body, "r-1"), RULES)
    assert isinstance(d, SignalRepo)
    assert (d.event.tag, d.event.kind, d.event.repo_id, d.event.event_id) == (
        "eln-build-side-4242",
        "done",
        99,
        "r-1",
    )
    d = decide(msg(REPO_INIT, body), RULES)
    assert isinstance(d, SignalRepo) and d.event.kind == "init"


def test_repo_events_for_other_tags_are_dropped_without_temporal() -> None:
    body = {"repo_id": 99, "tag": "f45-build", "tag_id": 5}
    d = decide(msg(REPO_DONE, body), RULES)
    assert isinstance(d, Drop) and d.kind == KIND_REPO and not d.malformed
    for bad in ({"repo_id": "x", "tag": "eln-build-side-1"}, {"repo_id": 1}, {"tag": ""}):
        d = decide(msg(REPO_DONE, bad), RULES)
        assert isinstance(d, Drop) and d.malformed


# ---- fuzz -----------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
topics = st.sampled_from([TAG_TOPIC, TASK_TOPIC, REPO_DONE, REPO_INIT, PROD + "buildsys.untag"])


def _mutated(base: dict[str, Any], draw_key: str, value: Any, drop: bool) -> dict[str, Any]:
    body = copy.deepcopy(base)
    target = body["info"] if draw_key.startswith("info.") else body
    key = draw_key.removeprefix("info.")
    if drop:
        target.pop(key, None)
    else:
        target[key] = value
    return body


tag_keys = st.sampled_from(sorted(tag_body()))
task_keys = st.sampled_from(
    sorted(task_body()) + ["info." + k for k in sorted(task_body()["info"])]
)


@st.composite
def near_valid(draw: st.DrawFn) -> tuple[str, Any]:
    """Valid-looking bodies with one field replaced by junk or removed."""
    if draw(st.booleans()):
        return TAG_TOPIC, _mutated(
            tag_body(), draw(tag_keys), draw(json_values), draw(st.booleans())
        )
    return TASK_TOPIC, _mutated(
        task_body(), draw(task_keys), draw(json_values), draw(st.booleans())
    )


def _check(decision: object) -> None:
    assert isinstance(decision, Drop | SignalTag | SignalTask | SignalRepo)
    if isinstance(decision, Drop):
        assert decision.reason
    elif isinstance(decision, SignalTag):
        assert decision.event.component and decision.event.nvr and decision.event.event_id
    elif isinstance(decision, SignalTask):
        assert decision.workflow_id.strip() and decision.event.state
        assert isinstance(decision.event.task_id, int)
    else:
        assert SIDE_TAG.search(decision.event.tag)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(topic=topics, body=json_values, mid=st.none() | st.text(max_size=40))
def test_fuzz_arbitrary_bodies_never_crash(topic: str, body: Any, mid: str | None) -> None:
    _check(decide(msg(topic, body, mid), RULES))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=near_valid())
def test_fuzz_near_valid_bodies_never_crash(case: tuple[str, Any]) -> None:
    topic, body = case
    _check(decide(msg(topic, body), RULES))


@settings(max_examples=200, deadline=None)
@given(junk=json_values.filter(lambda v: not isinstance(v, dict)))
def test_fuzz_non_object_bodies_are_malformed(junk: Any) -> None:
    for topic in (TAG_TOPIC, TASK_TOPIC, REPO_DONE):
        d = decide(msg(topic, junk), RULES)
        assert isinstance(d, Drop) and d.malformed


# ---- the callback: every bad message is dropped, counted and logged once ---------


@functools.cache
def _bridge() -> Bridge:
    async def no_temporal() -> Any:
        raise AssertionError("a dropped message must not reach Temporal")

    loop = asyncio.new_event_loop()  # never run: drops do not forward
    return Bridge(lambda: RULES, Forwarder(no_temporal, "ebs"), loop, consumers=1)


def _malformed_count(kind: str) -> float:
    labels = {"kind": kind, "outcome": "malformed"}
    return REGISTRY.get_sample_value("ebs_bridge_messages_total", labels) or 0.0


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(topic=topics, body=json_values)
def test_fuzz_the_callback_drops_and_counts_each_bad_message(topic: str, body: Any) -> None:
    decision = decide(msg(topic, body), RULES)
    assume(isinstance(decision, Drop) and decision.malformed)
    bridge = _bridge()
    message = Message(body=body if isinstance(body, dict) else {}, topic=topic)
    message.body = body  # what a publisher without a schema header may send
    before = _malformed_count(decision.kind)
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("ebs.ingest.bridge")
    logger.addHandler(handler)
    try:
        with pytest.raises(DropMessage):
            bridge.handle(message)
    finally:
        logger.removeHandler(handler)
    assert _malformed_count(decision.kind) == before + 1
    assert len(records) == 1 and records[0].levelno == logging.WARNING
    assert "outcome=malformed" in records[0].getMessage()


BUILD_TOPIC = PROD + "buildsys.build.state.change"


def build_body(new: int = 1, **over: Any) -> dict[str, Any]:
    """A build.state.change as the simulator (and Fedora's plugin) sends it."""
    from ebs.simulator import messages as sim_messages

    opts = {"draft": True, "custom_user_metadata": {"ebs_workflow_id": ATTEMPT_WF}}
    task = {"id": 777, "method": "build", "host_id": 3, "arch": "noarch", "result": None,
            "request": ["git+https://x/rpms/bash.git#a", "eln-build-side-7", opts]}
    build = {"id": 55, "name": "bash", "version": "5.2", "release": "1.eln150,draft_55",
             "task_id": 777, "owner_name": "ebs-bot"}
    body = sim_messages.build_state_body("https://koji", "https://kojipkgs", build, 0, new, task,
                                         "2026-11-25T09:00:00+00:00", None)
    body.update(over)
    return body


def test_a_finished_draft_build_signals_its_attempt_as_the_task() -> None:
    for new, state in ((1, "CLOSED"), (3, "FAILED"), (4, "CANCELED")):
        d = decide(msg(BUILD_TOPIC, build_body(new=new)), RULES)
        assert isinstance(d, SignalTask), d
        assert d.workflow_id == ATTEMPT_WF
        assert (d.event.task_id, d.event.state) == (777, state)


def test_a_build_still_building_or_of_someone_else_is_dropped() -> None:
    assert isinstance(decide(msg(BUILD_TOPIC, build_body(new=0)), RULES), Drop)
    assert isinstance(decide(msg(BUILD_TOPIC, build_body(owner="mhroncok")), RULES), Drop)
    assert isinstance(decide(msg(BUILD_TOPIC, build_body(request=None)), RULES), Drop)


def test_a_renamed_component_carries_its_eln_name() -> None:
    d = decide(msg(TAG_TOPIC, tag_body(name="freeipa")), RULES)
    assert isinstance(d, SignalTag) and d.event.eln_name == "ipa"
    d = decide(msg(TAG_TOPIC, tag_body(name="bash")), RULES)
    assert isinstance(d, SignalTag) and d.event.eln_name == ""

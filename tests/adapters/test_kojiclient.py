"""ebs.koji.adapter.KojiAdapter against the running simulator, over HTTP."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import TYPE_CHECKING

import koji
import pytest
import requests
from temporalio.testing import ActivityEnvironment

from ebs.activities.koji import KojiActivities
from ebs.contracts.koji import (
    BuildLookupRequest,
    BuildSpec,
    CancelRequest,
    LatestBuildsRequest,
    PromoteRequest,
    RemoveSideTagRequest,
    RepoStateRequest,
    SideTagRequest,
    StableCheckRequest,
    SubmitRequest,
    TagBuildsRequest,
    TaskPollRequest,
)
from ebs.koji.adapter import SIDE_TAG_KEY, KojiAdapter
from ebs.koji.errors import KojiAnswerError, KojiPermanentError, is_permanent_fault
from ebs.metrics import KOJI_CALLS
from ebs.simulator import FaultRule, Simulator

if TYPE_CHECKING:
    from tests.helpers.sim import SimWithSink

pytest_plugins = ["tests.helpers.sim"]

BASH = "bash-5.2.37-1.fc45"
SED = "sed-4.9-4.fc45"


def specs(adapter: KojiAdapter, *nvrs: str) -> list[BuildSpec]:
    builds = adapter.get_builds(BuildLookupRequest(list(nvrs))).builds
    return [BuildSpec(b.component, b.source) for b in builds]


def submit_request(adapter: KojiAdapter, target: str, *nvrs: str, **kw: object) -> SubmitRequest:
    return SubmitRequest(target, specs(adapter, *nvrs), not_before=time.time() - 1,
                         workflow_id="ebs-batch-1", **kw)  # type: ignore[arg-type]


def test_identity_target_and_lookups(sim: SimWithSink, koji_adapter: KojiAdapter) -> None:
    assert koji_adapter.username == "elnbuildsync"
    assert koji_adapter.get_build_target("eln").build_tag == "eln-build"
    with pytest.raises(KojiPermanentError, match="No such build target"):
        koji_adapter.get_build_target("nope")
    found, missing = koji_adapter.get_builds(BuildLookupRequest([BASH, "nope-1-1"])).builds
    assert found.found and found.component == "bash" and found.build_id > 0
    assert found.source.startswith("git+https://src.fedoraproject.org/rpms/bash.git#")
    assert not missing.found and missing.reason == "no such build"
    latest = koji_adapter.latest_builds(LatestBuildsRequest("eln", ["bash", "nothere"])).builds
    assert latest[0].nvr == "bash-5.2.37-0.eln150" and not latest[1].found
    assert koji_adapter.task_url(42) == f"{sim.weburl}/taskinfo?taskID=42"


def test_configured_username_wins(sim: SimWithSink) -> None:
    adapter = KojiAdapter(sim.koji_config(username="someone-else"))
    assert adapter.username == "someone-else"
    assert not sim.calls_named("getLoggedInUser")


def test_side_tag_is_created_once_per_key(sim: SimWithSink, koji_adapter: KojiAdapter) -> None:
    first = koji_adapter.create_side_tag(SideTagRequest("eln-build", "batch-1:build:1"))
    again = koji_adapter.create_side_tag(SideTagRequest("eln-build", "batch-1:build:1"))
    other = koji_adapter.create_side_tag(SideTagRequest("eln-build", "batch-1:build:2"))
    assert (again.name, again.reused, first.reused) == (first.name, True, False)
    assert other.name != first.name
    assert sim.side_tags_created == [first.name, other.name]
    assert koji_adapter.side_tag_key(first.name) == "batch-1:build:1"
    assert {t.name for t in koji_adapter.list_side_tags()} == {first.name, other.name}
    koji_adapter.remove_side_tag(RemoveSideTagRequest(first.name))
    koji_adapter.remove_side_tag(RemoveSideTagRequest(first.name))  # already gone: fine
    assert sim.side_tags_removed == [first.name]


def test_side_tag_without_permission_to_record_the_key(caplog: pytest.LogCaptureFixture) -> None:
    with Simulator(seed=4, default_user_perms=()) as sim:
        adapter = KojiAdapter(sim.koji_config())
        with caplog.at_level(logging.WARNING, logger="ebs.koji.adapter"):
            tag = adapter.create_side_tag(SideTagRequest("eln-build", "k"))
        assert "cannot record request key" in caplog.text
        assert adapter.side_tag_key(tag.name) is None and SIDE_TAG_KEY not in caplog.text


def test_interrupted_side_tag_creation_is_adopted_not_leaked(
    sim: SimWithSink, koji_adapter: KojiAdapter
) -> None:
    # createSideTag done, its answer lost: the retry finds the empty unmarked tag.
    sim.add_fault(FaultRule("createSideTag", "http500", times=1, after=True))
    with pytest.raises(requests.HTTPError):
        koji_adapter.create_side_tag(SideTagRequest("eln-build", "b:build:1"))
    retried = koji_adapter.create_side_tag(SideTagRequest("eln-build", "b:build:1"))
    assert retried.reused and sim.side_tags_created == [retried.name]
    assert koji_adapter.side_tag_key(retried.name) == "b:build:1"
    # The key could not be written (HTTP 500): the error propagates, the retry adopts.
    sim.add_fault(FaultRule("editSideTag", "http500", times=1))
    with pytest.raises(requests.HTTPError):
        koji_adapter.create_side_tag(SideTagRequest("eln-build", "b:build:2"))
    second = koji_adapter.create_side_tag(SideTagRequest("eln-build", "b:build:2"))
    assert second.reused and sim.side_tags_created == [retried.name, second.name]
    assert koji_adapter.side_tag_key(second.name) == "b:build:2"


def test_an_unmarked_side_tag_with_builds_is_never_adopted(
    sim: SimWithSink, koji_adapter: KojiAdapter
) -> None:
    busy = sim.session().createSideTag("eln-build")["name"]
    koji_adapter.tag_builds(TagBuildsRequest(busy, [BASH]))
    tag = koji_adapter.create_side_tag(SideTagRequest("eln-build", "b:errata:1"))
    assert not tag.reused and tag.name != busy
    assert koji_adapter.side_tag_key(busy) is None


def test_an_answer_of_the_wrong_shape_names_the_call(sim: SimWithSink) -> None:
    adapter = KojiAdapter(sim.koji_config())
    adapter._call = lambda method, *a, **kw: (  # type: ignore[method-assign]
        adapter._remember(method, a, ["garbage"]) or ["garbage"])
    with pytest.raises(KojiAnswerError) as caught:
        adapter.get_build_target("eln")
    text = str(caught.value)
    assert text.startswith("get_build_target: unexpected answer from Koji")
    assert "getBuildTarget('eln') answered ['garbage']" in text and "TypeError" in text


def test_an_answer_of_the_wrong_shape_fails_fast(sim: SimWithSink) -> None:
    """issue 17 #5: no 20 minutes of retries; the message shows the answer."""
    from temporalio.exceptions import ApplicationError

    from ebs.activities.errors import permanent_faults_fail_fast

    adapter = KojiAdapter(sim.koji_config())
    adapter._call = lambda method, *a, **kw: (  # type: ignore[method-assign]
        adapter._remember(method, a, [{"nvr": "x"}]) or [{"nvr": "x"}])
    with pytest.raises(ApplicationError) as caught:
        permanent_faults_fail_fast(adapter.get_build_target)("eln")
    assert caught.value.non_retryable and caught.value.type == "KojiAnswerError"
    assert "answered [{'nvr': 'x'}]" in str(caught.value)


def test_submit_is_idempotent(sim: SimWithSink, koji_adapter: KojiAdapter) -> None:
    tag = koji_adapter.create_side_tag(SideTagRequest("eln-build", "b:1")).name
    req = submit_request(koji_adapter, tag, BASH, SED)
    first = koji_adapter.submit_builds(req)
    second = koji_adapter.submit_builds(req)
    assert [t.reused for t in first.submitted] == [False, False]
    assert [(t.component, t.task_id, t.reused) for t in second.submitted] == \
        [(t.component, t.task_id, True) for t in first.submitted]
    assert len(sim.builds_submitted) == 2
    opts = sim.builds_submitted[0]["opts"]
    assert opts == {"draft": True, "wait_repo": True,
                    "custom_user_metadata": {"ebs_workflow_id": "ebs-batch-1"}}
    rows = sim.session().getTaskInfo(first.submitted[0].task_id)
    assert rows["priority"] == koji.PRIO_DEFAULT + 5
    # another workflow's request is not ours to reuse
    other = SubmitRequest(tag, req.builds[:1], req.not_before, workflow_id="ebs-batch-2")
    assert koji_adapter.submit_builds(other).submitted[0].reused is False


def test_lost_submit_response_is_recovered_on_retry(sim: SimWithSink,
                                                    koji_adapter: KojiAdapter) -> None:
    tag = koji_adapter.create_side_tag(SideTagRequest("eln-build", "b:1")).name
    req = submit_request(koji_adapter, tag, BASH)
    sim.add_fault(FaultRule("build", "http500", after=True))
    with pytest.raises(requests.HTTPError):
        koji_adapter.submit_builds(req)
    retry = koji_adapter.submit_builds(req)
    assert retry.submitted[0].reused and len(sim.builds_submitted) == 1
    assert retry.submitted[0].task_id == sim.builds_submitted[0]["task_id"]


def test_a_first_submission_does_not_list_earlier_tasks(sim: SimWithSink,
                                                       koji_adapter: KojiAdapter) -> None:
    """The first try of a first run cannot have submitted anything: no listTasks
    (a mass rebuild's chunks each listed every task of the last ten minutes)."""
    tag = koji_adapter.create_side_tag(SideTagRequest("eln-build", "b:1")).name
    req = replace(submit_request(koji_adapter, tag, BASH), first_submission=True)
    before = len(sim.calls_named("listTasks"))
    first = koji_adapter.submit_builds(req)
    assert len(sim.calls_named("listTasks")) == before and not first.submitted[0].reused
    # a retry of the activity (attempt 2) looks, and reuses what the first made
    env = ActivityEnvironment()
    env.info = replace(env.info, attempt=2)
    retry = env.run(KojiActivities(koji_adapter).submit_builds, req)
    assert len(sim.calls_named("listTasks")) == before + 1
    assert [(t.task_id, t.reused) for t in retry.submitted] == [(first.submitted[0].task_id, True)]
    assert len(sim.builds_submitted) == 1


def test_submit_faults_are_sorted(sim: SimWithSink, koji_adapter: KojiAdapter) -> None:
    tag = koji_adapter.create_side_tag(SideTagRequest("eln-build", "b:1")).name
    sim.add_fault(FaultRule.bad_scm_url("sed"))
    sim.add_fault(FaultRule.transient("build"))
    req = submit_request(koji_adapter, tag, BASH, SED)
    with pytest.raises(koji.ServerOffline):  # transient: raised after the batch went out
        koji_adapter.submit_builds(req)
    # BASH hit the transient fault, SED the permanent one; the retry sorts them
    result = koji_adapter.submit_builds(req)
    assert [t.component for t in result.submitted] == ["bash"]
    assert [f.component for f in result.failed] == ["sed"]
    assert "allowed SCMs" in result.failed[0].reason

    sim.add_fault(FaultRule.auth_failure("build", times=1))
    with pytest.raises(KojiPermanentError, match="Not logged-in"):
        koji_adapter.submit_builds(submit_request(koji_adapter, tag, "grep-3.11-10.fc45"))
    # The hub takes a build for a target that does not exist (as the real one does);
    # the task fails.
    no_target = koji_adapter.submit_builds(
        submit_request(koji_adapter, "no-target", "xz-5.8.1-1.fc45")).submitted[0].task_id
    assert sim.settle()
    [polled] = koji_adapter.poll_tasks(TaskPollRequest([no_target])).tasks
    assert polled.state == "FAILED" and "No such build target" in polled.reason


def test_poll_cancel_and_task_builds(sim: SimWithSink, koji_adapter: KojiAdapter) -> None:
    sim.set_outcomes("bash", ["FAILED"])
    sim.set_outcomes("sed", ["HANG"])
    tag = koji_adapter.create_side_tag(SideTagRequest("eln-build", "b:1")).name
    result = koji_adapter.submit_builds(submit_request(koji_adapter, tag, BASH, SED,
                                                       "grep-3.11-10.fc45"))
    ids = [t.task_id for t in result.submitted]
    assert sim.settle()
    polled = koji_adapter.poll_tasks(TaskPollRequest(ids + [999])).tasks
    assert [t.state for t in polled] == ["FAILED", "OPEN", "CLOSED", "FAILED"]
    assert "error building package" in polled[0].reason
    assert polled[3].reason == "no such task: 999"
    koji_adapter.cancel_tasks(CancelRequest([ids[1], ids[2]]))  # closed one: no-op
    assert koji_adapter.poll_tasks(TaskPollRequest([ids[1]])).tasks[0].state == "CANCELED"
    builds = koji_adapter.task_builds(TaskPollRequest(ids)).builds
    assert builds[2].nvr == f"grep-3.11-10.eln150,draft_{builds[2].build_id}" and builds[2].draft
    assert builds[0].found  # a failed draft build still has its record


def test_promotion(sim: SimWithSink, koji_adapter: KojiAdapter) -> None:
    tag = koji_adapter.create_side_tag(SideTagRequest("eln-build", "b:1")).name
    req = submit_request(koji_adapter, tag, BASH)
    one = koji_adapter.submit_builds(req).submitted[0].task_id
    two = koji_adapter.submit_builds(SubmitRequest(tag, req.builds, req.not_before,
                                                   workflow_id="other")).submitted[0].task_id
    assert sim.settle()
    b1, b2 = koji_adapter.task_builds(TaskPollRequest([one, two])).builds
    done = koji_adapter.promote_builds(PromoteRequest([b1.build_id])).promotions[0]
    assert (done.promoted, done.nvr) == (True, "bash-5.2.37-1.eln150")
    again = koji_adapter.promote_builds(PromoteRequest([b1.build_id])).promotions[0]
    assert (again.promoted, again.nvr) == (True, "bash-5.2.37-1.eln150")
    clash = koji_adapter.promote_builds(PromoteRequest([b2.build_id])).promotions[0]
    assert not clash.promoted and "Target build exists" in clash.reason


def test_tagging_and_repo_readiness(sim: SimWithSink, koji_adapter: KojiAdapter) -> None:
    tag = koji_adapter.create_side_tag(SideTagRequest("eln", "b:errata")).name
    sim.set_repo_delay(0.2)
    nvrs = ["bash-5.2.37-0.eln150", "sed-4.9-3.eln150"]
    before = koji_adapter.repo_state(RepoStateRequest(tag, 0, nvrs))
    assert not before.ready and before.missing == nvrs
    result = koji_adapter.tag_builds(TagBuildsRequest(tag, nvrs))
    assert result.tagged == nvrs and result.failed == [] and result.last_event > 0
    state = koji_adapter.repo_state(RepoStateRequest(tag, result.last_event, nvrs))
    assert state.missing == [] and not state.ready  # repo still regenerating
    sim.wait_for(lambda: koji_adapter.repo_state(RepoStateRequest(tag, result.last_event,
                                                                  nvrs)).ready, timeout=5)
    again = koji_adapter.tag_builds(TagBuildsRequest(tag, nvrs + ["nope-1-1.eln150"]))
    assert again.tagged == nvrs
    assert [f.nvr for f in again.failed] == ["nope-1-1.eln150"]
    assert "No such build" in again.failed[0].reason
    stable = koji_adapter.check_stable(StableCheckRequest("eln", ["bash-5.2.37-0.eln150",
                                                                  "bash-5.2.37-1.eln150"]))
    assert stable.stable == ["bash-5.2.37-0.eln150"] and stable.pending == ["bash-5.2.37-1.eln150"]


def test_multicall_chunks_progress_and_metrics(sim: SimWithSink) -> None:
    adapter = KojiAdapter(sim.koji_config(multicall_chunk=2))
    nvrs = [BASH, SED, "grep-3.11-10.fc45", "xz-5.8.1-1.fc45", "tar-1.35-6.fc45"]
    ticks: list[int] = []
    counted = KOJI_CALLS.labels("multiCall")._value.get()
    before = sim.hub_requests()
    builds = adapter.get_builds(BuildLookupRequest(nvrs), on_progress=lambda: ticks.append(1))
    assert [b.nvr for b in builds.builds] == nvrs and all(b.found for b in builds.builds)
    assert sim.hub_requests() - before == 3 and len(ticks) == 3
    assert KOJI_CALLS.labels("multiCall")._value.get() - counted == 3


def test_transport_errors_propagate_as_themselves(sim: SimWithSink,
                                                  koji_adapter: KojiAdapter) -> None:
    sim.add_fault(FaultRule("getBuildTarget", "http500"))
    with pytest.raises(requests.HTTPError):
        koji_adapter.get_build_target("eln")
    sim.add_fault(FaultRule("multiCall", "http500"))
    with pytest.raises(requests.HTTPError):
        koji_adapter.get_builds(BuildLookupRequest([BASH]))
    dead = KojiAdapter(sim.koji_config(server="http://127.0.0.1:9/kojihub"), timeout=2)
    with pytest.raises(requests.ConnectionError):
        dead.get_build_target("eln")


def test_fault_classification() -> None:
    assert is_permanent_fault(koji.AuthError("x"))
    assert is_permanent_fault(koji.ActionNotAllowed("x"))
    assert is_permanent_fault(koji.GenericError("No such build target: eln"))
    assert not is_permanent_fault(koji.ServerOffline("x"))
    assert not is_permanent_fault(koji.GenericError("database is locked"))
    assert not is_permanent_fault(koji.AuthExpired("session expired"))


def test_a_retry_finds_its_side_tag_by_creation_time_without_sidetag_admin() -> None:
    """issue 17 #7: no extra without sidetag_admin; not_before finds the tag
    even with builds in it, from a fresh adapter (a restarted worker)."""
    with Simulator(seed=5, default_user_perms=()) as sim:
        older = KojiAdapter(sim.koji_config()).create_side_tag(
            SideTagRequest("eln-build", "b:build:1"))
        time.sleep(0.01)
        req = SideTagRequest("eln-build", "b:errata:1", not_before=time.time())
        time.sleep(0.01)
        first = KojiAdapter(sim.koji_config()).create_side_tag(req)
        adapter = KojiAdapter(sim.koji_config())
        adapter.tag_builds(TagBuildsRequest(first.name, [BASH]))
        again = adapter.create_side_tag(req)
        assert (again.name, again.reused) == (first.name, True) and again.name != older.name


def test_list_tagged_answers_a_whole_tag_in_one_call(
    sim: SimWithSink, koji_adapter: KojiAdapter
) -> None:
    from ebs.contracts.koji import ListTaggedRequest

    before = len(sim.calls_named("listTagged"))
    latest = koji_adapter.list_tagged(ListTaggedRequest("eln"))
    assert len(sim.calls_named("listTagged")) == before + 1
    by_name = {b.name: b for b in latest.builds}
    assert by_name["bash"].nvr == "bash-5.2.37-0.eln150" and by_name["bash"].build_id > 0
    assert len(by_name) == len(latest.builds)  # latest: one per package
    every = koji_adapter.list_tagged(ListTaggedRequest("eln", latest=False))
    assert len(every.builds) >= len(latest.builds)

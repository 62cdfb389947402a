"""Koji contract: every Koji call ebs/kojiclient.py makes, with one test body
run against the simulator and against the real Koji 1.35.3 hub.

Both act as a normal packager account (no sidetag_admin). The simulator runs
with Koji 1.35's repo behaviour (repos only on request) and the real hub's
listBuilds rows (script.repos_on_request, script.listbuilds_without_id).
Tests of ebs's adapter as it should behave, where it does not yet (issue 17),
are xfail(strict=True) naming the item; the fixer flips them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import koji
import pytest
from temporalio.exceptions import ApplicationError

from ebs.activities.errors import permanent_faults_fail_fast
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
from ebs.devstack.waiting import wait_until
from ebs.koji.errors import KojiAnswerError, KojiPermanentError
from tests.realstack.koji_backends import (
    KojiBackend,
    RealBackend,
    SimBackend,
    wait_task_states,
)

REPO_WAIT = 30.0


@pytest.fixture(params=["sim", "real"])
def kb(request: pytest.FixtureRequest) -> Iterator[KojiBackend]:
    backend: KojiBackend
    if request.param == "sim":
        sim_backend = SimBackend()
        sim_backend.sim.script_update({"repos_on_request": True, "listbuilds_without_id": True})
        backend = sim_backend
    else:
        backend = RealBackend(request.getfixturevalue("koji_stack"))
    try:
        yield backend
    finally:
        backend.close()


def _side_tag(kb: KojiBackend, key: str) -> str:
    return kb.adapter.create_side_tag(SideTagRequest("eln-build", key)).name


def _submit(kb: KojiBackend, target: str, *nvrs: str, workflow_id: str = "ebs-contract",
            **kw: object) -> list[int]:
    builds = kb.adapter.get_builds(BuildLookupRequest(list(nvrs))).builds
    req = SubmitRequest(target, [BuildSpec(b.component, b.source) for b in builds],
                        not_before=time.time() - 60, workflow_id=workflow_id,
                        **kw)  # type: ignore[arg-type]
    result = kb.adapter.submit_builds(req)
    assert not result.failed, result.failed
    return [t.task_id for t in result.submitted]


def _request_repo(kb: KojiBackend, tag: str) -> dict[str, object]:
    """What a 1.35 client does for a repo newer than its tagging: repo.request
    with min_event="last", then repo.checkRequest until served."""
    s = kb.session()
    check = s.repo.request(tag, min_event="last")
    assert set(check) == {"repo", "request", "duplicate"}
    if check["repo"]:
        return dict(check["repo"])
    req = check["request"]
    assert {"id", "tag_id", "min_event", "active", "repo_id", "task_id"} <= set(req)
    status: dict[str, Any] = {}

    def served() -> dict[str, object] | None:
        nonlocal status
        status = s.repo.checkRequest(req["id"])
        return dict(status["repo"]) if status["repo"] else None

    return wait_until(served, REPO_WAIT, lambda: f"repo request served (last {status})",
                      interval=0.1)


# ------------------------------------------------------------------ side tags
def test_side_tag_create_list_inspect_remove(kb: KojiBackend, unique: str) -> None:
    s = kb.session()
    created = s.createSideTag("eln-build")
    assert set(created) == {"name", "id", "task_id", "request"}
    assert created["name"] == f"eln-build-side-{created['id']}"
    assert created["task_id"] is None and created["request"] is None
    rows = s.listSideTags(basetag="eln-build", user=kb.username)
    assert {"id": created["id"], "name": created["name"]} in \
        [{"id": r["id"], "name": r["name"]} for r in rows]
    info = s.getTag(created["name"])
    assert info["extra"]["sidetag"] is True and info["extra"]["sidetag_user"] == kb.username
    target = s.getBuildTarget(created["name"])
    assert target["build_tag_name"] == target["dest_tag_name"] == created["name"]
    assert s.getRepo(created["name"]) is None  # 1.35 (no trigger_new_repo): no repo yet
    assert created["name"] in {t.name for t in kb.adapter.list_side_tags()}
    kb.adapter.remove_side_tag(RemoveSideTagRequest(created["name"]))
    kb.adapter.remove_side_tag(RemoveSideTagRequest(created["name"]))  # gone: fine
    assert s.getTag(created["name"]) is None
    with pytest.raises(koji.GenericError, match="No such tagInfo"):
        s.removeSideTag(created["name"])


def test_side_tag_permission_errors(kb: KojiBackend) -> None:
    s = kb.session()
    tag = s.createSideTag("eln-build")["name"]
    try:
        # issue 17 #7: a packager cannot record anything in extra
        with pytest.raises(koji.GenericError,
                           match="Extra can be modified only with sidetag_admin or admin"):
            s.editSideTag(tag, extra={"ebs_request_key": "k"})
        other = kb.other_session()
        with pytest.raises(koji.ActionNotAllowed, match="This is not your sidetag"):
            other.removeSideTag(tag)
        with pytest.raises(koji.ActionNotAllowed, match="This is not your sidetag"):
            other.editSideTag(tag, extra={"k": "v"})
        with pytest.raises(koji.GenericError, match="Not a sidetag: eln"):
            s.removeSideTag("eln")
        with pytest.raises(koji.GenericError, match="suffix is not allowed for sidetag"):
            s.createSideTag("eln-build", suffix="ebs")
        with pytest.raises(koji.GenericError, match="No such tagInfo"):
            s.createSideTag("no-such-build")
    finally:
        s.removeSideTag(tag)


def test_adapter_side_tag_is_created_once_per_key(kb: KojiBackend, unique: str) -> None:
    first = kb.adapter.create_side_tag(SideTagRequest("eln-build", f"{unique}:build:1"))
    again = kb.adapter.create_side_tag(SideTagRequest("eln-build", f"{unique}:build:1"))
    assert again.name == first.name and again.reused
    kb.adapter.remove_side_tag(RemoveSideTagRequest(first.name))


def test_adapter_side_tag_idempotent_without_sidetag_admin(kb: KojiBackend,
                                                           unique: str) -> None:
    """issue 17 #7: the request key cannot be recorded without sidetag_admin;
    a retry (the activity passes when the request was first made) finds it."""
    nvr = kb.rawhide_build(f"st{unique}")
    req = SideTagRequest("eln-build", f"{unique}:build:1", not_before=time.time())
    first = kb.adapter.create_side_tag(req)
    kb.adapter.tag_builds(TagBuildsRequest(first.name, [nvr]))
    again = kb.adapter.create_side_tag(req)
    try:
        assert again.name == first.name and again.reused
    finally:
        for tag in {first.name, again.name}:
            kb.adapter.remove_side_tag(RemoveSideTagRequest(tag))


# ------------------------------------------------------------ tagging, repos
def test_tag_builds_and_listing(kb: KojiBackend, unique: str) -> None:
    a, b = kb.rawhide_build(f"ta{unique}"), kb.rawhide_build(f"tb{unique}")
    tag = _side_tag(kb, f"{unique}:build:1")
    result = kb.adapter.tag_builds(TagBuildsRequest(tag, [a, b, "nope-1-1.fc45"]))
    assert result.tagged == [a, b] and result.last_event > 0
    assert [f.nvr for f in result.failed] == ["nope-1-1.fc45"]
    assert "No such build" in result.failed[0].reason
    again = kb.adapter.tag_builds(TagBuildsRequest(tag, [a]))
    assert again.tagged == [a] and again.failed == []
    rows = kb.session().listTagged(tag)
    assert {r["nvr"] for r in rows} == {a, b}
    # what the adapter reads from listTagged rows
    assert all({"nvr", "build_id", "create_event", "name"} <= set(r) for r in rows)
    # a direct tagBuild of a tagged build: the task fails "already tagged"
    task = kb.session().tagBuild(tag, a)
    assert wait_task_states(kb.adapter, [task]) == ["FAILED"]
    [polled] = kb.adapter.poll_tasks(TaskPollRequest([task])).tasks
    assert "already tagged" in polled.reason
    kb.adapter.remove_side_tag(RemoveSideTagRequest(tag))


def test_repo_request_and_readiness(kb: KojiBackend, unique: str) -> None:
    nvr = kb.rawhide_build(f"rr{unique}")
    tag = _side_tag(kb, f"{unique}:build:1")
    tagged = kb.adapter.tag_builds(TagBuildsRequest(tag, [nvr]))
    state = kb.adapter.repo_state(RepoStateRequest(tag, tagged.last_event, [nvr]))
    assert not state.ready and state.missing == []
    repo = _request_repo(kb, tag)
    assert repo["state"] == koji.REPO_STATES["READY"]
    assert int(str(repo["create_event"])) >= tagged.last_event
    got = kb.session().getRepo(tag)
    assert got["id"] == repo["id"]
    assert {"id", "state", "create_event", "create_ts", "tag_id", "tag_name", "dist",
            "begin_event", "end_event", "task_id"} <= set(got)
    state = kb.adapter.repo_state(RepoStateRequest(tag, tagged.last_event, [nvr]))
    assert state.ready and state.repo_id == repo["id"]
    # a second request for the same content is answered with that repo
    check = kb.session().repo.request(tag, min_event="last")
    assert check["repo"]["id"] == repo["id"] and check["request"] is None
    kb.adapter.remove_side_tag(RemoveSideTagRequest(tag))


def test_adapter_gets_a_repo_newer_than_its_tagging(kb: KojiBackend, unique: str) -> None:
    nvr = kb.rawhide_build(f"rn{unique}")
    tag = _side_tag(kb, f"{unique}:build:1")
    tagged = kb.adapter.tag_builds(TagBuildsRequest(tag, [nvr]))
    try:
        request = RepoStateRequest(tag, tagged.last_event, [nvr])
        wait_until(lambda: kb.adapter.repo_state(request).ready, 5,
                   "a repo newer than the tagging", interval=0.2)
    finally:
        kb.adapter.remove_side_tag(RemoveSideTagRequest(tag))


# --------------------------------------------------------------------- builds
def test_draft_builds_poll_children_result_and_listbuilds(kb: KojiBackend, unique: str) -> None:
    good, bad = kb.rawhide_build(f"bg{unique}"), kb.rawhide_build(f"bb{unique}")
    kb.script(f"bb{unique}", "fail")
    tag = _side_tag(kb, f"{unique}:build:1")
    kb.adapter.tag_builds(TagBuildsRequest(tag, [good, bad]))
    _request_repo(kb, tag)
    ids = _submit(kb, tag, good, bad)
    assert wait_task_states(kb.adapter, ids) == ["CLOSED", "FAILED"]
    polled = kb.adapter.poll_tasks(TaskPollRequest(ids + [99999999])).tasks
    assert [t.state for t in polled] == ["CLOSED", "FAILED", "FAILED"]
    assert "error building package" in polled[1].reason
    assert "mock exited with status 1" in polled[1].reason
    assert polled[2].reason == "no such task: 99999999"
    s = kb.session()
    with pytest.raises(koji.BuildError, match="error building package"):
        s.getTaskResult(ids[1])
    assert s.getTaskResult(ids[0]) is None or isinstance(s.getTaskResult(ids[0]), dict)
    children = s.getTaskChildren(ids[1])
    assert "buildArch" in [c["method"] for c in children]
    assert any(c["state"] == koji.TASK_STATES["FAILED"] for c in children)
    info = s.getTaskInfo(ids[0], request=True)
    assert info["request"][1] == tag and info["request"][2]["draft"] is True
    assert info["request"][2]["custom_user_metadata"] == {"ebs_workflow_id": "ebs-contract"}
    rows = s.listBuilds(taskID=ids[0])
    assert len(rows) == 1 and "id" not in rows[0]  # the real hub's rows: build_id only
    row = rows[0]
    assert row["draft"] is True and row["state"] == koji.BUILD_STATES["COMPLETE"]
    assert row["nvr"] == f"{good.rsplit('.fc45', 1)[0]}.eln150,draft_{row['build_id']}"
    [failed_row] = s.listBuilds(taskID=ids[1])
    assert failed_row["state"] == koji.BUILD_STATES["FAILED"]
    assert [b["nvr"] for b in s.listTagged(tag) if b["draft"]] == [row["nvr"]]
    kb.adapter.remove_side_tag(RemoveSideTagRequest(tag))


def test_adapter_task_builds(kb: KojiBackend, unique: str) -> None:
    nvr = kb.rawhide_build(f"tk{unique}")
    tag = _side_tag(kb, f"{unique}:build:1")
    kb.adapter.tag_builds(TagBuildsRequest(tag, [nvr]))
    _request_repo(kb, tag)
    ids = _submit(kb, tag, nvr)
    wait_task_states(kb.adapter, ids)
    try:
        [built] = kb.adapter.task_builds(TaskPollRequest(ids)).builds
        assert built.found and built.draft and built.build_id > 0
        assert built.nvr.endswith(f",draft_{built.build_id}")
    finally:
        kb.adapter.remove_side_tag(RemoveSideTagRequest(tag))


def test_answer_of_the_wrong_shape_fails_fast(kb: KojiBackend) -> None:
    """The real hub's listBuilds rows broke task_builds this way (#2); here the
    wrong shape is forced so the test outlives that fix."""
    adapter = kb.adapter_with()
    def garbage(method: str, *args: object, **kwargs: object) -> list[str]:
        adapter._remember(method, args, ["garbage"])
        return ["garbage"]

    adapter._call = garbage  # type: ignore[method-assign]
    call = permanent_faults_fail_fast(adapter.get_build_target)
    with pytest.raises(ApplicationError) as caught:
        call("eln")
    assert caught.value.non_retryable, "a KojiAnswerError is retried"
    assert "getBuildTarget('eln') answered ['garbage']" in str(caught.value)


def test_answer_of_the_wrong_shape_is_permanent(kb: KojiBackend, unique: str) -> None:
    nvr = kb.rawhide_build(f"ws{unique}")
    tag = _side_tag(kb, f"{unique}:build:1")
    kb.adapter.tag_builds(TagBuildsRequest(tag, [nvr]))
    _request_repo(kb, tag)
    ids = _submit(kb, tag, nvr)
    wait_task_states(kb.adapter, ids)
    try:
        kb.adapter.task_builds(TaskPollRequest(ids))
    except KojiAnswerError as exc:
        # what the worker's retry policy sees: it must be non-retryable
        assert isinstance(exc, KojiPermanentError), "KojiAnswerError is retried"
        assert "build_id" in str(exc)
    finally:
        kb.adapter.remove_side_tag(RemoveSideTagRequest(tag))


def test_submit_dedup_by_listtasks_and_cancel(kb: KojiBackend, unique: str) -> None:
    a, b = kb.rawhide_build(f"da{unique}"), kb.rawhide_build(f"db{unique}")
    kb.script(f"da{unique}", "hold")
    kb.script(f"db{unique}", "hold")
    tag = _side_tag(kb, f"{unique}:build:1")
    kb.adapter.tag_builds(TagBuildsRequest(tag, [a, b]))
    _request_repo(kb, tag)
    first = _submit(kb, tag, a, b)
    builds = kb.adapter.get_builds(BuildLookupRequest([a, b])).builds
    req = SubmitRequest(tag, [BuildSpec(x.component, x.source) for x in builds],
                        not_before=time.time() - 60, workflow_id="ebs-contract")
    again = kb.adapter.submit_builds(req)
    assert [(t.task_id, t.reused) for t in again.submitted] == [(i, True) for i in first]
    other = kb.adapter.submit_builds(SubmitRequest(tag, req.builds[:1], req.not_before,
                                                   workflow_id="another-batch"))
    assert not other.submitted[0].reused
    extra = other.submitted[0].task_id
    try:
        wait_task_states(kb.adapter, first, done=("OPEN",))
        wait_until(lambda: kb.session().getTaskChildren(first[0]), 30,
                   f"task {first[0]} to be building (to have children), not just open",
                   interval=0.1)
        kb.adapter.cancel_tasks(CancelRequest([first[0], extra, 99999999]))
        assert wait_task_states(kb.adapter, [first[0], extra]) == ["CANCELED", "CANCELED"]
        s = kb.session()
        children = [c["state"] for c in s.getTaskChildren(first[0])]
        assert koji.TASK_STATES["CANCELED"] in children
        assert set(children) <= {koji.TASK_STATES["CANCELED"], koji.TASK_STATES["CLOSED"]}
        # a canceled task is not reused: a new one is made
        retry = kb.adapter.submit_builds(SubmitRequest(tag, req.builds[:1], req.not_before,
                                                       workflow_id="ebs-contract"))
        assert not retry.submitted[0].reused
        kb.adapter.cancel_tasks(CancelRequest([retry.submitted[0].task_id]))
        # cancelling a finished task is a no-op
        kb.release(f"db{unique}")
        assert wait_task_states(kb.adapter, [first[1]]) == ["CLOSED"]
        kb.adapter.cancel_tasks(CancelRequest([first[1]]))
        assert kb.adapter.poll_tasks(TaskPollRequest([first[1]])).tasks[0].state == "CLOSED"
        # another user's task cannot be cancelled
        with pytest.raises(koji.ActionNotAllowed):
            kb.other_session().cancelTask(first[1])
    finally:
        kb.release(f"da{unique}")
        kb.adapter.remove_side_tag(RemoveSideTagRequest(tag))


def test_promote_and_build_already_exists(kb: KojiBackend, unique: str) -> None:
    nvr = kb.rawhide_build(f"pe{unique}")
    tag = _side_tag(kb, f"{unique}:build:1")
    kb.adapter.tag_builds(TagBuildsRequest(tag, [nvr]))
    _request_repo(kb, tag)
    one = _submit(kb, tag, nvr)
    two = kb.adapter.submit_builds(SubmitRequest(
        tag, [BuildSpec(b.component, b.source)
              for b in kb.adapter.get_builds(BuildLookupRequest([nvr])).builds],
        not_before=time.time() - 60, workflow_id="other")).submitted[0].task_id
    assert wait_task_states(kb.adapter, one + [two]) == ["CLOSED", "CLOSED"]
    s = kb.session()
    d1, d2 = (s.listBuilds(taskID=t)[0]["build_id"] for t in (one[0], two))
    final = nvr.replace(".fc45", ".eln150")
    done = kb.adapter.promote_builds(PromoteRequest([d1])).promotions[0]
    assert (done.promoted, done.nvr) == (True, final)
    again = kb.adapter.promote_builds(PromoteRequest([d1])).promotions[0]
    assert (again.promoted, again.nvr) == (True, final)
    clash = kb.adapter.promote_builds(PromoteRequest([d2])).promotions[0]
    assert not clash.promoted
    assert f"Cannot promote build {nvr.replace('.fc45', '.eln150')},draft_{d2}. Reason: " \
        f"Target build exists: {final}(#{d1})" == clash.reason
    with pytest.raises(koji.GenericError, match="Not a draft build"):
        s.promoteBuild(d1)
    # "build already exists": Koji takes the build call; the task fails at initBuild
    dup = _submit(kb, tag, nvr, workflow_id="third")
    assert wait_task_states(kb.adapter, dup) == ["FAILED"]
    [polled] = kb.adapter.poll_tasks(TaskPollRequest(dup)).tasks
    assert f"Target build already exists: {final}" in polled.reason
    plain = kb.adapter.submit_builds(SubmitRequest(
        tag, [BuildSpec(b.component, b.source)
              for b in kb.adapter.get_builds(BuildLookupRequest([nvr])).builds],
        not_before=time.time(), workflow_id="plain", draft=False)).submitted[0].task_id
    assert wait_task_states(kb.adapter, [plain]) == ["FAILED"]
    [polled] = kb.adapter.poll_tasks(TaskPollRequest([plain])).tasks
    assert "Build already exists" in polled.reason and "state=COMPLETE" in polled.reason
    kb.adapter.remove_side_tag(RemoveSideTagRequest(tag))


def test_unknown_target_and_bad_scm_fail_the_task(kb: KojiBackend, unique: str) -> None:
    nvr = kb.rawhide_build(f"ut{unique}")
    src = kb.adapter.get_builds(BuildLookupRequest([nvr])).builds[0].source
    s = kb.session()
    no_target = s.build(src, f"no-such-target-{unique}", {})
    bad_scm = s.build(f"git+https://example.com/rpms/ut{unique}.git#{'0' * 40}", "eln", {})
    assert wait_task_states(kb.adapter, [no_target, bad_scm]) == ["FAILED", "FAILED"]
    with pytest.raises(koji.GenericError, match="No such build target"):
        s.getTaskResult(no_target)
    with pytest.raises(koji.BuildError, match="not in the list of allowed SCMs"):
        s.getTaskResult(bad_scm)


# ----------------------------------------------------------- lookups, multicall
def test_lookups_and_stable_check(kb: KojiBackend, unique: str) -> None:
    assert kb.adapter.get_build_target("eln").build_tag == "eln-build"
    with pytest.raises(KojiPermanentError, match="No such build target"):
        kb.adapter.get_build_target("nope")
    nvr = kb.rawhide_build(f"lk{unique}")
    found, missing = kb.adapter.get_builds(BuildLookupRequest([nvr, "nope-1-1"])).builds
    assert found.found and found.component == f"lk{unique}" and found.build_id > 0
    assert found.source.startswith(f"git+https://src.fedoraproject.org/rpms/lk{unique}.git#")
    assert found.creation_ts > 0
    assert not missing.found and missing.reason == "no such build"
    [latest] = kb.adapter.latest_builds(LatestBuildsRequest("f45", [f"lk{unique}"])).builds
    assert latest.nvr == nvr and latest.build_id == found.build_id
    stable = kb.adapter.check_stable(StableCheckRequest("f45", [nvr, "bash-0-0.fc45"]))
    assert stable.stable == [nvr] and stable.pending == ["bash-0-0.fc45"]


def test_latest_builds_carry_creation_time(kb: KojiBackend, unique: str) -> None:
    nvr = kb.rawhide_build(f"lc{unique}")
    [latest] = kb.adapter.latest_builds(LatestBuildsRequest("f45", [f"lc{unique}"])).builds
    assert latest.nvr == nvr and latest.creation_ts > 0


def test_multicall_with_a_fault_in_the_middle(kb: KojiBackend, unique: str) -> None:
    a, b = kb.rawhide_build(f"ma{unique}"), kb.rawhide_build(f"mb{unique}")
    session = kb.session()
    mc = session.multicall(strict=False)
    mc.getBuild(a)
    mc.getTag("no-such-tag", strict=True)
    mc.getBuild(b)
    first, fault, last = mc.call_all()
    assert first[0]["nvr"] == a and last[0]["nvr"] == b  # results come as [value]
    assert isinstance(fault, dict) and fault["faultCode"] == koji.GenericError.faultCode
    assert "No such tagInfo" in fault["faultString"]
    # the adapter reports per-item faults where its result has room for them
    tag = _side_tag(kb, f"{unique}:build:1")
    result = kb.adapter.tag_builds(TagBuildsRequest(tag, [a, "nope-1-1.fc45", b]))
    assert sorted(result.tagged) == sorted([a, b])
    assert [f.nvr for f in result.failed] == ["nope-1-1.fc45"]
    kb.adapter.remove_side_tag(RemoveSideTagRequest(tag))

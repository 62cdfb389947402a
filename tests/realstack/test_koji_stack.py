"""The Koji real-stack fixture itself: logins, layout, builder, kojira."""

from __future__ import annotations

from typing import Any

import koji
import pytest

from ebs.devstack.waiting import wait_until
from tests.realstack.koji_builder import scm_url
from tests.realstack.koji_stack import EBS_USER, TRIGGER_TAG, KojiStack


def test_layout_and_rawhide_builds(koji_stack: KojiStack) -> None:
    s = koji_stack.session(None)
    target = s.getBuildTarget("eln")
    assert (target["build_tag_name"], target["dest_tag_name"]) == \
        ("eln-build", "eln-updates-candidate")
    assert s.getBuildTarget("rawhide")["dest_tag_name"] == f"{TRIGGER_TAG}-updates-candidate"
    assert s.getBuildConfig("eln-build")["extra"]["rpm.macro.dist"] == ".eln150"
    bash = s.getLatestBuilds(TRIGGER_TAG, package="bash")[0]
    assert bash["nvr"] == "bash-5.2.37-1.fc45" and bash["state"] == koji.BUILD_STATES["COMPLETE"]
    assert s.getBuild(bash["build_id"])["source"] == koji_stack.rawhide_source("bash")
    assert sorted(r["arch"] for r in s.listRPMs(buildID=bash["build_id"])) == ["noarch", "src"]
    assert s.getLatestBuilds("eln", package="bash")[0]["nvr"] == "bash-5.2.37-0.eln150"


def test_logins(koji_stack: KojiStack) -> None:
    ebs = koji_stack.session(EBS_USER)
    assert ebs.getLoggedInUser()["name"] == EBS_USER
    assert not ebs.getPerms()  # a packager: no sidetag_admin, no admin
    remote = koji_stack.hub.remote_user_session(EBS_USER)
    assert remote.getLoggedInUser()["name"] == EBS_USER
    bad = koji.ClientSession(koji_stack.url, opts={"user": EBS_USER, "password": "wrong",
                                                   "max_retries": 0})
    with pytest.raises(koji.AuthError):
        bad.login()


def test_builder_scripts_fail_once_then_succeed(koji_stack_fresh: KojiStack,
                                                unique: str) -> None:
    stack = koji_stack_fresh
    name = f"pkg-{unique}"
    stack.add_package(name)
    src = stack.builder.register_source(name, "1.0", "1")
    stack.builder.script(name, "fail", "succeed")
    admin = stack.admin()
    first = admin.build(src, "eln", {"draft": True})
    info = stack.wait_tasks(admin, [first], require_closed=False)[0]
    assert info["state"] == koji.TASK_STATES["FAILED"]
    with pytest.raises(koji.BuildError, match="mock exited with status 1"):
        admin.getTaskResult(first)
    children = admin.getTaskChildren(first)
    assert [c["method"] for c in children] == ["buildArch"]
    second = admin.build(src, "eln", {"draft": True})
    stack.wait_tasks(admin, [second])
    [build] = admin.listBuilds(taskID=second)
    assert build["draft"] and build["nvr"] == f"{name}-1.0-1.eln150,draft_{build['build_id']}"
    assert [b["nvr"] for b in admin.listTagged("eln-updates-candidate", package=name)] == \
        [build["nvr"]]
    assert stack.builder.attempts(name) == 2


def test_builder_holds_until_released(koji_stack_fresh: KojiStack, unique: str) -> None:
    stack = koji_stack_fresh
    name = f"pkg-{unique}"
    stack.add_package(name)
    src = stack.builder.register_source(name, "1.0", "1")
    stack.builder.script(name, "hold")
    admin = stack.admin()
    task = admin.build(src, "eln", {"scratch": True})
    wait_until(lambda: name in stack.builder.held().values(), 30,
               f"the build of {name} to start (and be held)")
    assert admin.getTaskInfo(task)["state"] == koji.TASK_STATES["OPEN"]
    stack.builder.release(name)
    stack.wait_tasks(admin, [task])


def test_kojira_serves_requests_only(koji_stack_fresh: KojiStack, unique: str) -> None:
    """Like Koji 1.35's kojira: tagging makes no repo; a request does."""
    stack = koji_stack_fresh
    ebs = stack.session(EBS_USER)
    side = ebs.createSideTag("eln-build")
    try:
        ebs.tagBuild(side["id"], stack.rawhide_nvrs["sed"])
        passes = stack.kojira.passes
        wait_until(lambda: stack.kojira.passes >= passes + 3, 30,
                   lambda: f"3 kojira passes (done {stack.kojira.passes - passes})")
        assert ebs.getRepo(side["name"]) is None
        check = ebs.repo.request(side["name"], min_event="last")
        assert check["repo"] is None
        req_id = check["request"]["id"]
        status: dict[str, Any] = {}

        def served() -> bool:
            nonlocal status
            status = ebs.repo.checkRequest(req_id)
            return bool(status["repo"])

        wait_until(served, 30, lambda: f"repo request {req_id} served (last {status})",
                   interval=0.1)
        repo = ebs.getRepo(side["name"])
        assert repo["state"] == koji.REPO_STATES["READY"]
        assert repo["id"] == status["repo"]["id"]
        assert repo["create_event"] >= check["request"]["min_event"]
    finally:
        ebs.removeSideTag(side["id"])


def test_scm_url_is_fedora_shaped() -> None:
    assert scm_url("bash", "1", "1").startswith("git+https://src.fedoraproject.org/rpms/bash.git#")


def test_without_hub_source_the_tests_skip_with_a_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.realstack import hubenv

    monkeypatch.delenv("EBS_KOJI_HUB_SRC", raising=False)
    monkeypatch.setattr(hubenv, "vendor_archive", lambda: None)
    assert hubenv.hub_source() is None
    assert "EBS_KOJI_HUB_SRC" in hubenv.SKIP_REASON and "\n" not in hubenv.SKIP_REASON
    monkeypatch.setenv("EBS_KOJI_HUB_SRC", "/nonexistent/koji")
    with pytest.raises(FileNotFoundError):  # pointed somewhere wrong: an error, not a skip
        hubenv.hub_source()

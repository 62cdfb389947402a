"""The Koji simulator through the real koji.ClientSession, over HTTP."""

from __future__ import annotations

import json
import re
import time
from typing import TYPE_CHECKING, Any

import koji
import pytest
import requests
from koji_fedoramessaging_messages.build import BuildStateChangeV1
from koji_fedoramessaging_messages.repo import DoneV1, InitV1
from koji_fedoramessaging_messages.tag import TagV1, UntagV1
from koji_fedoramessaging_messages.task import TaskStateChangeV1

from ebs.simulator import FaultRule, ListSink, Simulator

if TYPE_CHECKING:
    from tests.helpers.sim import SimWithSink

pytest_plugins = ["tests.helpers.sim"]

SCHEMAS = {
    "buildsys.tag": TagV1, "buildsys.untag": UntagV1, "buildsys.repo.init": InitV1,
    "buildsys.repo.done": DoneV1, "buildsys.task.state.change": TaskStateChangeV1,
    "buildsys.build.state.change": BuildStateChangeV1,
}


def validate_all(sink: ListSink) -> int:
    """Validate every published message against its koji-fedoramessaging schema."""
    for m in sink.messages:
        # JSON round trip: what goes over the wire
        SCHEMAS[m.topic](topic=m.topic, body=json.loads(json.dumps(m.body))).validate()
    return len(sink.messages)


def rawhide_src(session: koji.ClientSession, nvr: str) -> str:
    return str(session.getBuild(nvr, strict=True)["source"])


@pytest.fixture
def session(sim: Simulator) -> koji.ClientSession:
    return sim.session()


def test_client_session_talks_to_the_hub(sim: SimWithSink, session: koji.ClientSession) -> None:
    assert session.getAPIVersion() == koji.API_VERSION
    assert session.hello() == "Hello World!"
    assert session.hub_version_str == "1.36.1"  # from the Koji-Version header
    assert session.getLoggedInUser()["name"] == "elnbuildsync"
    assert session.getBuildTarget("eln") == {
        "id": session.getBuildTarget("eln")["id"], "name": "eln",
        "build_tag": session.getTag("eln-build")["id"], "build_tag_name": "eln-build",
        "dest_tag": session.getTag("eln")["id"], "dest_tag_name": "eln"}
    assert session.getBuildTarget("nope") is None
    assert session.getLastEvent()["id"] == sim.world.last_event


def test_multicall_keywords_faults_and_one_request(sim: SimWithSink,
                                                   session: koji.ClientSession) -> None:
    before = sim.hub_requests()
    with session.multicall() as mc:
        latest = mc.listTagged("f45", latest=True, package="bash")
        missing = mc.getBuild("nope-1-1")
        bad = mc.getTag("no-such-tag", strict=True)
        wrong = mc.getBuild()  # missing argument
    assert sim.hub_requests() - before == 1
    assert [b["nvr"] for b in latest.result] == ["bash-5.2.37-1.fc45"]
    assert missing.result is None
    with pytest.raises(koji.GenericError, match="No such tagInfo"):
        _ = bad.result
    with pytest.raises(koji.ParameterError):
        _ = wrong.result
    inner = [c for c in sim.calls if c.in_multicall]
    assert [c.method for c in inner] == ["listTagged", "getBuild", "getTag", "getBuild"]
    assert inner[0].kwargs == {"latest": True, "package": "bash"}
    strict = session.multicall(strict=True)
    strict.getTag("x", strict=True)
    with pytest.raises(koji.GenericError, match="No such tagInfo"):
        strict.call_all()


def test_scripted_faults_surface_like_koji(sim: SimWithSink, session: koji.ClientSession) -> None:
    sim.add_fault(FaultRule.auth_failure("getTag", times=1))
    with pytest.raises(koji.AuthError, match="Not logged-in"):
        session.getTag("eln")
    assert session.getTag("eln")["name"] == "eln"  # fired once

    sim.add_fault(FaultRule("getBuild", "http500"))
    with pytest.raises(requests.HTTPError) as err:
        session.getBuild("bash-5.2.37-1.fc45")
    assert err.value.response.status_code == 500
    assert session.getBuild("bash-5.2.37-1.fc45")

    sim.add_fault(FaultRule.transient("getRepo"))
    with pytest.raises(koji.ServerOffline):
        session.getRepo("eln-build")

    sim.add_fault(FaultRule("getLastEvent", "timeout", delay=2.0))
    slow = sim.session(timeout=0.3)
    with pytest.raises(requests.exceptions.Timeout):
        slow.getLastEvent()


def test_side_tags_and_their_targets(sim: SimWithSink, session: koji.ClientSession) -> None:
    st = session.createSideTag("eln-build")
    assert st["name"] == f"eln-build-side-{st['id']}"
    target = session.getBuildTarget(st["name"])
    assert target["build_tag"] == target["dest_tag"] == st["id"]
    tag = session.getTag(st["name"])
    assert tag["extra"]["sidetag"] is True and tag["extra"]["sidetag_user"] == "elnbuildsync"
    assert tag["extra"]["rpm.macro.dist"] == ".eln150"  # inherited from eln-build

    session.editSideTag(st["name"], extra={"ebs_request_key": "k1"})
    assert session.getTag(st["id"])["extra"]["ebs_request_key"] == "k1"
    listed = session.listSideTags(basetag="eln-build", user="elnbuildsync")
    assert listed == [{"id": st["id"], "name": st["name"], "user_id": 1,
                       "user_name": "elnbuildsync"}]
    with pytest.raises(koji.GenericError, match="Not a sidetag"):
        session.removeSideTag("eln")
    with pytest.raises(koji.GenericError, match="suffix is not allowed"):
        session.createSideTag("eln-build", suffix="x")

    session.removeSideTag(st["name"])
    assert session.getTag(st["name"]) is None and session.getBuildTarget(st["name"]) is None
    assert sim.side_tags_created == sim.side_tags_removed == [st["name"]]
    with pytest.raises(koji.GenericError, match="No such tagInfo"):
        session.removeSideTag(st["name"])


def test_editing_extra_needs_sidetag_admin() -> None:
    with Simulator(seed=3, default_user_perms=()) as sim:
        session = sim.session()
        st = session.createSideTag("eln-build")
        with pytest.raises(koji.GenericError, match="sidetag_admin"):
            session.editSideTag(st["id"], extra={"k": "v"})


def test_draft_build_promotion_and_conflict(sim: SimWithSink,
                                            session: koji.ClientSession) -> None:
    st = session.createSideTag("eln-build")["name"]
    src = rawhide_src(session, "bash-5.2.37-1.fc45")
    first = session.build(src, st, {"draft": True}, priority=5)
    second = session.build(src, st, {"draft": True}, priority=5)
    assert sim.settle()
    assert session.getTaskInfo(first)["priority"] == koji.PRIO_DEFAULT + 5
    drafts = [session.listBuilds(taskID=t)[0] for t in (first, second)]
    for b in drafts:
        assert b["draft"] is True and b["state"] == koji.BUILD_STATES["COMPLETE"]
        assert b["nvr"] == f"bash-5.2.37-1.eln150,draft_{b['build_id']}"
        assert b["source"] == src and b["task_id"] in (first, second)
    assert {b["nvr"] for b in session.listTagged(st)} == {b["nvr"] for b in drafts}

    promoted = session.promoteBuild(drafts[0]["build_id"])
    assert promoted["nvr"] == "bash-5.2.37-1.eln150" and promoted["draft"] is False
    assert session.getBuild("bash-5.2.37-1.eln150")["id"] == drafts[0]["build_id"]
    with pytest.raises(koji.GenericError, match="Target build exists"):
        session.promoteBuild(drafts[1]["build_id"])
    with pytest.raises(koji.GenericError, match="Not a draft build"):
        session.promoteBuild(drafts[0]["build_id"])

    # Once the NVR exists for real, another build of it fails.
    third = session.build(src, st, {"draft": True})
    assert sim.settle()
    assert session.getTaskInfo(third)["state"] == koji.TASK_STATES["FAILED"]
    with pytest.raises(koji.GenericError, match="Target build already exists"):
        session.getTaskResult(third)


def test_scratch_build_makes_no_build_and_announces_its_task(sim: SimWithSink,
                                                             session: koji.ClientSession) -> None:
    src = rawhide_src(session, "grep-3.11-10.fc45")
    task_id = session.build(src, "eln", {"scratch": True})
    assert sim.settle()
    assert session.getTaskInfo(task_id)["state"] == koji.TASK_STATES["CLOSED"]
    assert session.listBuilds(taskID=task_id) == []
    changes = sim.sink.bodies("buildsys.task.state.change")
    assert [(b["old"], b["new"]) for b in changes] == [("FREE", "OPEN"), ("OPEN", "CLOSED")]
    assert changes[-1]["info"]["request"] == [src, "eln", {"scratch": True}]
    assert changes[-1]["srpm"] == src.split("/")[-1]
    assert validate_all(sim.sink) >= 2
    # Like the real hub, the call is taken; the task fails.
    both = session.build(src, "eln", {"scratch": True, "draft": True})
    assert sim.settle()
    with pytest.raises(koji.GenericError, match="cannot be used together"):
        session.getTaskResult(both)


def test_task_progression_messages_and_tagging(sim: SimWithSink,
                                               session: koji.ClientSession) -> None:
    sim.set_duration("bash", 0.3)
    st = session.createSideTag("eln-build")
    src = rawhide_src(session, "bash-5.2.37-1.fc45")
    task_id = session.build(src, st["name"], {"draft": True})
    sim.wait_for(lambda: session.getTaskInfo(task_id)["state"] == koji.TASK_STATES["OPEN"])
    with pytest.raises(koji.GenericError, match="not finished"):
        session.getTaskResult(task_id)
    sim.wait_for(lambda: session.getTaskInfo(task_id)["state"] == koji.TASK_STATES["CLOSED"])
    children = session.getTaskChildren(task_id)
    assert [c["method"] for c in children] == ["buildSRPMFromSCM"] + ["buildArch"] * 4 + \
        ["tagBuild"]
    assert all(c["state"] == koji.TASK_STATES["CLOSED"] for c in children)
    assert sim.settle()
    topics = [m.topic for m in sim.sink.messages]
    assert topics == ["buildsys.repo.init",  # the side tag's repo, copied from eln-build
                      "buildsys.build.state.change", "buildsys.build.state.change",
                      "buildsys.tag", "buildsys.repo.init", "buildsys.repo.done"]
    states = sim.sink.bodies("buildsys.build.state.change")
    assert [(b["old"], b["new"]) for b in states] == [(None, 0), (0, 1)]
    assert states[1]["task_id"] == task_id and states[1]["request"][2] == {"draft": True}
    tag = sim.sink.bodies("buildsys.tag")[0]
    assert tag["tag"] == st["name"] and tag["user"] == "elnbuildsync"
    assert validate_all(sim.sink) == 6
    assert "buildsys.task.state.change" not in topics  # Fedora: scratch tasks only


def test_all_task_messages_when_asked() -> None:
    sink = ListSink()
    with Simulator(seed=2, sink=sink, task_messages="all") as sim:
        session = sim.session()
        task_id = session.build(rawhide_src(session, "sed-4.9-4.fc45"), "eln", {"draft": True})
        assert sim.settle()
        changes = sink.bodies("buildsys.task.state.change")
        assert [(b["id"], b["new"]) for b in changes] == [(task_id, "OPEN"), (task_id, "CLOSED")]
        assert validate_all(sink) > 2


def test_scripted_outcomes_failures_hangs_and_cancel(sim: SimWithSink,
                                                     session: koji.ClientSession) -> None:
    sim.set_outcomes("bash", ["FAILED", "CLOSED"])
    sim.set_outcomes("sed", "HANG")
    bash = rawhide_src(session, "bash-5.2.37-1.fc45")
    first = session.build(bash, "eln", {"draft": True})
    second = session.build(bash, "eln", {"draft": True})
    hang = session.build(rawhide_src(session, "sed-4.9-4.fc45"), "eln", {"draft": True})
    assert sim.settle()
    info = session.getTaskInfo([first, second, hang])
    assert [koji.TASK_STATES[i["state"]] for i in info] == ["FAILED", "CLOSED", "OPEN"]
    with pytest.raises(koji.BuildError, match=r"error building package \(arch \w+\)"):
        session.getTaskResult(first)
    assert session.listBuilds(taskID=first)[0]["state"] == koji.BUILD_STATES["FAILED"]
    failed_children = [c for c in session.getTaskChildren(first)
                       if c["state"] == koji.TASK_STATES["FAILED"]]
    assert len(failed_children) == 1 and failed_children[0]["method"] == "buildArch"

    session.cancelTask(hang)
    assert session.getTaskInfo(hang)["state"] == koji.TASK_STATES["CANCELED"]
    assert session.listBuilds(taskID=hang)[0]["state"] == koji.BUILD_STATES["CANCELED"]
    with pytest.raises(koji.GenericError, match="canceled"):
        session.getTaskResult(hang)

    unknown = session.build("git+https://src.fedoraproject.org/rpms/bash.git#" + "0" * 40, "eln")
    assert sim.settle()
    with pytest.raises(koji.BuildError, match="GIT command"):
        session.getTaskResult(unknown)
    no_target = session.build(bash, "no-such-target")  # taken, like the real hub's
    assert sim.settle()
    with pytest.raises(koji.GenericError, match="No such build target"):
        session.getTaskResult(no_target)


def test_list_tasks_filters(sim: SimWithSink, session: koji.ClientSession) -> None:
    since = time.time() - 0.001
    src = rawhide_src(session, "bash-5.2.37-1.fc45")
    task_id = session.build(src, "eln", {"draft": True, "custom_user_metadata": {"k": "v"}})
    me = session.getLoggedInUser()["id"]
    rows = session.listTasks({"owner": me, "method": "build", "createdAfter": since,
                              "decode": True}, {"order": "id"})
    assert [r["id"] for r in rows] == [task_id]
    assert rows[0]["request"] == [src, "eln", {"draft": True, "custom_user_metadata": {"k": "v"}}]
    assert rows[0]["owner_name"] == "elnbuildsync"
    encoded = session.listTasks({"owner": me, "method": "build", "createdAfter": since})
    assert encoded[0]["request"].startswith("<?xml")
    later = time.time() + 60
    assert session.listTasks({"owner": me, "createdAfter": later}) == []
    assert session.listTasks({"owner": me, "method": "build"}, {"countOnly": True}) == 1
    with pytest.raises(koji.ParameterError):
        session.listTasks({"bogus": 1})


def test_repo_regenerates_after_tagging(sim: SimWithSink, session: koji.ClientSession) -> None:
    st = session.createSideTag("eln-build")
    first = session.getRepo(st["name"])  # copied from eln-build's repo at creation
    assert first["state"] == koji.REPO_STATES["READY"]
    sim.set_repo_delay(0.5)
    task_id = session.tagBuild(st["name"], "bash-5.2.37-1.fc45")
    sim.wait_for(lambda: session.listTagged(st["name"]))
    tag_event = session.listTagged(st["name"])[0]["create_event"]
    assert session.getRepo(st["name"])["id"] == first["id"]  # regeneration under way
    assert sim.settle()
    repo = session.getRepo(st["name"])
    assert repo["state"] == koji.REPO_STATES["READY"] and repo["create_event"] > tag_event
    assert session.getTaskInfo(task_id)["method"] == "tagBuild"
    assert session.getTaskInfo(task_id)["state"] == koji.TASK_STATES["CLOSED"]
    again = session.tagBuild(st["name"], "bash-5.2.37-1.fc45")
    assert sim.settle()
    with pytest.raises(koji.TagError, match="already tagged"):
        session.getTaskResult(again)
    session.untagBuild(st["name"], "bash-5.2.37-1.fc45")
    assert session.listTagged(st["name"]) == []
    assert sim.settle()
    topics = [m.topic for m in sim.sink.messages]
    assert topics.count("buildsys.untag") == 1 and topics.count("buildsys.repo.done") == 2
    validate_all(sim.sink)


def test_lost_response_still_creates_the_task(sim: SimWithSink,
                                              session: koji.ClientSession) -> None:
    sim.add_fault(FaultRule("build", "http500", after=True))
    src = rawhide_src(session, "bash-5.2.37-1.fc45")
    with pytest.raises(requests.HTTPError):
        with session.multicall() as mc:
            mc.build(src, "eln", {"draft": True})
    assert len(sim.builds_submitted) == 1


def test_same_seed_same_world() -> None:
    def run(seed: int) -> list[Any]:
        with Simulator(seed=seed) as sim:
            sim.set_outcomes("bash", ["FAILED"])
            session = sim.session()
            b = sim.add_rawhide_build("newpkg", "1.0", "1")
            task_id = session.build(session.getBuild("bash-5.2.37-1.fc45")["source"], "eln")
            sim.settle()
            with pytest.raises(koji.BuildError) as err:
                session.getTaskResult(task_id)
            return [b.source, b.id, task_id, str(err.value),
                    session.getBuild("glibc-2.41.9000-5.fc45")["owner_name"]]

    assert run(7) == run(7)
    assert run(7)[0] != run(8)[0]


def test_control_endpoint_and_content_resolver(sim: SimWithSink) -> None:
    r = requests.post(f"{sim.url}/_sim/script", timeout=5,
                      json={"outcomes": {"bash": ["FAILED", "CLOSED"]}, "repo_delay": 0.02,
                            "faults": [{"method": "getTag", "kind": "http500", "times": 1}]})
    assert r.status_code == 200 and r.json()["outcomes"]["bash"] == ["FAILED", "CLOSED"]
    bad = requests.post(f"{sim.url}/_sim/script", json={"outcomes": {"x": ["MAYBE"]}}, timeout=5)
    assert bad.status_code == 400 and "MAYBE" in bad.json()["error"]
    made = requests.post(f"{sim.url}/_sim/rawhide-build", timeout=5,
                         json={"name": "hello", "version": "2.12", "release": "1"}).json()
    assert made["nvr"] == "hello-2.12-1.fc45"
    assert re.fullmatch(r"git\+https://src\.fedoraproject\.org/rpms/hello\.git#[0-9a-f]{40}",
                        made["source"])
    assert sim.flush()
    tag_msg = sim.sink.bodies("buildsys.tag")[-1]
    assert (tag_msg["tag"], tag_msg["name"], tag_msg["user"]) == ("f45", "hello", "bodhi")
    with pytest.raises(requests.HTTPError):
        sim.session().getTag("eln")
    calls = requests.get(f"{sim.url}/_sim/calls?method=getTag", timeout=5).json()
    assert [c["method"] for c in calls] == ["getTag"]
    state = requests.get(f"{sim.url}/_sim/state", timeout=5).json()
    assert state["hub_url"] == sim.hub_url and state["trigger_tag"] == "f45"

    listing = requests.get(f"{sim.content_resolver_url}/view-source-package-name-list--view-eln"
                           ".txt", timeout=5)
    assert listing.status_code == 200 and "bash" in listing.text.split()
    assert requests.get(f"{sim.content_resolver_url}/view-source-package-name-list--view-nope"
                        ".txt", timeout=5).status_code == 404
    page = requests.get(f"{sim.weburl}/buildinfo?buildID={made['id']}", timeout=5)
    assert "hello-2.12-1.fc45" in page.text


def test_message_chaos_at_the_sink(sim: SimWithSink) -> None:
    sim.set_repo_delay(60)  # keep repo messages out of the way
    sim.set_chaos(duplicate=1.0)
    sim.add_rawhide_build("one", "1", "1")
    assert sim.flush()
    tags = [(m.topic, m.body.get("name")) for m in sim.sink.messages]
    assert tags == [("buildsys.tag", "one"), ("buildsys.tag", "one"),
                    ("buildsys.repo.init", None), ("buildsys.repo.init", None)]
    sim.sink.clear()
    sim.set_chaos(drop=1.0)
    sim.add_rawhide_build("two", "1", "1")
    assert sim.flush() and sim.sink.messages == []
    sim.set_chaos(reorder=1.0)
    sim.add_rawhide_build("three", "1", "1")
    sim.add_rawhide_build("four", "1", "1")
    assert sim.flush()
    # tag(three) is held back and delivered after the next message
    assert [m.body.get("name") for m in sim.sink.messages][:2] == ["four", "three"]
    fates = [d.fate for d in sim.world.outbox.log]
    assert fates.count("dropped") == 1 and "reordered" in fates


def test_reset_gives_a_fresh_world(sim: SimWithSink) -> None:
    session = sim.session()
    session.createSideTag("eln-build")
    sim.reset()
    assert sim.session().listSideTags() == []
    assert sim.calls == [c for c in sim.calls if c.method == "listSideTags"]


def test_bodhi_is_mounted(sim: SimWithSink) -> None:
    if sim.bodhi_app is None:
        pytest.skip("ebs.simulator.bodhi not available")
    r = requests.get(f"{sim.bodhi_url}/releases/", params={"state": "pending"}, timeout=5)
    assert r.status_code == 200
    view = sim.koji_view()
    assert view.tag_exists("eln") and not view.tag_exists("nope")
    view.tag_nvr("eln-updates-candidate", "bash-5.2.37-1.fc45")
    assert view.tagged_nvrs("eln-updates-candidate") == ["bash-5.2.37-1.fc45"]
    view.untag_nvr("eln-updates-candidate", "bash-5.2.37-1.fc45")
    assert view.tagged_nvrs("eln-updates-candidate") == []


def test_sandbox_activity_ships_new_rawhide_builds(sim: SimWithSink) -> None:
    sim.set_repo_delay(60)
    sim.start_activity(0.01)
    sim.wait_for(lambda: len(sim.sink.bodies("buildsys.tag")) >= 3, timeout=5)
    tags = sim.sink.bodies("buildsys.tag")[:3]
    session = sim.session()
    for body in tags:
        assert body["tag"] == "f45"
        nvr = f"{body['name']}-{body['version']}-{body['release']}"
        assert session.getBuild(nvr)["source"].startswith("git+https://src.fedoraproject.org/")

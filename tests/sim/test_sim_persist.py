"""The simulator's world survives a restart through its state file (--state-file)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import koji
import pytest
from bodhi.client.bindings import BodhiClient

from ebs.cli import run_cli
from ebs.simulator import ListSink, Simulator, StateFileError

ST = koji.TASK_STATES
BS = koji.BUILD_STATES


class Sims:
    """Simulators on one state file, each on its own free port; all stopped at the end."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.running: list[Simulator] = []

    def start(self, **kwargs: Any) -> Simulator:
        sim = Simulator(seed=1, sink=ListSink(), state_file=self.path, **kwargs)
        sim.start("127.0.0.1", 0)
        self.running.append(sim)
        return sim

    def stop(self, sim: Simulator) -> None:
        sim.stop()
        self.running.remove(sim)


@pytest.fixture
def sims(tmp_path: Path) -> Iterator[Sims]:
    s = Sims(tmp_path / "state" / "simulator.json")
    try:
        yield s
    finally:
        for sim in list(s.running):
            sim.stop()


def sink_of(sim: Simulator) -> ListSink:
    assert isinstance(sim.sink, ListSink)
    return sim.sink


def task_state(session: koji.ClientSession, task_id: int) -> str:
    return str(ST[session.getTaskInfo(task_id, strict=True)["state"]])


def wait_until(sim: Simulator, predicate: Callable[[], Any], timeout: float = 10) -> Any:
    return sim.wait_for(predicate, timeout=timeout, interval=0.02)


def test_an_interrupted_draft_build_resumes_after_a_restart(sims: Sims, tmp_path: Path) -> None:
    first = sims.start()
    assert not first.restored
    k1 = first.session()
    side = k1.createSideTag("eln-build")["name"]
    tag_task = k1.tagBuild(side, "bash-5.2.37-1.fc45")
    wait_until(first, lambda: task_state(k1, tag_task) == "CLOSED")
    # A scripted outcome sequence, partly used up before the restart.
    first.set_outcomes("coreutils", ["FAILED", "CLOSED"])
    failing = k1.build(k1.getBuild("coreutils-9.6-2.fc45")["source"], side, {"draft": True})
    wait_until(first, lambda: task_state(k1, failing) == "FAILED")
    # The build the restart interrupts: it runs for a couple of seconds.
    first.set_duration("bash", 1.5)
    running = k1.build(k1.getBuild("bash-5.2.37-1.fc45")["source"], side, {"draft": True})
    wait_until(first, lambda: task_state(k1, running) == "OPEN")
    draft = k1.listBuilds(taskID=running)[0]
    assert draft["draft"] and draft["state"] == BS["BUILDING"]
    last_event = k1.getLastEvent()["id"]
    old_port = first.port
    sims.stop(first)
    saved = json.loads(sims.path.read_text())
    assert (saved["format"], saved["version"]) == ("ebs-simulator-state", 1)

    second = sims.start()
    assert second.restored and second.port != old_port
    k2 = second.session()
    # Side tag, its builds, the task and the draft build are all there.
    assert k2.getTag(side)["extra"]["sidetag"] is True
    assert side in [t["name"] for t in k2.listSideTags()]
    assert [b["nvr"] for b in k2.listTagged(side)] == ["bash-5.2.37-1.fc45"]
    assert task_state(k2, tag_task) == "CLOSED"
    assert task_state(k2, failing) == "FAILED"
    assert task_state(k2, running) == "OPEN"
    assert k2.getBuild(draft["build_id"])["nvr"] == draft["nvr"]
    assert k2.getLastEvent()["id"] == last_event
    assert second.script.outcomes["coreutils"] == ["CLOSED"]  # FAILED was used up
    # The interrupted build finishes on the new simulator and announces it.
    wait_until(second, lambda: task_state(k2, running) == "CLOSED")
    assert second.flush()
    done = [b for b in sink_of(second).bodies("buildsys.build.state.change")
            if b["build_id"] == draft["build_id"]]
    assert [(b["old"], b["new"]) for b in done] == [(BS["BUILDING"], BS["COMPLETE"])]
    assert done[0]["task_id"] == running
    assert done[0]["url"].startswith(second.url)  # the new address, not the old one
    assert draft["nvr"] in [b["nvr"] for b in k2.listTagged(side)]
    # Ids go on from where they were: nothing is handed out twice.
    assert k2.createSideTag("eln-build")["id"] > k2.getTag(side)["id"]
    again = k2.build(k2.getBuild("coreutils-9.6-2.fc45")["source"], side, {"draft": True})
    assert again > running
    assert k2.getLastEvent()["id"] > last_event
    wait_until(second, lambda: task_state(k2, again) == "CLOSED")  # the scripted CLOSED
    promoted = k2.promoteBuild(draft["build_id"])
    assert promoted["nvr"] == "bash-5.2.37-1.eln150" and not promoted["draft"]
    assert k2.listBuilds(taskID=again)[0]["build_id"] > draft["build_id"]

    # The promotion is saved too (and the removed side tag stays removed).
    k2.removeSideTag(side)
    sims.stop(second)
    third = sims.start()
    k3 = third.session()
    assert k3.getBuild(draft["build_id"])["nvr"] == "bash-5.2.37-1.eln150"
    assert k3.getBuild(draft["build_id"])["promoter_name"] == "elnbuildsync"
    assert k3.getTag(side) is None
    assert k3.getTag(side, event=last_event)["name"] == side  # history is kept


def test_pending_starts_tag_tasks_and_repo_regenerations_resume(sims: Sims) -> None:
    first = sims.start()
    first.script_update({"start_delay": 0.3, "tag_task_delay": 0.3, "repo_delay": 0.3})
    k1 = first.session()
    queued = k1.build(k1.getBuild("sed-4.9-4.fc45")["source"], "eln")
    tag_task = k1.tagBuild("eln", "grep-3.11-10.fc45")
    first.add_rawhide_build("xz", "5.8.2", "1")  # f45 changed: f45-build regenerates
    assert task_state(k1, queued) == "FREE" and task_state(k1, tag_task) == "FREE"
    sims.stop(first)  # before any of them ran

    second = sims.start()
    k2 = second.session()
    assert second.world.timed  # the three actions wait on the new scheduler
    wait_until(second, lambda: task_state(k2, queued) == "CLOSED"
               and task_state(k2, tag_task) == "CLOSED")
    assert second.settle()
    assert "grep-3.11-10.fc45" in [b["nvr"] for b in k2.listTagged("eln")]
    assert "sed-4.9-4.eln150" in [b["nvr"] for b in k2.listTagged("eln")]
    # f45-build's regeneration began before the restart and finished after it.
    init = [b for b in sink_of(first).bodies("buildsys.repo.init") if b["tag"] == "f45-build"]
    assert not [b for b in sink_of(first).bodies("buildsys.repo.done")
                if b["tag"] == "f45-build"]
    done = [b for b in sink_of(second).bodies("buildsys.repo.done") if b["tag"] == "f45-build"]
    assert [b["repo_id"] for b in done] == [b["repo_id"] for b in init]
    assert k2.getRepo("f45-build")["id"] == init[0]["repo_id"]


def test_stop_and_start_of_one_simulator_resumes_pending_work(sims: Sims) -> None:
    sim = sims.start()
    sim.script_update({"start_delay": 0.3})
    session = sim.session()
    queued = session.build(session.getBuild("sed-4.9-4.fc45")["source"], "eln")
    sim.stop()
    sim.start("127.0.0.1", 0)
    session = sim.session()
    wait_until(sim, lambda: task_state(session, queued) == "CLOSED")


def test_bodhi_updates_and_their_stable_push_survive(sims: Sims, tmp_path: Path) -> None:
    first = sims.start()
    assert first.bodhi_app is not None
    first.bodhi_app.stable_after = 1.0
    k1 = first.session()
    side = k1.createSideTag("eln-build")["name"]
    k1.tagBuild(side, "bash-5.2.37-1.fc45")
    wait_until(first, lambda: k1.listTagged(side))
    client = BodhiClient(base_url=f"{first.bodhi_url}/", id_provider=f"{first.bodhi_url}/oidc",
                         oidc_storage_path=str(tmp_path / "oidc.json"))
    alias = client.save(from_tag=side, notes="ELN rebuild batch", type="unspecified")["alias"]
    sims.stop(first)  # before it went stable

    second = sims.start()
    assert second.bodhi_app is not None
    update = second.bodhi_app.update(alias)
    assert (update.status, update.from_tag, update.builds) == (
        "pending", side, ["bash-5.2.37-1.fc45"])
    k2 = second.session()
    wait_until(second, lambda: second.bodhi_app.update(alias).status == "stable")  # type: ignore[union-attr]
    assert "bash-5.2.37-1.fc45" in [b["nvr"] for b in k2.listTagged("eln")]
    assert k2.getTag(side) is None  # Bodhi removed the side tag
    # The same side tag cannot be used twice, on the restored Bodhi either.
    client2 = BodhiClient(base_url=f"{second.bodhi_url}/",
                          id_provider=f"{second.bodhi_url}/oidc",
                          oidc_storage_path=str(tmp_path / "oidc2.json"))
    assert client2.query(from_side_tag_name=side)["updates"][0]["alias"] == alias


def test_changes_are_saved_while_running(sims: Sims) -> None:
    """What a crash (no clean stop) would leave: the last save, soon after a change."""
    sim = sims.start(save_interval=0.1)
    session = sim.session()
    side = session.createSideTag("eln-build")["name"]
    wait_until(sim, lambda: side in sims.path.read_text(), timeout=5)
    seen = Simulator(seed=1, state_file=sims.path)  # loads it, never starts or saves
    assert seen.restored and seen.world.get_tag(side) is not None
    sim.set_outcomes("bash", ["FAILED"])  # a script change alone is saved too
    wait_until(sim, lambda: json.loads(sims.path.read_text())["koji"]["script"]["outcomes"]
               == {"bash": ["FAILED"]}, timeout=5)


@pytest.mark.parametrize("content, complaint", [
    ("{not json", "is corrupt (not JSON"),
    ("", "is corrupt (not JSON"),
    ('{"format": "something-else"}', "is not an ebs simulator state file"),
    ('{"format": "ebs-simulator-state", "version": 99, "layout": {}, "koji": {}}',
     "has format version 99"),
    ('{"format": "ebs-simulator-state", "version": 1, "layout": {}, "koji": {}}',
     "is corrupt: bad layout"),
])
def test_an_unusable_state_file_is_a_clear_error(tmp_path: Path, content: str,
                                                 complaint: str) -> None:
    path = tmp_path / "simulator.json"
    path.write_text(content)
    with pytest.raises(StateFileError) as caught:
        Simulator(seed=1, state_file=path)
    message = str(caught.value)
    assert str(path) in message and complaint in message and "\n" not in message
    assert path.read_text() == content  # left alone


def test_a_bad_world_in_a_valid_file_is_refused(sims: Sims) -> None:
    sims.stop(sims.start())
    data = json.loads(sims.path.read_text())
    del data["koji"]["tasks"][0]["owner_id"]
    sims.path.write_text(json.dumps(data))
    with pytest.raises(StateFileError,
                       match=r"bad Koji world data \(tasks\.0\.owner_id: Field required"):
        Simulator(seed=1, state_file=sims.path)


def test_bad_bodhi_settings_are_refused_when_loading(sims: Sims) -> None:
    sims.stop(sims.start())
    data = json.loads(sims.path.read_text())
    data["bodhi"]["settings"]["auth"] = "magic"
    sims.path.write_text(json.dumps(data))
    with pytest.raises(StateFileError, match="is corrupt: bad Bodhi data .*auth must be"):
        Simulator(seed=1, state_file=sims.path)


def test_cli_reports_a_corrupt_file_in_one_line(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "simulator.json"
    path.write_text("\x00garbage")
    assert run_cli(["sim", "--port", "0", "--state-file", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("ebs sim: error: ") and str(path) in err


def test_ebs_sim_saves_on_sigterm_and_reloads(tmp_path: Path) -> None:
    path = tmp_path / "simulator.json"

    def run() -> tuple[subprocess.Popen[str], str]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ebs.simulator", "--port", "0", "--state-file", str(path)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        assert proc.stdout is not None
        deadline = time.monotonic() + 30
        lines = []
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if line.startswith("ebs simulator: state in"):
                hub = next(x for x in lines if "Koji hub" in x).split()[4]
                return proc, hub
            assert line, f"ebs sim exited: {lines}"
        raise AssertionError("ebs sim did not start")

    proc, hub = run()
    try:
        side = koji.ClientSession(hub).createSideTag("eln-build")["name"]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    proc, hub = run()
    try:
        assert koji.ClientSession(hub).getTag(side)["name"] == side
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0

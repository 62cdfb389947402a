"""Koji decides which build is rebuilt (issue 18): at batch start every queued
component is resolved against the trigger tag, whatever the messages said.

The scenarios run the real worker on the time-skipping server against the
simulator over HTTP. Koji state is changed through the Koji API (tagBuild,
untagBuild, getLatestBuilds) by `TriggerTag`; only making a new build is
simulator-specific (`new_build`), so the bodies can run against a real hub by
swapping those two seams.
"""

from __future__ import annotations

import uuid
from typing import Any

import koji
from temporalio.client import WorkflowHandle

from ebs.contracts.batch import BatchResult, PackageResult, PackageState
from ebs.contracts.collector import CollectorStatus
from ebs.contracts.events import EnqueueRequest, TagEvent
from ebs.devstack.waiting import eventually, wait_until
from ebs.workflows.collector import BatchCollector
from tests.helpers.engine import Engine

SAME_SECOND = 1_790_000_000.0  # fedora-messaging's sent-at: one-second resolution


class TriggerTag:
    """The trigger tag, changed and read through the Koji API alone."""

    def __init__(self, session: koji.ClientSession, tag: str) -> None:
        self.session = session
        self.name = tag

    def tag(self, nvr: str, timeout: float = 10.0) -> None:
        """tagBuild, then wait for its task (Koji tags in a task)."""
        task_id = self.session.tagBuild(self.name, nvr)

        def finished() -> str:
            state = str(koji.TASK_STATES[self.session.getTaskInfo(task_id)["state"]])
            return state if state in ("CLOSED", "FAILED", "CANCELED") else ""

        state = wait_until(finished, timeout, f"tagBuild task {task_id}", interval=0.02)
        assert state == "CLOSED", self.session.getTaskResult(task_id, raise_fault=False)

    def untag(self, nvr: str) -> None:
        self.session.untagBuild(self.name, nvr)

    def latest(self, package: str) -> dict[str, Any] | None:
        rows = self.session.getLatestBuilds(self.name, package=package)
        return rows[0] if rows else None

    def builds_of(self, package: str) -> list[str]:
        return [b["nvr"] for b in self.session.listTagged(self.name, package=package)]

    def build(self, nvr: str) -> dict[str, Any]:
        info = self.session.getBuild(nvr, strict=True)
        assert isinstance(info, dict)
        return info


def trigger_tag(engine: Engine) -> TriggerTag:
    return TriggerTag(engine.sim.session(), engine.sim.layout.trigger_tag)


def new_build(engine: Engine, name: str, version: str, release: str) -> str:
    """A completed Rawhide build, not yet in the trigger tag (it waits in the
    candidate tag, as a gated build does); returns its NVR."""
    rawhide = engine.sim.layout.rawhide
    b = engine.sim.add_rawhide_build(name, version, release, tag=f"f{rawhide}-updates-candidate")
    return b.nvr


def message(tag: TriggerTag, nvr: str, tagged_at: float = SAME_SECOND) -> TagEvent:
    """The buildsys.tag message the bridge would signal for `nvr`."""
    info = tag.build(nvr)
    return TagEvent(component=info["name"], nvr=nvr, build_id=int(info["id"]), tag=tag.name,
                      event_id=f"msg-{uuid.uuid4()}", tagged_at=tagged_at)


async def batch_after_lull(engine: Engine, handle: WorkflowHandle[Any, Any]) -> BatchResult:
    """Let the lull pass, then wait for the batch the collector starts."""
    await engine.env.sleep(61)

    async def started() -> str:
        st: CollectorStatus = await handle.query(BatchCollector.status)
        return st.current_batch_id or (st.recent_batches[-1].batch_id
                                       if st.recent_batches else "")

    batch_id = await eventually(started, 20, "the collector to start a batch", interval=0.02)
    async with engine.env.time_skipping_unlocked():  # type: ignore[attr-defined]
        return await engine.client.get_workflow_handle(
            batch_id, result_type=BatchResult
        ).result()


def by_name(result: BatchResult) -> dict[str, PackageResult]:
    return {p.component: p for p in result.packages}


def built_from(engine: Engine, component: str) -> list[str]:
    """The SCM URLs ebs submitted builds of `component` from."""
    return [b["src"] for b in engine.sim.builds_submitted if b["package"] == component]


async def test_two_tags_in_one_second_arriving_reversed_rebuild_kojis_latest(
    engine: Engine,
) -> None:
    tag = trigger_tag(engine)
    newer = new_build(engine, "bash", "5.3.0", "1")
    older = new_build(engine, "bash", "5.2.38", "1")
    tag.tag(newer)
    tag.tag(older)  # tagged last: Koji lists it as latest, though its version is lower
    latest = tag.latest("bash")
    assert latest is not None and latest["nvr"] == older
    handle = await engine.start_collector()
    # Both messages carry the same sent-at second; the older tag's arrives first,
    # so the collector's own "last tag wins" keeps the wrong one.
    older_msg, newer_msg = message(tag, older), message(tag, newer)
    await handle.signal(BatchCollector.tag, older_msg)
    await handle.signal(BatchCollector.tag, newer_msg)
    result = await batch_after_lull(engine, handle)
    bash = by_name(result)["bash"]
    assert bash.state == "stable", bash.reason
    assert bash.rawhide_nvr == older and bash.rawhide_build_id == latest["build_id"]
    # the message's build stays visible next to Koji's
    assert bash.message_nvr == newer and bash.message_build_id == newer_msg.build_id
    assert built_from(engine, "bash") == [tag.build(older)["source"]]
    assert bash.nvr.startswith("bash-5.2.38-1.")
    # ebs asked once, in a multicall (the test's own look-ups are plain calls)
    resolved = [c for c in engine.sim.calls_named("getLatestBuilds") if c.in_multicall]
    assert [(c.args[0], c.kwargs.get("package")) for c in resolved] == [(tag.name, "bash")]


async def test_a_build_untagged_before_the_batch_starts_is_dropped_with_the_reason(
    engine: Engine,
) -> None:
    tag = trigger_tag(engine)
    (sed,) = tag.builds_of("sed")
    bash = tag.latest("bash")
    assert bash is not None
    handle = await engine.start_collector()
    sed_msg = message(tag, sed)
    await handle.signal(BatchCollector.tag, sed_msg)
    await handle.signal(BatchCollector.tag, message(tag, bash["nvr"]))
    tag.untag(sed)  # buildsys.untag wakes nothing; the batch start resolution counts
    assert tag.latest("sed") is None
    result = await batch_after_lull(engine, handle)
    pkgs = by_name(result)
    dropped = pkgs["sed"]
    assert dropped.state == PackageState.DROPPED.value
    assert f"{tag.name} no longer holds any build of sed" in dropped.reason
    assert sed in dropped.reason and str(sed_msg.build_id) in dropped.reason
    assert dropped.message_nvr == sed and dropped.message_build_id == sed_msg.build_id
    assert dropped.task_ids == [] and built_from(engine, "sed") == []
    # nothing of it reaches the side tag either
    tagged = [c.args[1] for c in engine.sim.calls_named("tagBuild")
              if c.args[0] in engine.sim.side_tags_created]
    assert sed not in tagged and bash["nvr"] in tagged
    assert pkgs["bash"].state == "stable"
    assert result.outcome == "succeeded"  # a dropped package is not a failure
    st = await handle.query(BatchCollector.status)
    summary = st.recent_batches[-1]
    assert summary.failed == 0 and summary.succeeded == 1 and summary.packages == 2


async def test_all_queued_builds_untagged_makes_no_side_tag(engine: Engine) -> None:
    tag = trigger_tag(engine)
    (sed,) = tag.builds_of("sed")
    handle = await engine.start_collector()
    await handle.signal(BatchCollector.tag, message(tag, sed))
    tag.untag(sed)
    result = await batch_after_lull(engine, handle)
    assert [p.state for p in result.packages] == ["dropped"]
    assert engine.sim.side_tags_created == [] and engine.sim.builds_submitted == []


async def test_a_revert_to_the_previous_build_rebuilds_the_previous_build(
    engine: Engine,
) -> None:
    tag = trigger_tag(engine)
    previous = tag.latest("bash")
    assert previous is not None
    bad = new_build(engine, "bash", "5.3.0", "1")
    tag.tag(bad)
    handle = await engine.start_collector()
    await handle.signal(BatchCollector.tag, message(tag, bad, tagged_at=SAME_SECOND))
    # Rawhide reverts: the previous build is tagged again (untagged first, as
    # Koji refuses to tag a build twice). Its message has not arrived when the
    # batch starts.
    tag.untag(previous["nvr"])
    tag.tag(previous["nvr"])
    latest = tag.latest("bash")
    assert latest is not None and latest["nvr"] == previous["nvr"]
    result = await batch_after_lull(engine, handle)
    bash = by_name(result)["bash"]
    assert bash.state == "stable", bash.reason
    assert bash.rawhide_nvr == previous["nvr"] and bash.message_nvr == bad
    assert built_from(engine, "bash") == [tag.build(previous["nvr"])["source"]]


async def test_a_manual_trigger_resolves_at_batch_start_too(engine: Engine) -> None:
    tag = trigger_tag(engine)
    handle = await engine.start_collector()
    res = await handle.execute_update(
        BatchCollector.enqueue, EnqueueRequest(["bash"], source="cli", requested_by="me")
    )
    (queued,) = res.queued
    assert queued.tag == tag.name
    newer = new_build(engine, "bash", "5.3.0", "1")
    tag.tag(newer)  # after the request, before the batch: no message reaches ebs
    result = await batch_after_lull(engine, handle)
    bash = by_name(result)["bash"]
    assert bash.state == "stable", bash.reason
    assert bash.rawhide_nvr == newer and bash.message_nvr == queued.nvr != newer
    assert bash.message_build_id == queued.build_id
    assert built_from(engine, "bash") == [tag.build(newer)["source"]]


async def test_a_manual_trigger_of_an_eln_build_resolves_in_the_eln_tag(engine: Engine) -> None:
    """With no Rawhide build, the manual trigger rebuilds the latest ELN build
    (as the original does); the batch resolves it where it was found, not in
    the trigger tag, so it is not dropped."""
    tag = trigger_tag(engine)
    (sed,) = tag.builds_of("sed")
    tag.untag(sed)
    eln = TriggerTag(tag.session, "eln")
    eln_sed = eln.latest("sed")
    assert eln_sed is not None
    handle = await engine.start_collector()
    res = await handle.execute_update(BatchCollector.enqueue, EnqueueRequest(["sed"]))
    (queued,) = res.queued
    assert (queued.nvr, queued.tag) == (eln_sed["nvr"], "eln")
    result = await batch_after_lull(engine, handle)
    pkg = by_name(result)["sed"]
    # Submitted from the ELN build's source. (Koji then refuses the build, as
    # its NVR exists already: a rebuild of an ELN build needs a release bump.)
    assert pkg.state != "dropped", pkg.reason
    assert pkg.rawhide_nvr == pkg.message_nvr == eln_sed["nvr"]
    assert built_from(engine, "sed")[:1] == [eln.build(eln_sed["nvr"])["source"]]

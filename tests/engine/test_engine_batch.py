"""RebuildBatch scenarios (after the original ELNBuildSync's integration
scenarios) on the time-skipping server against the simulator over HTTP."""

from __future__ import annotations

import asyncio

from ebs.devstack.waiting import until
from ebs.simulator.script import FaultRule
from ebs.workflows.batch import bodhi_chunks
from tests.helpers.engine import Engine
from tests.helpers.smtp import LoopbackController, Recorder


def by_name(result):  # type: ignore[no-untyped-def]
    return {p.component: p for p in result.packages}


def submitted_opts(engine: Engine) -> list[dict]:
    return [c.args[2] for c in engine.sim.calls_named("build")]


async def test_first_attempt_success_files_one_update(engine: Engine) -> None:
    result = await engine.run_batch(["bash", "coreutils"])
    pkgs = by_name(result)
    assert {n: p.state for n, p in pkgs.items()} == {"bash": "stable", "coreutils": "stable"}
    assert result.outcome == "succeeded"
    assert len(result.updates) == 1
    bash = pkgs["bash"]
    assert bash.attempts == 1 and len(bash.task_ids) == 1
    assert bash.nvr.endswith(".eln150") and "draft" not in bash.nvr
    assert bash.update_alias == result.updates[0]
    assert bash.task_urls[0].endswith(f"taskinfo?taskID={bash.task_ids[0]}")
    # the build side tag and the errata side tag are both gone at the end
    created = engine.sim.side_tags_created
    assert len(created) == 2 and sorted(engine.sim.side_tags_removed) == sorted(created)


async def test_skip_tag_package_is_built_but_not_tagged_into_the_side_tag(engine: Engine) -> None:
    engine.configure(control={"skip_tag": ["^fedora-release$"]})
    result = await engine.run_batch(["bash", "fedora-release"])
    pkgs = by_name(result)
    assert pkgs["fedora-release"].skip_tag and not pkgs["bash"].skip_tag
    tagged = [c.args[1] for c in engine.sim.calls_named("tagBuild")]
    side_tag = engine.sim.side_tags_created[0]
    tagged_into_side = [
        c.args[1] for c in engine.sim.calls_named("tagBuild") if c.args[0] == side_tag
    ]
    assert any(n.startswith("bash-") for n in tagged_into_side)
    assert not any(n.startswith("fedora-release-") for n in tagged_into_side), tagged
    assert pkgs["fedora-release"].state == "stable"


async def test_fail_twice_is_a_failure_and_files_nothing(engine: Engine) -> None:
    engine.sim.set_outcomes("bash", ["FAILED", "FAILED", "CLOSED"])
    result = await engine.run_batch(["bash"])
    bash = by_name(result)["bash"]
    assert bash.state == "failed" and bash.attempts == 2 and len(bash.task_ids) == 2
    assert bash.reason
    assert result.outcome == "failed"
    assert result.updates == [] and engine.sim.calls_named("promoteBuild") == []
    assert len(engine.sim.side_tags_created) == 1  # no errata side tag


async def test_mixed_success_and_failure(engine: Engine) -> None:
    engine.sim.set_outcomes("glibc", ["FAILED", "FAILED"])
    result = await engine.run_batch(["bash", "glibc"])
    pkgs = by_name(result)
    assert pkgs["bash"].state == "stable" and pkgs["glibc"].state == "failed"
    assert result.outcome == "partial"
    assert len(result.updates) == 1 and pkgs["glibc"].update_alias == ""


async def test_retries_while_the_failures_keep_shrinking(engine: Engine) -> None:
    engine.sim.set_outcomes("bash", ["FAILED", "CLOSED"])
    engine.sim.set_outcomes("glibc", ["FAILED", "FAILED", "CLOSED"])
    engine.sim.set_outcomes("coreutils", ["FAILED"] * 6)
    result = await engine.run_batch(["bash", "glibc", "coreutils"])
    pkgs = by_name(result)
    # attempt 1: 3 fail; 2: 2 fail; 3: 1 fails; 4: the same 1 fails -> stop
    assert (pkgs["bash"].attempts, pkgs["glibc"].attempts, pkgs["coreutils"].attempts) == (
        2, 3, 4,
    )
    assert pkgs["bash"].state == "stable" and pkgs["glibc"].state == "stable"
    assert pkgs["coreutils"].state == "failed"


async def test_fail_fast_draft_and_priority_go_to_koji(engine: Engine) -> None:
    await engine.run_batch(["bash"])
    call = engine.sim.calls_named("build")[0]
    src, target, opts = call.args[:3]
    assert src.startswith("git+https://src.fedoraproject.org/rpms/bash.git#")
    assert target == engine.sim.side_tags_created[0]
    assert opts["draft"] is True and opts["fail_fast"] is True and opts["wait_repo"] is True
    assert "scratch" not in opts
    assert opts["custom_user_metadata"]["ebs_workflow_id"].endswith("attempt1-chunk0")
    assert call.kwargs.get("priority") == 5


async def test_scratch_skips_promotion_errata_tags_and_bodhi(engine: Engine) -> None:
    """The original's scratch_build: draft builds (never Koji scratch builds),
    neither promoted nor filed in Bodhi, even with draft_builds off."""
    engine.configure(koji={"scratch_build": True, "draft_builds": False})
    result = await engine.run_batch(["bash", "coreutils"])
    assert {p.state for p in result.packages} == {"succeeded"}
    assert all(o.get("draft") is True and "scratch" not in o for o in submitted_opts(engine))
    assert engine.sim.calls_named("promoteBuild") == []
    assert len(engine.sim.side_tags_created) == 1
    assert result.updates == []


async def test_failure_email_names_the_failed_package(
    engine: Engine, smtp_server: tuple[LoopbackController, Recorder]
) -> None:
    ctl, rec = smtp_server
    engine.mail_to(ctl.port)
    engine.sim.set_outcomes("glibc", ["FAILED", "FAILED"])
    await engine.run_batch(["bash", "glibc"])
    assert len(rec.received) == 1
    msg = rec.received[0].message
    assert msg["Subject"] == "ELNBuildSync build failures"
    assert msg["elnbuildsync-packages"] == "glibc"
    body = msg.get_body().get_content()  # type: ignore[union-attr]
    assert "glibc" in body and "taskinfo?taskID=" in body
    assert rec.received[0].rcpt_tos == ["eln-list@example.org"]


async def test_side_tag_repo_timeout_starts_over_with_a_new_side_tag(engine: Engine) -> None:
    engine.sim.set_repo_delay(10_000)  # the first side tag's repo never comes

    async def heal() -> None:
        await until(lambda: engine.sim.calls_named("getRepo")
                    or engine.sim.calls_named("repo.request"), 60,
                    "ebs to ask for the first side tag's repo", interval=0.01)
        engine.sim.set_repo_delay(0)

    healer = asyncio.create_task(heal())
    result = await engine.run_batch(["bash"])
    await healer
    created = engine.sim.side_tags_created
    assert len(created) == 3  # build side tag, its replacement, the errata tag
    assert created[0] in engine.sim.side_tags_removed
    assert by_name(result)["bash"].state == "stable"


def test_bodhi_chunks_split_by_batch_size_with_single_batch_threshold() -> None:
    nvrs = [f"p{i}-1-1.eln150" for i in range(5)]
    assert bodhi_chunks(nvrs, 0, 0) == [nvrs]
    assert bodhi_chunks(nvrs, 2, 0) == [nvrs[:2], nvrs[2:4], nvrs[4:]]
    assert bodhi_chunks(nvrs, 2, 5) == [nvrs]  # small enough to stay one update
    assert bodhi_chunks(nvrs, 2, 4) == [nvrs[:2], nvrs[2:4], nvrs[4:]]
    assert bodhi_chunks([], 2, 0) == []


async def test_bodhi_updates_split_by_batch_size(engine: Engine) -> None:
    engine.configure(bodhi={"batch_size": 2})
    result = await engine.run_batch(["bash", "coreutils", "glibc"])
    assert len(result.updates) == 2
    assert len(set(result.errata_tags)) == 0  # removed once stable
    assert len(engine.sim.side_tags_created) == 3
    assert {p.state for p in result.packages} == {"stable"}


async def test_task_timeout_cancels_without_retry_and_spares_siblings(engine: Engine) -> None:
    engine.configure(timers={"task_timeout": 3600, "task_poll": 300})
    engine.sim.set_outcomes("glibc", "HANG")
    result = await engine.run_batch(["bash", "glibc"])
    pkgs = by_name(result)
    assert pkgs["glibc"].state == "failed" and pkgs["glibc"].attempts == 1
    assert "cancelled" in pkgs["glibc"].reason
    assert [c.args[0] for c in engine.sim.calls_named("cancelTask")] == pkgs["glibc"].task_ids
    assert pkgs["bash"].state == "stable"


async def test_transient_http_500_on_submit_is_retried(engine: Engine) -> None:
    engine.sim.add_fault(FaultRule("build", "http500", times=1))
    result = await engine.run_batch(["bash"])
    assert by_name(result)["bash"].state == "stable"
    assert len(engine.sim.builds_submitted) == 1  # no duplicate task


async def test_lost_submit_response_reuses_the_task(engine: Engine) -> None:
    engine.sim.add_fault(FaultRule("build", "http500", times=1, after=True))
    result = await engine.run_batch(["bash"])
    assert by_name(result)["bash"].state == "stable"
    assert len(engine.sim.builds_submitted) == 1  # found again, not submitted twice


async def test_submission_refused_for_good_is_reported_not_lost(engine: Engine) -> None:
    engine.sim.add_fault(FaultRule.bad_scm_url("glibc", times=None))
    result = await engine.run_batch(["bash", "glibc"])
    pkgs = by_name(result)
    assert pkgs["glibc"].state == "failed"
    assert "Invalid scm url" in pkgs["glibc"].reason
    assert pkgs["glibc"].attempts == 1  # Koji refused it for good: no second attempt
    assert pkgs["bash"].state == "stable"


async def test_koji_auth_failure_fails_fast_with_a_reason(engine: Engine) -> None:
    engine.sim.add_fault(FaultRule.auth_failure("createSideTag"))
    result = await engine.run_batch(["bash"])
    assert result.outcome == "error"
    assert "Not logged-in" in result.error
    assert by_name(result)["bash"].state == "failed"
    assert len(engine.sim.calls_named("createSideTag")) == 1  # not hammered


async def test_stable_warning_then_failure_emails(
    engine: Engine, smtp_server: tuple[LoopbackController, Recorder]
) -> None:
    ctl, rec = smtp_server
    engine.mail_to(ctl.port, bodhi={"warn_timeout": 60, "stable_timeout": 7200})
    engine.sim.bodhi_app.stable_after = None  # never pushed
    result = await engine.run_batch(["bash"])
    subjects = [r.message["Subject"] for r in rec.received]
    assert subjects == ["ELNBuildSync update warning", "ELNBuildSync update failure"]
    bash = by_name(result)["bash"]
    assert bash.state == "succeeded" and "not in eln" in bash.reason
    assert result.outcome == "unstable"
    assert result.errata_tags  # left for a human to look at


async def test_slices_build_lowest_ordering_first_without_overlap(engine: Engine) -> None:
    engine.configure(control={"ordering": {"^glibc$": 0, "^coreutils$": 10}})
    result = await engine.run_batch(["bash", "coreutils", "glibc"])
    order = [c.args[0].split("/rpms/")[1].split(".git")[0] for c in engine.sim.calls_named("build")]
    assert order == ["glibc", "coreutils", "bash"]
    pkgs = by_name(result)
    assert (pkgs["glibc"].ordering, pkgs["coreutils"].ordering, pkgs["bash"].ordering) == (
        0, 10, 1000,
    )
    # slice 10 was submitted only after slice 0's task had finished
    glibc_task = pkgs["glibc"].task_ids[0]
    info = engine.sim.session().getTaskInfo(glibc_task)
    coreutils_submit = next(
        c for c in engine.sim.calls_named("build") if "coreutils" in c.args[0]
    )
    assert info["completion_ts"] <= coreutils_submit.at


async def test_task_links_show_while_the_build_runs(engine: Engine) -> None:


    engine.sim.set_duration("bash", 3.0)
    handle = await engine.start_batch(["bash"])
    status = await engine.batch_status_until(handle, lambda st: bool(st.packages[0].task_ids))
    bash = status.packages[0]
    assert bash.state == "building" and bash.task_urls[0].endswith(str(bash.task_ids[0]))
    result = await handle.result()
    assert result.packages[0].task_ids == bash.task_ids  # not recorded twice


async def test_cancelled_batch_cancels_its_tasks_and_removes_its_side_tag(
    engine: Engine,
) -> None:

    from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError

    from ebs.workflows.batch import RebuildBatch

    engine.sim.set_outcomes("glibc", "HANG")
    handle = await engine.start_batch(["glibc"])
    await engine.batch_status_until(handle, lambda st: bool(st.packages[0].task_ids))
    task_id = (await handle.query(RebuildBatch.status)).packages[0].task_ids[0]
    await handle.cancel()
    try:
        await handle.result()
        raise AssertionError("a cancelled batch must not complete")
    except WorkflowFailureError:
        pass
    assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED
    assert [c.args[0] for c in engine.sim.calls_named("cancelTask")] == [task_id]
    assert engine.sim.side_tags_created
    assert sorted(engine.sim.side_tags_removed) == sorted(engine.sim.side_tags_created)


async def test_an_attempt_that_fails_outright_spares_its_sibling_chunks(engine: Engine) -> None:
    import dataclasses
    import uuid

    from ebs.contracts.batch import BatchRequest
    from ebs.workflows.batch import RebuildBatch

    # One chunk a package; once the builds run, the next task poll is refused
    # for good, so one chunk's child workflow fails. Its package is retried in
    # a new attempt; the other chunk's build is kept.
    settings = dataclasses.replace(engine.settings(), attempt_chunk_size=1)
    batch_id = f"ebs-batch-test-{uuid.uuid4().hex[:8]}"
    handle = await engine.client.start_workflow(
        RebuildBatch.run,
        BatchRequest(batch_id, [engine.tag_event(n) for n in ("bash", "glibc")], settings),
        id=batch_id,
        task_queue=engine.task_queue,
    )
    await engine.batch_status_until(handle, lambda st: all(p.task_ids for p in st.packages))
    engine.sim.add_fault(FaultRule.auth_failure("getTaskInfo", times=1))
    result = await handle.result()
    pkgs = by_name(result)
    assert result.outcome == "succeeded", result
    assert {p.state for p in pkgs.values()} == {"stable"}
    assert sorted(p.attempts for p in pkgs.values()) == [1, 2]


async def test_build_failure_mail_goes_right_after_the_slices(
    engine: Engine, smtp_server: tuple[LoopbackController, Recorder]
) -> None:
    """As the original: the build-failure mail is sent when the slices are done,
    before the Bodhi updates are filed and waited for, with its body and header."""
    ctl, rec = smtp_server
    engine.mail_to(ctl.port, bodhi={"warn_timeout": 60, "stable_timeout": 7200})
    engine.sim.set_outcomes("glibc", ["FAILED", "FAILED"])
    engine.sim.bodhi_app.stable_after = None  # bash never goes stable
    await engine.run_batch(["bash", "glibc"])
    subjects = [r.message["Subject"] for r in rec.received]
    assert subjects == [
        "ELNBuildSync build failures",
        "ELNBuildSync update warning",
        "ELNBuildSync update failure",
    ]
    msg = rec.received[0].message
    assert msg["elnbuildsync-packages"] == "glibc"
    first_line = msg.get_body().get_content().splitlines()[0]  # type: ignore[union-attr]
    prefix = "The ELNBuildSync build failed for the following requests: "
    assert first_line.startswith(prefix) and "glibc" in first_line[len(prefix):]
    assert " " not in first_line[len(prefix):]  # the SCM URL, as the original


async def test_warn_timeout_zero_sends_no_warning(
    engine: Engine, smtp_server: tuple[LoopbackController, Recorder]
) -> None:
    ctl, rec = smtp_server
    engine.mail_to(ctl.port, bodhi={"warn_timeout": 0, "stable_timeout": 7200})
    engine.sim.bodhi_app.stable_after = None  # never pushed
    result = await engine.run_batch(["bash"])
    assert [r.message["Subject"] for r in rec.received] == ["ELNBuildSync update failure"]
    assert result.outcome == "unstable"


async def test_release_failure_leaves_no_package_succeeded_and_lists_drafts(
    engine: Engine,
) -> None:
    """issue 17 #4: a batch ending in error in its release step: no package
    shows succeeded (with build_id 0); the drafts left are in the result."""
    engine.sim.add_fault(FaultRule.auth_failure("promoteBuild"))
    result = await engine.run_batch(["bash", "sed"])
    assert result.outcome == "error"
    pkgs = by_name(result)
    assert {p.state for p in pkgs.values()} == {"failed"}
    assert all("but not released" in p.reason for p in pkgs.values())
    assert sorted(result.drafts_left) == sorted(p.nvr for p in pkgs.values())
    assert all(",draft_" in nvr for nvr in result.drafts_left)
    assert "unpromoted draft build" in result.error and "koji promote-build" in result.error


async def test_an_existing_rebuild_is_released_not_resubmitted(engine: Engine) -> None:
    """issue 17 #6: Koji has the ELN rebuild of this Rawhide NVR (promoted, not
    in eln): no build is submitted (Koji would refuse it); it is released."""
    rawhide = engine.sim.add_rawhide_build("hello", "2.12.1", "1")
    eln = engine.sim.world.add_rawhide_build("hello", "2.12.1", "1.eln150",
                                             tag="eln-updates-candidate", notify=False)
    result = await engine.run_batch(["hello"])
    hello = by_name(result)["hello"]
    assert engine.sim.calls_named("build") == []
    assert hello.existing_build and hello.nvr == eln.nvr and hello.build_id == eln.id
    assert f"Koji already has {eln.nvr}" in hello.reason and rawhide.nvr in hello.reason
    assert hello.state == "stable" and result.outcome == "succeeded"

"""RebuildBatch: the whole batch algorithm, step by step.

0. Resolve every queued component against the trigger tag: Koji's latest
   build there is the one rebuilt, whatever the message named; a component
   the tag no longer holds is dropped, with the reason.
1. Create a build side tag from the ELN build tag, tag in the Rawhide builds
   (except skip_tag packages), ask Koji for a repo newer than that tagging
   and wait for it. A package whose ELN rebuild Koji has already is not
   built again but released as it is.
2. Build the packages in slices by ordering value, lowest first; every
   package of a slice at once, as Koji draft builds from the exact SCM URL of
   the Rawhide build; retry the failures in new attempts while the failure
   set keeps shrinking.
3. For real builds: promote the drafts, tag them into errata side tags (one
   per Bodhi chunk), file the Bodhi updates and wait for the stable tag.
Whatever happens, the build side tag is removed at the end.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, ChildWorkflowError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from ebs.activities.bodhi import BodhiActivities
    from ebs.activities.koji import KojiActivities
    from ebs.activities.ledger import LEDGER_CALL, LedgerActivities
    from ebs.activities.mail import MailActivities
    from ebs.activities.presets import KOJI_CALL, MAIL
    from ebs.config.rules import is_skip_tag, ordering_for
    from ebs.contracts.attempt import AttemptOutcome, AttemptRequest, AttemptResult
    from ebs.contracts.batch import (
        BatchOutcome,
        BatchRequest,
        BatchResult,
        PackageResult,
        PackageState,
    )
    from ebs.contracts.bodhi import UpdateRequest
    from ebs.contracts.events import RepoEvent, SideTagsEvent, TasksSubmitted
    from ebs.contracts.koji import (
        BuildLookupRequest,
        BuildSpec,
        BuildTarget,
        PromoteRequest,
        RebuildLookupRequest,
        RemoveSideTagRequest,
        RepoStateRequest,
        SideTagRequest,
        StableCheckRequest,
        TagBuildsRequest,
        TagBuildsResult,
        TagQuery,
        TagResolveRequest,
        TaskPollRequest,
    )
    from ebs.contracts.ledger import ComponentRecord, DeniedLookup, LedgerBatch, LedgerPackage
    from ebs.contracts.mail import EmailRequest, MailKind
    from ebs.contracts.names import (
        QUERY_STATUS,
        SIGNAL_REPO_EVENT,
        SIGNAL_SIDE_TAGS,
        SIGNAL_TASKS_SUBMITTED,
    )
    from ebs.contracts.search import (
        CONFIG_VERSION_KEY,
        OUTCOME_KEY,
        PACKAGES_KEY,
        PHASE_KEY,
        packages_value,
    )
    from ebs.workflows.announcer import Announcer
    from ebs.workflows.attempt import BuildAttempt, attempt_workflow_id, failure_text
    from ebs.workflows.index import index_packages

State = PackageState
A = TypeVar("A")
R = TypeVar("R")

# workflow.patched ids: changes that reorder the commands of recorded histories.
PATCH_EARLY_FAILURE_MAIL = "build-failure-mail-after-slices"
PATCH_RESOLVE_TRIGGER_TAG = "resolve-trigger-tag"
PATCH_EXISTING_REBUILDS = "existing-rebuilds-not-resubmitted"

# A side tag whose repo never regenerates is replaced this many times at most.
MAX_SIDE_TAGS = 3
# Denylist lookup before building and the ComponentLedger report at the end
# (issue 14); histories recorded before it replay without either.
LEDGER_PATCH = "ledger-denylist-v1"


class BatchAbort(Exception):
    """Koji refused for good (authentication, unknown target): fail fast."""


def bodhi_chunks(nvrs: list[str], batch_size: int, max_single: int) -> list[list[str]]:
    """Split NVRs into Bodhi updates: `batch_size` each (0 = no split), but a
    batch no larger than `max_single_batch_size` stays one update."""
    if not nvrs:
        return []
    if batch_size <= 0 or len(nvrs) <= max(batch_size, max_single):
        return [list(nvrs)]
    return [nvrs[i : i + batch_size] for i in range(0, len(nvrs), batch_size)]


REASON_MAX = 300  # characters of a failure's reason kept per package

@workflow.defn(name="RebuildBatch")
class RebuildBatch:
    @workflow.init
    def __init__(self, req: BatchRequest) -> None:
        self._req = req
        self._settings = req.settings
        self._started = workflow.now()
        self._packages: dict[str, PackageResult] = {
            ev.component: PackageResult(
                component=ev.component,
                rawhide_nvr=ev.nvr,
                # The original matches ordering rules against the ELN name.
                ordering=ordering_for(
                    req.settings.ordering,
                    ev.eln_name or ev.component,
                    req.settings.default_ordering,
                ),
                skip_tag=is_skip_tag(req.settings.skip_tag, ev.component),
                message_nvr=ev.nvr,
                message_build_id=ev.build_id,
            )
            for ev in req.packages
        }
        self._events = {ev.component: ev for ev in req.packages}
        self._sources: dict[str, str] = {}  # component -> SCM URL of the Rawhide build
        self._side_tags: list[str] = []
        self._errata_tags: list[str] = []
        self._filed_from: set[str] = set()  # errata tags a Bodhi update was filed from
        self._unstable: set[str] = set()  # built and filed, not stable in time
        self._updates: list[str] = []
        self._repo_events: set[str] = set()
        self._phase = "starting"
        self._error = ""
        self._bus = Announcer(req.batch_id, req.settings)
        self._drafts: set[str] = set()  # components whose draft build is not promoted

    # ---- messages -------------------------------------------------------

    @workflow.signal(name=SIGNAL_REPO_EVENT)
    def repo_event(self, event: RepoEvent) -> None:
        if event.kind == "done":
            self._repo_events.add(event.tag)

    @workflow.signal(name=SIGNAL_TASKS_SUBMITTED)
    def tasks_submitted(self, event: TasksSubmitted) -> None:
        for component, task_id in event.tasks.items():
            pkg = self._packages.get(component)
            if pkg is not None:
                self._add_task(pkg, task_id)

    @workflow.query(name=QUERY_STATUS)
    def status(self) -> BatchResult:
        return self._result(outcome=self._phase)

    # ---- the algorithm --------------------------------------------------

    @workflow.run
    async def run(self, req: BatchRequest) -> BatchResult:
        s = self._settings
        workflow.upsert_search_attributes(
            [
                PACKAGES_KEY.value_set(packages_value(sorted(self._packages))),
                CONFIG_VERSION_KEY.value_set(s.config_version or "unknown"),
            ]
        )
        await index_packages(self._req.batch_id, list(self._packages))  # all findable
        outcome = BatchOutcome.ERROR
        failures_mailed = False
        self._bus.start(self._packages.values())
        try:
            if workflow.patched(PATCH_RESOLVE_TRIGGER_TAG):
                await self._resolve_in_trigger_tag()
            target = await self._koji(KojiActivities.get_build_target, s.build_target, "target")
            if self._active():
                await self._look_up_rawhide_builds()
                if workflow.patched(LEDGER_PATCH):
                    await self._skip_denied()
                if not s.scratch and workflow.patched(PATCH_EXISTING_REBUILDS) and self._active():
                    await self._take_existing_rebuilds()
            if self._active():
                side_tag = await self._prepare_side_tag(target.build_tag)
                for ordering in sorted({p.ordering for p in self._packages.values()}):
                    await self._build_slice(ordering, side_tag)
                    self._bus.announce(self._packages.values())  # this slice's fates are settled
                # As the original: the failures are mailed as soon as the slices
                # are done, not after the stable wait (which can take a day).
                if workflow.patched(PATCH_EARLY_FAILURE_MAIL):
                    failures_mailed = True
                    if self._any_failed():
                        await self._email(MailKind.BUILD_FAILURES)
                if not s.scratch:
                    await self._release(target)
            outcome = self._outcome()
        except BatchAbort as err:
            self._fail_unfinished(str(err))
            self._error = str(err) + self._drafts_left_note()
            await self._email(MailKind.PERMANENT_FAILURE, self._error)
        except (asyncio.CancelledError, ActivityError, ChildWorkflowError) as err:
            if is_cancelled_exception(err):
                outcome = BatchOutcome.CANCELLED
                self._fail_unfinished("the batch was cancelled")
                self._error = self._drafts_left_note().strip()
            raise
        finally:
            await self._cleanup_build_side_tags()
            self._set_phase("finished")
            workflow.upsert_search_attributes([OUTCOME_KEY.value_set(outcome)])
            await self._bus.close(self._result(outcome, finished=True))
        if workflow.patched(LEDGER_PATCH):
            await self._report_to_ledger()
        if outcome != BatchOutcome.ERROR and not failures_mailed and self._any_failed():
            await self._email(MailKind.BUILD_FAILURES)  # histories from before the patch
        return self._result(outcome, finished=True)

    async def _resolve_in_trigger_tag(self) -> None:
        """Step 0: Koji, not the bus, decides which build is rebuilt.

        Messages can arrive in any order and their send times have one-second
        resolution; an untag may have followed. The build Koji lists as latest
        in the trigger tag (the tag the event names) replaces the message's;
        with none left there, the component is dropped and says why.
        """
        self._set_phase("resolving")
        queries = [
            TagQuery(
                component=pkg.component,
                tag=self._events[pkg.component].tag or self._settings.trigger_tag,
                package=_package_of(pkg.message_nvr) or pkg.component,
            )
            for pkg in self._packages.values()
        ]
        resolved = await self._koji(
            KojiActivities.resolve_in_trigger_tag, TagResolveRequest(queries),
            "resolve:trigger-tag",
        )
        for query, latest in zip(queries, resolved.builds, strict=True):
            pkg = self._packages[query.component]
            if not latest.found:
                pkg.state = State.DROPPED.value
                named = pkg.message_nvr + (
                    f" (build {pkg.message_build_id})" if pkg.message_build_id else ""
                )
                pkg.reason = (
                    f"dropped: Koji's {query.tag} no longer holds any build of "
                    f"{query.package} (untagged after the message named {named}); "
                    "nothing to rebuild"
                )
                continue
            if latest.nvr != pkg.rawhide_nvr:
                workflow.logger.info(
                    "%s: Koji lists %s as latest in %s; the message named %s",
                    pkg.component, latest.nvr, query.tag, pkg.rawhide_nvr,
                )
            pkg.rawhide_nvr = latest.nvr
            pkg.rawhide_build_id = latest.build_id

    async def _look_up_rawhide_builds(self) -> None:
        """The SCM URL of each Rawhide build: the exact source to rebuild."""
        self._set_phase("resolving")
        found = await self._koji(
            KojiActivities.get_builds,
            BuildLookupRequest([p.rawhide_nvr for p in self._active()]),
            "lookup:rawhide-builds",
        )
        by_nvr = {b.nvr: b for b in found.builds}
        for pkg in self._active():
            build = by_nvr.get(pkg.rawhide_nvr)
            if build is None or not build.found or not build.source:
                why = build.reason if build and build.reason else "no SCM source recorded"
                self._fail(pkg, f"Rawhide build {pkg.rawhide_nvr} unusable: {why}")
            else:
                self._sources[pkg.component] = build.source
                pkg.scm_url = build.source

    async def _take_existing_rebuilds(self) -> None:
        """Koji refuses to build an NVR it has ("Build already exists"): a
        package whose rebuild exists already (an earlier batch promoted it; it
        has not reached the stable tag) is not submitted again but released as
        it is, as the original takes an ELN build at least as new as the
        Rawhide one instead of rebuilding."""
        found = await self._koji(
            KojiActivities.existing_rebuilds,
            RebuildLookupRequest([p.rawhide_nvr for p in self._active()]),
            "lookup:existing-rebuilds",
        )
        by_rawhide = {p.rawhide_nvr: p for p in self._active()}
        for asked, existing in zip(list(by_rawhide), found.builds, strict=True):
            if not existing.found:
                continue
            pkg = by_rawhide[asked]
            pkg.state = State.SUCCEEDED.value
            pkg.existing_build = True
            pkg.nvr, pkg.build_id = existing.nvr, existing.build_id
            pkg.reason = (f"not rebuilt: Koji already has {existing.nvr} (build "
                          f"{existing.build_id}), the rebuild of {asked}; released as it is")

    async def _skip_denied(self) -> None:
        """Never submit an SCM URL that failed for good before (the denylist of
        the ComponentLedger): such a package is skipped, with the reason."""
        answer = await workflow.execute_activity_method(
            LedgerActivities.denied_among,
            DeniedLookup(sorted(set(self._sources.values()))),
            activity_id="ledger:denied", **LEDGER_CALL,
        )
        denied = {d.url: d for d in answer.denied}
        for pkg in self._packages.values():
            entry = denied.get(self._sources.get(pkg.component, ""))
            if entry is None or pkg.state != State.PENDING.value:
                continue
            pkg.state = State.SKIPPED.value
            pkg.reason = (
                f"skipped: {entry.url} failed for good in {entry.batch_id or 'an earlier batch'}"
                f" ({entry.failed_at}); only a new Rawhide commit is built"
                f" (or clear it: ebs denylist clear {entry.component})"
            )
            workflow.logger.info("%s: %s", pkg.component, pkg.reason)

    def _failed_for_good(self, pkg: PackageResult) -> bool:
        """A build Koji ran and that still failed after the retries (not a
        batch that stopped early, nor a package that never reached Koji)."""
        return pkg.state == State.FAILED.value and bool(pkg.task_ids) and not self._error

    async def _report_to_ledger(self) -> None:
        """The per-component records and the newly failed SCM URLs."""
        finished = workflow.now().isoformat()
        packages = [
            LedgerPackage(
                record=ComponentRecord(
                    component=p.component,
                    batch_id=self._req.batch_id,
                    state=p.state,
                    detail=p.reason[:300],
                    rawhide_nvr=p.rawhide_nvr,
                    nvr=p.nvr,
                    task_id=p.task_ids[-1] if p.task_ids else 0,
                    finished_at=finished,
                ),
                scm_url=self._sources.get(p.component, ""),
                failed_for_good=self._failed_for_good(p),
            )
            for p in self._packages.values()
        ]
        try:
            await workflow.execute_activity_method(
                LedgerActivities.record_batch,
                LedgerBatch(self._req.batch_id, finished, packages),
                activity_id="ledger:record", **LEDGER_CALL,
            )
        except ActivityError as err:
            if is_cancelled_exception(err):
                raise
            workflow.logger.error("could not report batch to the ledger: %s", err)

    async def _prepare_side_tag(self, build_tag: str) -> str:
        """Step 1: a side tag holding the batch's Rawhide builds, repo regenerated.

        If tagging has not completed within `tag_timeout`, the side tag is
        removed and the step starts over with a new one.
        """
        s = self._settings
        nvrs = [p.rawhide_nvr for p in self._active() if not p.skip_tag]
        for n in range(1, MAX_SIDE_TAGS + 1):
            self._set_phase("tagging")
            side_tag = await self._koji(
                KojiActivities.create_side_tag,
                SideTagRequest(base_tag=build_tag, key=f"{self._req.batch_id}:build:{n}"),
                f"sidetag:build:{n}",
            )
            self._side_tags.append(side_tag.name)
            await self._tell_collector()
            tagged = TagBuildsResult()
            if nvrs:
                tagged = await self._koji(
                    KojiActivities.tag_builds,
                    TagBuildsRequest(side_tag.name, nvrs), f"tag:{side_tag.name}",
                )
                for failure in tagged.failed:
                    for pkg in self._packages.values():
                        if pkg.rawhide_nvr == failure.nvr:
                            self._fail(pkg, f"could not tag {failure.nvr} into {side_tag.name}: "
                                       f"{failure.reason}")
            wanted = [nvr for nvr in nvrs if nvr in tagged.tagged]
            self._set_phase("waiting-for-repo")
            # Ask Koji for a repo newer than the tagging and wait for it: each
            # repo_state looks for a READY repo created after the tag events of
            # the wanted builds and, while there is none, requests one
            # (Koji 1.35 `repo.request(tag, min_event=<last tagging event>)`; the
            # hub keeps one request, and a pre-1.35 hub's kojira regenerates by
            # itself). A new side tag has no older repo to mistake for it.
            if await self._wait_for_repo(side_tag.name, 0, wanted, s.tag_timeout):
                return side_tag.name
            workflow.logger.warning(
                "side tag %s not ready after %ss; replacing it", side_tag.name, s.tag_timeout
            )
            await self._remove_side_tag(side_tag.name)
        raise BatchAbort(
            f"Koji did not regenerate the repo of {MAX_SIDE_TAGS} side tags "
            f"within {s.tag_timeout:.0f} s each"
        )

    async def _wait_for_repo(
        self, tag: str, min_event: int, nvrs: list[str], within: float
    ) -> bool:
        """True once the tag has the builds and a repo newer than the tagging.

        Each look also asks Koji for the repo (KojiAdapter.repo_state);
        buildsys.repo.done signals wake us early; otherwise we look every
        `repo_poll` seconds.
        """
        deadline = workflow.now() + timedelta(seconds=within)
        check = 0
        while True:
            check += 1
            state = await self._koji(
                KojiActivities.repo_state,
                RepoStateRequest(tag, min_event, nvrs), f"repo:{tag}:{check}",
            )
            if state.ready:
                return True
            remaining = (deadline - workflow.now()).total_seconds()
            if remaining <= 0:
                return False
            self._repo_events.discard(tag)
            try:
                await workflow.wait_condition(
                    lambda: tag in self._repo_events,
                    timeout=min(self._settings.repo_poll, remaining),
                )
            except TimeoutError:
                pass

    async def _build_slice(self, ordering: int, side_tag: str) -> None:
        """Step 2 for one slice: attempts until nothing fails or failures stop shrinking."""
        # (a package whose rebuild exists already is not built again)
        pending = [p for p in self._active() if p.ordering == ordering
                   and not p.existing_build]
        previous_failures: int | None = None
        attempt = 0
        while pending:
            attempt += 1
            self._set_phase(f"building:slice{ordering}:attempt{attempt}")
            retry = await self._run_attempt(ordering, attempt, side_tag, pending)
            if previous_failures is not None and len(retry) >= previous_failures:
                break  # the same failures again: real breakage, not flakiness
            previous_failures = len(retry)
            pending = retry

    async def _run_attempt(
        self, ordering: int, attempt: int, side_tag: str, packages: list[PackageResult]
    ) -> list[PackageResult]:
        """Build all packages at once; returns those worth another attempt."""
        s = self._settings
        size = max(1, s.attempt_chunk_size)
        chunks = [packages[i : i + size] for i in range(0, len(packages), size)]
        for pkg in packages:
            pkg.state = State.BUILDING.value
            pkg.attempts = attempt
        info = workflow.info()
        first_run = info.run_id == info.first_execution_run_id
        # return_exceptions: one chunk that fails outright (its Koji polls ran
        # out of retries) must not discard what its siblings built.
        results: list[AttemptResult | BaseException] = await asyncio.gather(
            *(
                workflow.execute_child_workflow(
                    BuildAttempt.run,
                    AttemptRequest(
                        batch_id=self._req.batch_id,
                        ordering=ordering,
                        attempt=attempt,
                        chunk=n,
                        target=side_tag,
                        builds=[BuildSpec(p.component, self._sources[p.component]) for p in chunk],
                        # The original's scratch_build: draft builds that are
                        # never promoted nor filed; never Koji scratch builds.
                        scratch=False,
                        draft=s.draft_builds or s.scratch,
                        fail_fast=s.fail_fast,
                        wait_repo=s.wait_repo,
                        priority=s.priority,
                        task_poll=s.task_poll,
                        task_timeout=s.task_timeout,
                        batch_first_run=first_run,
                    ),
                    id=attempt_workflow_id(self._req.batch_id, ordering, attempt, n),
                    parent_close_policy=workflow.ParentClosePolicy.REQUEST_CANCEL,
                    static_summary=f"slice {ordering}, attempt {attempt}: "
                    + _names(p.component for p in chunk),
                )
                for n, chunk in enumerate(chunks)
            ),
            return_exceptions=True,
        )
        retry: list[PackageResult] = []
        refused = ""
        for chunk, result in zip(chunks, results, strict=True):
            if isinstance(result, BaseException):
                if is_cancelled_exception(result):
                    raise result
                reason, _ = failure_text(result)
                for pkg in chunk:
                    self._fail(pkg, f"attempt {attempt} failed: {reason}")
                    retry.append(pkg)
                continue
            refused = refused or result.permanent_error
            for out in result.outcomes:
                pkg = self._packages[out.component]
                if out.task_id:
                    self._add_task(pkg, out.task_id)
                if out.outcome == AttemptOutcome.SUCCEEDED:
                    pkg.state = State.SUCCEEDED.value
                    pkg.reason = ""
                else:
                    self._fail(pkg, out.reason)
                    if out.retryable:
                        retry.append(pkg)
        if refused:  # after every chunk's outcomes are recorded
            raise BatchAbort(f"Koji refused the builds: {refused}")
        return retry

    async def _release(self, target: BuildTarget) -> None:
        """Step 3: promote drafts, errata side tags, Bodhi updates, stable tag."""
        succeeded = [p for p in self._packages.values() if p.state == State.SUCCEEDED.value]
        existing = [p for p in succeeded if p.existing_build]
        built = [p for p in succeeded if not p.existing_build]
        if not built and not existing:
            return
        self._set_phase("promoting")
        if built:
            await self._find_and_promote(built)
        self._set_phase("bodhi")
        nvr_to_pkg = {p.nvr: p for p in self._packages.values()
                      if p.state == State.SUCCEEDED.value and p.build_id}
        await self._file_updates(target, nvr_to_pkg)

    async def _find_and_promote(self, built: list[PackageResult]) -> None:
        """The build of each package's last task; then its draft promoted."""
        s = self._settings
        task_builds = await self._koji(
            KojiActivities.task_builds,
            TaskPollRequest([p.task_ids[-1] for p in built]), "builds:of-tasks",
        )
        by_task = {b.task_id: b for b in task_builds.builds if b.found}
        for pkg in built:
            tb = by_task.get(pkg.task_ids[-1])
            if tb is None:
                self._fail(pkg, f"no build found for task {pkg.task_ids[-1]}")
                continue
            pkg.build_id, pkg.nvr = tb.build_id, tb.nvr
            if tb.draft:
                self._drafts.add(pkg.component)
        built = [p for p in built if p.build_id]
        if s.draft_builds and built:
            promoted = await self._koji(
                KojiActivities.promote_builds,
                PromoteRequest([p.build_id for p in built]), "promote",
            )
            by_build = {pr.build_id: pr for pr in promoted.promotions}
            for pkg in built:
                pr = by_build.get(pkg.build_id)
                if pr is not None and pr.promoted:
                    pkg.nvr = pr.nvr
                    self._drafts.discard(pkg.component)
                else:
                    # Not fatal for the batch: this package failed, left out of Bodhi.
                    self._fail(pkg, f"built as draft {pkg.nvr} but not promoted: "
                               f"{pr.reason if pr else 'no answer'}")
        self._bus.announce(self._packages.values())  # built, promoted or failed for good

    async def _file_updates(self, target: BuildTarget,
                            nvr_to_pkg: dict[str, PackageResult]) -> None:
        """Errata side tags (one per Bodhi chunk), the updates, the stable wait."""
        s = self._settings
        chunks = bodhi_chunks(
            sorted(nvr_to_pkg), s.bodhi_batch_size, s.bodhi_max_single_batch_size
        )
        for n, chunk in enumerate(chunks, start=1):
            errata = await self._koji(
                KojiActivities.create_side_tag,
                SideTagRequest(base_tag=target.build_tag, key=f"{self._req.batch_id}:errata:{n}"),
                f"sidetag:errata:{n}",
            )
            self._errata_tags.append(errata.name)
            await self._tell_collector()
            await self._koji(
                KojiActivities.tag_builds,
                TagBuildsRequest(errata.name, chunk), f"tag:{errata.name}",
            )
            update = await self._koji(
                BodhiActivities.file_update,
                UpdateRequest(
                    from_tag=errata.name,
                    notes=self._update_notes(n, len(chunks), chunk),
                    key=f"{self._req.batch_id}:update:{n}",
                    builds=chunk,
                ),
                f"bodhi:update:{n}",
            )
            self._updates.append(update.alias)
            self._filed_from.add(errata.name)
            for nvr in chunk:
                nvr_to_pkg[nvr].update_alias = update.alias
                nvr_to_pkg[nvr].update_url = update.url
        self._bus.announce(self._packages.values())
        await self._wait_for_stable(nvr_to_pkg)

    async def _wait_for_stable(self, nvr_to_pkg: dict[str, PackageResult]) -> None:
        s = self._settings
        self._set_phase("waiting-for-stable")
        started = workflow.now()
        warned = False
        check = 0
        pending = sorted(nvr_to_pkg)
        while pending:
            check += 1
            state = await self._koji(
                KojiActivities.check_stable,
                StableCheckRequest(s.stable_tag, pending), f"stable:{check}",
            )
            for nvr in state.stable:
                nvr_to_pkg[nvr].state = State.STABLE.value
            pending = state.pending
            if not pending:
                break
            waited = (workflow.now() - started).total_seconds()
            if waited >= s.bodhi_stable_timeout:
                for nvr in pending:
                    nvr_to_pkg[nvr].reason = (
                        f"not in {s.stable_tag} after {s.bodhi_stable_timeout:.0f} s"
                    )
                    self._unstable.add(nvr_to_pkg[nvr].component)
                await self._email(MailKind.STABLE_FAILURE)
                return  # errata tags stay for a human to look at
            wants_warning = s.bodhi_warn_timeout > 0 and not warned  # 0: no warning
            if wants_warning and waited >= s.bodhi_warn_timeout:
                warned = True
                await self._email(MailKind.STABLE_WARNING)
            next_check = min(s.stable_poll, s.bodhi_stable_timeout - waited)
            if s.bodhi_warn_timeout > 0 and not warned:
                next_check = min(next_check, max(1.0, s.bodhi_warn_timeout - waited))
            await workflow.sleep(next_check)
        for tag in list(self._errata_tags):
            await self._remove_side_tag(tag)

    # ---- cleanup ----------------------------------------------------------

    async def _cleanup_build_side_tags(self) -> None:
        """Runs on success, failure and cancellation alike. Errata tags that an
        update was filed from stay with it; one left without (Bodhi refused)
        goes too."""
        unfiled = [tag for tag in self._errata_tags if tag not in self._filed_from]
        for tag in list(self._side_tags) + unfiled:
            try:
                await self._remove_side_tag(tag)
            except BatchAbort as err:
                workflow.logger.error("could not remove side tag %s: %s", tag, err)

    async def _remove_side_tag(self, tag: str) -> None:
        await self._koji(KojiActivities.remove_side_tag, RemoveSideTagRequest(tag), f"untag:{tag}")
        for tags in (self._side_tags, self._errata_tags):
            if tag in tags:
                tags.remove(tag)
        await self._tell_collector()

    # ---- helpers ----------------------------------------------------------

    async def _koji(self, activity: Callable[[Any, A], R], arg: A, activity_id: str) -> R:
        """One Koji (or Bodhi) activity; a failure Temporal gave up on aborts the batch."""
        try:
            return await workflow.execute_activity_method(
                activity, arg, activity_id=activity_id, **KOJI_CALL
            )
        except ActivityError as err:
            if is_cancelled_exception(err):
                raise  # the batch is being cancelled: not a Koji fault
            reason, _ = failure_text(err)
            raise BatchAbort(f"{activity.__name__} failed: {reason}") from err

    async def _email(self, kind: MailKind, reason: str = "") -> None:
        if not self._settings.email_enabled:
            return
        try:
            await workflow.execute_activity_method(
                MailActivities.send_email,
                EmailRequest(kind, self._result(self._phase), self._settings, reason),
                activity_id=f"email:{kind}",
                **MAIL,
            )
        except ActivityError as err:  # mail never holds up or fails a batch
            workflow.logger.error("could not send the %s email: %s", kind, err)

    async def _tell_collector(self) -> None:
        """The collector answers the bridge's routing query for repo messages."""
        parent = workflow.info().parent
        if parent is None:
            return
        await workflow.get_external_workflow_handle(parent.workflow_id).signal(
            SIGNAL_SIDE_TAGS,
            SideTagsEvent(self._req.batch_id, self._side_tags + self._errata_tags),
        )

    def _set_phase(self, phase: str) -> None:
        self._phase = phase
        workflow.upsert_search_attributes([PHASE_KEY.value_set(phase.split(":")[0])])
        counts: dict[str, int] = {}
        for p in self._packages.values():
            counts[p.state] = counts.get(p.state, 0) + 1
        workflow.set_current_details(
            f"**{phase}** — "
            + ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
            + (f"; side tag `{self._side_tags[-1]}`" if self._side_tags else "")
        )

    def _add_task(self, pkg: PackageResult, task_id: int) -> None:
        if task_id not in pkg.task_ids:
            pkg.task_ids.append(task_id)
            pkg.task_urls.append(self._task_url(task_id))

    def _fail(self, pkg: PackageResult, reason: str) -> None:
        pkg.state = State.FAILED.value
        # One error for many packages (Bodhi refusing an update of 2,000 lists
        # each build) must not be copied whole into each: 2,000 reasons of
        # 10 KB made a 21 MB payload.
        pkg.reason = reason if len(reason) <= REASON_MAX else reason[: REASON_MAX - 1] + "…"

    def _any_failed(self) -> bool:
        return any(p.state == State.FAILED.value for p in self._packages.values())

    def _fail_unfinished(self, reason: str) -> None:
        """The batch ends early: what did not finish failed. For a real batch a
        package built but not yet filed in Bodhi did not succeed either."""
        released = self._settings.scratch
        for pkg in self._packages.values():
            if pkg.state in (State.PENDING.value, State.BUILDING.value):
                self._fail(pkg, reason)
            elif pkg.state == State.SUCCEEDED.value and not released and not pkg.update_alias:
                what = f"{pkg.nvr} " if pkg.nvr else ""
                self._fail(pkg, f"built {what}but not released: {reason}")
                if not pkg.existing_build and self._settings.draft_builds and \
                        not pkg.build_id:
                    self._drafts.add(pkg.component)  # its build never looked up

    def _drafts_left(self) -> list[str]:
        """The draft builds this batch made and did not promote (NVR, or the task)."""
        out = []
        for name in sorted(self._drafts):
            pkg = self._packages[name]
            if pkg.nvr:
                out.append(pkg.nvr)
            elif pkg.task_ids:
                out.append(f"{name}: the draft build of task {pkg.task_ids[-1]}")
        return out

    def _drafts_left_note(self) -> str:
        left = self._drafts_left()
        if not left:
            return ""
        return (f". Left {len(left)} unpromoted draft build(s) in Koji: {', '.join(left)}; "
                "a draft takes no NVR and the next batch rebuilds the package; to release "
                "one as it is: koji promote-build <draft NVR>")

    def _active(self) -> list[PackageResult]:
        """The packages still in play: not failed, dropped or skipped (denylisted)."""
        gone = (State.FAILED.value, State.DROPPED.value, State.SKIPPED.value)
        return [p for p in self._packages.values() if p.state not in gone]

    def _outcome(self) -> BatchOutcome:
        """Dropped packages count neither way: nothing was there to rebuild."""
        states = [p.state for p in self._packages.values() if p.state != State.DROPPED.value]
        failed = states.count(State.FAILED.value)
        if failed == 0:
            # Built, but an update did not reach the stable tag in time.
            return BatchOutcome.UNSTABLE if self._unstable else BatchOutcome.SUCCEEDED
        tried = len(states) - states.count(State.SKIPPED.value)
        return BatchOutcome.FAILED if failed == tried else BatchOutcome.PARTIAL

    def _task_url(self, task_id: int) -> str:
        base = self._settings.koji_weburl.rstrip("/")
        return f"{base}/taskinfo?taskID={task_id}" if base else ""

    def _update_notes(self, n: int, total: int, nvrs: Sequence[str]) -> str:
        part = f" (part {n} of {total})" if total > 1 else ""
        return (
            f"Automatic rebuild of {len(nvrs)} package(s) for ELN by ebs, "
            f"batch {self._req.batch_id}{part}."
        )

    def _result(self, outcome: str, finished: bool = False) -> BatchResult:
        return BatchResult(
            batch_id=self._req.batch_id,
            outcome=outcome,
            packages=sorted(self._packages.values(), key=lambda p: (p.ordering, p.component)),
            side_tags=list(self._side_tags),
            errata_tags=list(self._errata_tags),
            updates=list(self._updates),
            started_at=self._started.isoformat(),
            finished_at=workflow.now().isoformat() if finished else "",
            error=self._error,
            config_version=self._settings.config_version,
            drafts_left=self._drafts_left(),
        )


def _package_of(nvr: str) -> str:
    """The package name of an N-V-R ("" when it is not one)."""
    parts = nvr.rsplit("-", 2)
    return parts[0] if len(parts) == 3 and all(parts) else ""


def _names(names: Any, limit: int = 8) -> str:
    items = sorted(names)
    more = f" … (+{len(items) - limit})" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more

"""Koji activities: one-line adapters over ebs.koji.adapter.KojiAdapter."""

from __future__ import annotations

from dataclasses import replace

from temporalio import activity

from ebs.activities.errors import permanent_faults_fail_fast as fail_fast
from ebs.contracts import koji as k
from ebs.koji.adapter import KojiAdapter


def _beat() -> None:
    activity.heartbeat()


class KojiActivities:
    def __init__(self, koji: KojiAdapter) -> None:
        self._koji = koji

    @activity.defn(name="get_build_target")
    @fail_fast
    def get_build_target(self, name: str) -> k.BuildTarget:
        return self._koji.get_build_target(name)

    @activity.defn(name="get_builds")
    @fail_fast
    def get_builds(self, req: k.BuildLookupRequest) -> k.BuildLookupResult:
        return self._koji.get_builds(req, on_progress=_beat)

    @activity.defn(name="existing_rebuilds")
    @fail_fast
    def existing_rebuilds(self, req: k.RebuildLookupRequest) -> k.RebuildLookupResult:
        return self._koji.existing_rebuilds(req, on_progress=_beat)

    @activity.defn(name="resolve_in_trigger_tag")
    @fail_fast
    def resolve_in_trigger_tag(self, req: k.TagResolveRequest) -> k.TagResolveResult:
        return self._koji.resolve_in_tags(req, on_progress=_beat)

    @activity.defn(name="create_side_tag")
    @fail_fast
    def create_side_tag(self, req: k.SideTagRequest) -> k.SideTag:
        if not req.not_before and activity.in_activity():
            # the first try's scheduling time: every retry looks from there
            req = replace(req, not_before=activity.info().scheduled_time.timestamp())
        return self._koji.create_side_tag(req)

    @activity.defn(name="tag_builds")
    @fail_fast
    def tag_builds(self, req: k.TagBuildsRequest) -> k.TagBuildsResult:
        return self._koji.tag_builds(req, on_progress=_beat)

    @activity.defn(name="repo_state")
    @fail_fast
    def repo_state(self, req: k.RepoStateRequest) -> k.RepoState:
        return self._koji.repo_state(req)

    @activity.defn(name="submit_builds")
    @fail_fast
    def submit_builds(self, req: k.SubmitRequest) -> k.SubmitResult:
        if req.first_submission and activity.in_activity() and activity.info().attempt > 1:
            req = replace(req, first_submission=False)  # an earlier try may have submitted
        return self._koji.submit_builds(req, on_progress=_beat)

    @activity.defn(name="poll_tasks")
    @fail_fast
    def poll_tasks(self, req: k.TaskPollRequest) -> k.TaskPollResult:
        return self._koji.poll_tasks(req, on_progress=_beat)

    @activity.defn(name="cancel_tasks")
    @fail_fast
    def cancel_tasks(self, req: k.CancelRequest) -> None:
        self._koji.cancel_tasks(req, on_progress=_beat)

    @activity.defn(name="task_builds")
    @fail_fast
    def task_builds(self, req: k.TaskPollRequest) -> k.TaskBuildsResult:
        return self._koji.task_builds(req, on_progress=_beat)

    @activity.defn(name="promote_builds")
    @fail_fast
    def promote_builds(self, req: k.PromoteRequest) -> k.PromoteResult:
        return self._koji.promote_builds(req, on_progress=_beat)

    @activity.defn(name="remove_side_tag")
    @fail_fast
    def remove_side_tag(self, req: k.RemoveSideTagRequest) -> None:
        self._koji.remove_side_tag(req)

    @activity.defn(name="check_stable")
    @fail_fast
    def check_stable(self, req: k.StableCheckRequest) -> k.StableCheckResult:
        return self._koji.check_stable(req)

    def all(self) -> list:
        return [
            self.get_build_target, self.get_builds, self.resolve_in_trigger_tag,
            self.existing_rebuilds,
            self.create_side_tag, self.tag_builds,
            self.repo_state, self.submit_builds, self.poll_tasks, self.cancel_tasks,
            self.task_builds, self.promote_builds, self.remove_side_tag, self.check_stable,
        ]

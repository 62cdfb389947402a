"""Koji activities: one-line adapters over ebs.kojiclient.KojiAdapter."""

from __future__ import annotations

from temporalio import activity

from ebs.activities.errors import permanent_faults_fail_fast as fail_fast
from ebs.activities.types import (
    BuildLookupRequest,
    BuildLookupResult,
    BuildTarget,
    CancelRequest,
    PromoteRequest,
    PromoteResult,
    RemoveSideTagRequest,
    RepoState,
    RepoStateRequest,
    SideTag,
    SideTagRequest,
    StableCheckRequest,
    StableCheckResult,
    SubmitRequest,
    SubmitResult,
    TagBuildsRequest,
    TagBuildsResult,
    TagResolveRequest,
    TagResolveResult,
    TaskBuildsResult,
    TaskPollRequest,
    TaskPollResult,
)
from ebs.kojiclient import KojiAdapter


def _beat() -> None:
    activity.heartbeat()


class KojiActivities:
    def __init__(self, koji: KojiAdapter) -> None:
        self._koji = koji

    @activity.defn(name="get_build_target")
    @fail_fast
    def get_build_target(self, name: str) -> BuildTarget:
        return self._koji.get_build_target(name)

    @activity.defn(name="get_builds")
    @fail_fast
    def get_builds(self, req: BuildLookupRequest) -> BuildLookupResult:
        return self._koji.get_builds(req, on_progress=_beat)

    @activity.defn(name="resolve_in_trigger_tag")
    @fail_fast
    def resolve_in_trigger_tag(self, req: TagResolveRequest) -> TagResolveResult:
        return self._koji.resolve_in_tags(req, on_progress=_beat)

    @activity.defn(name="create_side_tag")
    @fail_fast
    def create_side_tag(self, req: SideTagRequest) -> SideTag:
        return self._koji.create_side_tag(req)

    @activity.defn(name="tag_builds")
    @fail_fast
    def tag_builds(self, req: TagBuildsRequest) -> TagBuildsResult:
        return self._koji.tag_builds(req, on_progress=_beat)

    @activity.defn(name="repo_state")
    @fail_fast
    def repo_state(self, req: RepoStateRequest) -> RepoState:
        return self._koji.repo_state(req)

    @activity.defn(name="submit_builds")
    @fail_fast
    def submit_builds(self, req: SubmitRequest) -> SubmitResult:
        return self._koji.submit_builds(req, on_progress=_beat)

    @activity.defn(name="poll_tasks")
    @fail_fast
    def poll_tasks(self, req: TaskPollRequest) -> TaskPollResult:
        return self._koji.poll_tasks(req, on_progress=_beat)

    @activity.defn(name="cancel_tasks")
    @fail_fast
    def cancel_tasks(self, req: CancelRequest) -> None:
        self._koji.cancel_tasks(req, on_progress=_beat)

    @activity.defn(name="task_builds")
    @fail_fast
    def task_builds(self, req: TaskPollRequest) -> TaskBuildsResult:
        return self._koji.task_builds(req, on_progress=_beat)

    @activity.defn(name="promote_builds")
    @fail_fast
    def promote_builds(self, req: PromoteRequest) -> PromoteResult:
        return self._koji.promote_builds(req, on_progress=_beat)

    @activity.defn(name="remove_side_tag")
    @fail_fast
    def remove_side_tag(self, req: RemoveSideTagRequest) -> None:
        self._koji.remove_side_tag(req)

    @activity.defn(name="check_stable")
    @fail_fast
    def check_stable(self, req: StableCheckRequest) -> StableCheckResult:
        return self._koji.check_stable(req)

    def all(self) -> list:
        return [
            self.get_build_target, self.get_builds, self.resolve_in_trigger_tag,
            self.create_side_tag, self.tag_builds,
            self.repo_state, self.submit_builds, self.poll_tasks, self.cancel_tasks,
            self.task_builds, self.promote_builds, self.remove_side_tag, self.check_stable,
        ]

"""Bodhi activities: one-line adapters over ebs.bodhi.adapter.BodhiAdapter."""

from __future__ import annotations

from temporalio import activity

from ebs.activities.errors import permanent_faults_fail_fast as fail_fast
from ebs.bodhi.adapter import BodhiAdapter
from ebs.contracts.bodhi import UpdateInfo, UpdateRequest


class BodhiActivities:
    def __init__(self, bodhi: BodhiAdapter) -> None:
        self._bodhi = bodhi

    @activity.defn(name="file_update")
    @fail_fast
    def file_update(self, req: UpdateRequest) -> UpdateInfo:
        return self._bodhi.file_update(req)

    def all(self) -> list:
        return [self.file_update]

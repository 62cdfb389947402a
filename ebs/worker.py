"""The ebs worker: hosts the workflows and the Koji, Bodhi, mail and settings activities."""

from __future__ import annotations

import asyncio
import logging
import signal
from concurrent.futures import ThreadPoolExecutor

from temporalio.client import Client
from temporalio.worker import Worker

from ebs.activities.bodhi import BodhiActivities
from ebs.activities.koji import KojiActivities
from ebs.activities.mail import MailActivities
from ebs.activities.settings import SettingsActivities
from ebs.bodhiclient import BodhiAdapter
from ebs.config.holder import ConfigHolder
from ebs.kojiclient import KojiAdapter
from ebs.workflows.attempt import BuildAttempt
from ebs.workflows.batch import RebuildBatch
from ebs.workflows.collector import BatchCollector

log = logging.getLogger(__name__)

WORKFLOWS = [BatchCollector, RebuildBatch, BuildAttempt]


def build_worker(
    client: Client,
    *,
    holder: ConfigHolder,
    koji: KojiAdapter,
    bodhi: BodhiAdapter,
    task_queue: str,
    max_concurrent_activities: int = 16,
) -> Worker:
    """A worker for all of ebs's workflows and activities on `task_queue`."""
    activities = (
        KojiActivities(koji).all()
        + BodhiActivities(bodhi).all()
        + SettingsActivities(holder, koji).all()
        + MailActivities(lambda: holder.current().config.configuration.email).all()
    )
    return Worker(
        client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        activities=activities,
        activity_executor=ThreadPoolExecutor(max_workers=max_concurrent_activities),
        max_concurrent_activities=max_concurrent_activities,
    )

"""The ebs worker: hosts the workflows and the Koji, Bodhi, mail, settings and
periodic-job activities, and keeps ebs's Temporal Schedules up to date
(ebs.schedules)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from temporalio.client import Client
from temporalio.worker import Worker

from ebs.activities.bodhi import BodhiActivities
from ebs.activities.cleanup import CleanupActivities
from ebs.activities.koji import KojiActivities
from ebs.activities.ledger import LedgerActivities
from ebs.activities.mail import MailActivities
from ebs.activities.messages import MessageActivities
from ebs.activities.queue import QueueActivities
from ebs.activities.settings import SettingsActivities
from ebs.activities.sweep import SweepActivities
from ebs.bodhi.adapter import BodhiAdapter, BodhiFor
from ebs.config.holder import ConfigHolder
from ebs.config.model import EbsConfig
from ebs.koji.adapter import KojiAdapter
from ebs.schedules import (
    ScheduleActivities,
    build_refresh_worker,
    ensure_schedules,
    refresh_when_due,
)
from ebs.workflows.attempt import BuildAttempt
from ebs.workflows.batch import RebuildBatch
from ebs.workflows.cleanup import PeriodicCleanup
from ebs.workflows.collector import BatchCollector
from ebs.workflows.index import PackageIndex
from ebs.workflows.ledger import ComponentLedger
from ebs.workflows.queue import CollectorQueue
from ebs.workflows.sweep import ConfigRefresh, SideTagSweep

log = logging.getLogger(__name__)

WORKFLOWS = [
    BatchCollector, RebuildBatch, BuildAttempt, SideTagSweep, ConfigRefresh, CollectorQueue,
    PackageIndex, ComponentLedger, PeriodicCleanup,
]


def build_worker(
    client: Client,
    *,
    holder: ConfigHolder,
    koji: KojiAdapter,
    bodhi: BodhiAdapter,
    task_queue: str,
    max_concurrent_activities: int = 16,
    untagging: bool = False,
) -> Worker:
    """A worker for all of ebs's workflows and activities on `task_queue`."""
    activities = (
        KojiActivities(koji).all()
        + BodhiActivities(bodhi).all()
        + SettingsActivities(holder, koji).all()
        + MailActivities(lambda: holder.current().config.configuration.email).all()
        + MessageActivities(lambda: holder.current().config.messaging,
                            lambda: holder.current().config.configuration.koji.username or "").all()
        + SweepActivities(client, holder, koji, bodhi, task_queue).all()
        + ScheduleActivities(client, holder, task_queue, untagging=untagging).all()
        + QueueActivities(client, task_queue).all()
        + LedgerActivities(client, task_queue).all()
        + CleanupActivities(client, holder, koji).all()
    )
    return Worker(
        client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        activities=activities,
        activity_executor=ThreadPoolExecutor(max_workers=max_concurrent_activities),
        max_concurrent_activities=max_concurrent_activities,
    )


def _bodhi_kerberos_from_koji_keytab(cfg: EbsConfig) -> None:
    """Bodhi's Kerberos login (gssapi) finds the keytab through the environment;
    ebs's one service principal is configured on the Koji side."""
    auth = cfg.configuration.koji.auth
    if auth.method == "kerberos" and auth.keytab and "KRB5_CLIENT_KTNAME" not in os.environ:
        os.environ["KRB5_CLIENT_KTNAME"] = auth.keytab


async def run_worker(
    config: str | Sequence[str],
    *,
    metrics_port: int | None = None,
    max_concurrent_activities: int = 16,
    untagging: bool = False,
) -> int:
    """`ebs worker`: serve the workflows and activities until SIGTERM/SIGINT.

    `config` is one config source or several merged in order (a path, an
    http(s) URL or git+URL#ref[:path]; see ebs.config.sources), re-read by the
    ConfigRefresh schedule and, failing that, every 1.5 × timers.config_refresh.
    """
    from ebs.loglevel import follow_log_level
    from ebs.temporal_client import connect, register_search_attributes

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    bodhi_for = BodhiFor()
    holder = ConfigHolder(
        config, resolve_rawhide_for=lambda c: bodhi_for(c).rawhide_stable_tag()
    )
    await asyncio.to_thread(holder.load)
    cfg = holder.config
    _bodhi_kerberos_from_koji_keytab(cfg)
    bodhi = bodhi_for(cfg)
    koji = KojiAdapter(cfg.configuration.koji)
    if metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(metrics_port)
    client = await connect(cfg.temporal)
    task_queue = cfg.temporal.task_queue
    try:
        added = await register_search_attributes(client, cfg.temporal.namespace)
        if added:
            log.info("registered search attributes %s", ", ".join(added))
    except Exception as err:  # a cluster where ebs may not manage the namespace
        log.warning("could not check/register search attributes: %s", err)
    try:
        await ensure_schedules(client, task_queue, cfg.timers, untagging=untagging)
    except Exception as err:  # e.g. no permission to manage schedules
        log.warning(
            "could not create or update the schedules (no scheduled side-tag sweep or "
            "config refresh until a worker can): %s", err,
        )
    worker = build_worker(
        client,
        holder=holder,
        koji=koji,
        bodhi=bodhi,
        task_queue=task_queue,
        max_concurrent_activities=max_concurrent_activities,
        untagging=untagging,
    )
    refresh_worker = build_refresh_worker(client, holder, task_queue)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    refresher = asyncio.create_task(refresh_when_due(holder))
    log_levels = asyncio.create_task(follow_log_level(client))  # /loglevel/<LEVEL>
    log.info(
        "worker %s on task queue %r at %s (namespace %s), config %s",
        client.identity, task_queue, cfg.temporal.address, cfg.temporal.namespace,
        holder.version,
    )
    async with worker, refresh_worker:
        await stop.wait()
        log.info("shutting down: finishing running activities")
    refresher.cancel()
    log_levels.cancel()
    koji.close()
    return 0

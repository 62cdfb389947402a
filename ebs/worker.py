"""The ebs worker: hosts the workflows and the Koji, Bodhi, mail and settings activities."""

from __future__ import annotations

import asyncio
import logging
import os
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
from ebs.config.loader import load_config
from ebs.config.model import EbsConfig
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


def _bodhi_kerberos_from_koji_keytab(cfg: EbsConfig) -> None:
    """Bodhi's Kerberos login (gssapi) finds the keytab through the environment;
    ebs's one service principal is configured on the Koji side."""
    auth = cfg.configuration.koji.auth
    if auth.method == "kerberos" and auth.keytab and "KRB5_CLIENT_KTNAME" not in os.environ:
        os.environ["KRB5_CLIENT_KTNAME"] = auth.keytab


async def run_worker(
    config_path: str,
    *,
    metrics_port: int | None = None,
    max_concurrent_activities: int = 16,
) -> int:
    """`ebs worker`: serve the workflows and activities until SIGTERM/SIGINT."""
    from ebs.temporal_client import connect, register_search_attributes

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = load_config(config_path)
    _bodhi_kerberos_from_koji_keytab(cfg)
    bodhi = BodhiAdapter(cfg.configuration.bodhi)
    holder = ConfigHolder(config_path, resolve_rawhide=bodhi.rawhide_stable_tag)
    await asyncio.to_thread(holder.load)
    koji = KojiAdapter(cfg.configuration.koji)
    if metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(metrics_port)
    client = await connect(cfg.temporal)
    try:
        added = await register_search_attributes(client, cfg.temporal.namespace)
        if added:
            log.info("registered search attributes %s", ", ".join(added))
    except Exception as err:  # a cluster where ebs may not manage the namespace
        log.warning("could not check/register search attributes: %s", err)
    worker = build_worker(
        client,
        holder=holder,
        koji=koji,
        bodhi=bodhi,
        task_queue=cfg.temporal.task_queue,
        max_concurrent_activities=max_concurrent_activities,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    refresher = asyncio.create_task(holder.refresh_forever())
    log.info(
        "worker on task queue %r at %s (namespace %s), config %s",
        cfg.temporal.task_queue, cfg.temporal.address, cfg.temporal.namespace, holder.version,
    )
    async with worker:
        await stop.wait()
        log.info("shutting down: finishing running activities")
    refresher.cancel()
    koji.close()
    return 0

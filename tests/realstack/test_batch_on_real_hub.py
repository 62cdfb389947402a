"""A whole RebuildBatch (scratch: draft builds, no release) on the real Koji
1.35.3 hub with its 1.35 kojira stand-in: the side tag is made by a packager
logged in with a password from config (issue 17 #3), its repo comes only
because ebs requests it (#1), one build fails once and is retried."""

from __future__ import annotations

import uuid
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from ebs.bodhi.adapter import BodhiAdapter
from ebs.config.holder import ConfigHolder
from ebs.config.model import EbsConfig
from ebs.config.packages import build_package_lists
from ebs.contracts.batch import BatchRequest
from ebs.contracts.events import TagEvent
from ebs.koji.adapter import KojiAdapter
from ebs.worker import build_worker
from ebs.workflows.batch import RebuildBatch
from tests.realstack.koji_stack import EBS_USER, TRIGGER_TAG, KojiStack


async def test_a_scratch_batch_on_the_real_hub(dev_server_env: WorkflowEnvironment,
                                               koji_stack_fresh: KojiStack,
                                               tmp_path: Path) -> None:
    stack = koji_stack_fresh
    secret = tmp_path / "koji-password"
    secret.write_text(stack.hub.passwords[EBS_USER] + "\n")
    names = ["sed", "grep"]
    cfg = EbsConfig.model_validate({
        "configuration": {
            "koji": stack.koji_config_dict(
                scratch_build=True, username=None,
                auth={"method": "password", "user": EBS_USER,
                      "password_file": str(secret)}),
            "bodhi": {"url": "http://127.0.0.1:9/", "auth": "none"},
            "control": {},
        },
        "timers": {"lull": 1, "task_poll": 2, "repo_poll": 2, "tag_timeout": 120,
                   "stable_poll": 5},
    })
    lists = build_package_lists({n: "realstack" for n in names}, cfg.components.overrides)
    holder = ConfigHolder.fixed(cfg, lists, trigger_tag=TRIGGER_TAG)
    koji = KojiAdapter(cfg.configuration.koji, timeout=30, tag_wait=30)
    bodhi = BodhiAdapter(cfg.configuration.bodhi)
    stack.builder.script("grep", "fail", "succeed")
    queue = f"ebs-real-{uuid.uuid4().hex[:8]}"
    batch_id = f"ebs-batch-real-{uuid.uuid4().hex[:8]}"
    events = [TagEvent(component=n, nvr=stack.rawhide_nvrs[n], tag=TRIGGER_TAG,
                       event_id=f"real-{uuid.uuid4()}") for n in names]
    try:
        async with build_worker(dev_server_env.client, holder=holder, koji=koji,
                                bodhi=bodhi, task_queue=queue):
            result = await dev_server_env.client.execute_workflow(
                RebuildBatch.run, BatchRequest(batch_id, events, holder.batch_settings()),
                id=batch_id, task_queue=queue)
    finally:
        koji.close()
    pkgs = {p.component: p for p in result.packages}
    assert result.outcome == "succeeded", (result.error, pkgs)
    assert {p.state for p in pkgs.values()} == {"succeeded"}
    assert pkgs["grep"].attempts == 2 and len(pkgs["grep"].task_ids) == 2
    assert result.side_tags == []  # removed at the end

"""Workflow ids and type names, and the signal, query and update names.

Shared by the workflows, the bridge, the API and the docs for the `temporal` CLI;
the names are recorded in workflow histories and must not change.
"""

from __future__ import annotations

COLLECTOR_WORKFLOW_ID = "ebs-collector"


# Signal, query and update names, shared with the bridge, the API and the docs
# for the `temporal` CLI.
SIGNAL_TAG = "tag"
SIGNAL_TAGS = "tags"  # several TagEvents in one signal (TagBatch), from the bridge
SIGNAL_PAUSE = "pause"


SIGNAL_RESUME = "resume"
SIGNAL_TASK_STATE = "task_state"


SIGNAL_REPO_EVENT = "repo_event"
SIGNAL_SIDE_TAGS = "side_tags"  # RebuildBatch -> BatchCollector


SIGNAL_TASKS_SUBMITTED = "tasks_submitted"  # BuildAttempt -> RebuildBatch
UPDATE_ENQUEUE = "enqueue"


QUERY_STATUS = "status"
QUERY_ROUTING = "routing"
SIGNAL_SET_LOG_LEVEL = "set_log_level"  # /loglevel/<LEVEL>: the workers follow it
QUERY_LOG_LEVEL = "log_level"
QUERY_QUEUED = "queued"  # a page of the collector's queue
# The collector's queue holders (CollectorQueue workflows, ebs.workflows.queue)
UPDATE_HOLD = "hold"
UPDATE_TAKE = "take"
QUERY_HELD = "held"


SWEEP_WORKFLOW = "SideTagSweep"
CONFIG_REFRESH_WORKFLOW = "ConfigRefresh"
HOLDER_WORKFLOW = "CollectorQueue"  # a partition of the collector's queue
INDEX_WORKFLOW = "PackageIndex"  # a large batch's package names, for EbsPackages

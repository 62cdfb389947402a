"""Replays recorded histories against today's workflow code: a change that
would break running workflows (non-determinism) fails here.

To re-record, see tests/engine/test_record_histories.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from ebs.payload_codec import DATA_CONVERTER
from ebs.worker import WORKFLOWS

HISTORIES = sorted((Path(__file__).parent.parent / "histories").glob("*.json"))


def test_there_are_histories_to_replay() -> None:
    kinds = {p.name.split("_")[0] for p in HISTORIES}
    assert {"rebuild", "build", "batch"} <= kinds, HISTORIES


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_replay(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    await Replayer(workflows=WORKFLOWS, data_converter=DATA_CONVERTER).replay_workflow(history)

"""Issue 14, safety net: the failed-SCM-URL denylist (the original's
``failed_builds`` table), kept by the ComponentLedger workflow."""

from __future__ import annotations

from ebs.api.components import clear_denied
from ebs.contracts.ledger import (
    LEDGER_WORKFLOW_ID,
    QUERY_COMPONENTS,
    QUERY_DENIED,
    DeniedAnswer,
    record_shard_id,
    records_from_rows,
)
from tests.helpers.engine import Engine


def by_name(result):  # type: ignore[no-untyped-def]
    return {p.component: p for p in result.packages}


def scm_urls_built(engine: Engine, name: str) -> list[str]:
    return [c.args[0] for c in engine.sim.calls_named("build") if f"/{name}" in c.args[0]]


async def denied(engine: Engine) -> DeniedAnswer:
    handle = engine.client.get_workflow_handle(LEDGER_WORKFLOW_ID)
    return await handle.query(QUERY_DENIED, result_type=DeniedAnswer)


async def test_a_url_that_failed_for_good_is_skipped_until_cleared_or_a_new_commit(
    engine: Engine,
) -> None:
    engine.sim.set_outcomes("glibc", ["FAILED", "FAILED"])
    first = await engine.run_batch(["bash", "glibc"])
    assert by_name(first)["glibc"].state == "failed"
    url = scm_urls_built(engine, "glibc")[0]
    entries = (await denied(engine)).denied
    assert [(d.component, d.url, d.batch_id) for d in entries] == [("glibc", url, first.batch_id)]

    # The same Rawhide build again: never submitted, skipped with the reason.
    builds_before = len(scm_urls_built(engine, "glibc"))
    second = await engine.run_batch(["glibc", "coreutils"])
    glibc = by_name(second)["glibc"]
    assert glibc.state == "skipped" and url in glibc.reason and first.batch_id in glibc.reason
    assert len(scm_urls_built(engine, "glibc")) == builds_before
    assert by_name(second)["coreutils"].state == "stable", by_name(second)["coreutils"].reason
    assert second.outcome == "succeeded"

    # Only skipped packages: no side tag at all.
    side_tags = len(engine.sim.side_tags_created)
    third = await engine.run_batch(["glibc"])
    assert by_name(third)["glibc"].state == "skipped"
    assert len(engine.sim.side_tags_created) == side_tags

    # A new Rawhide commit is a new URL: built.
    engine.sim.add_rawhide_build("glibc", "9.99", "1", commit="f" * 40)
    fourth = await engine.run_batch(["glibc"])
    assert by_name(fourth)["glibc"].state == "stable"
    assert scm_urls_built(engine, "glibc")[-1] != url

    # The per-component record follows the last batch.
    shard = engine.client.get_workflow_handle(record_shard_id("glibc"))
    records = records_from_rows(await shard.query(QUERY_COMPONENTS, result_type=list))
    glibc_rec = next(r for r in records if r.component == "glibc")
    assert glibc_rec.batch_id == fourth.batch_id and glibc_rec.state == "stable"


async def test_clearing_one_component_lets_its_url_build_again(engine: Engine) -> None:
    engine.sim.set_outcomes("glibc", ["FAILED", "FAILED", "CLOSED"])
    engine.sim.set_outcomes("bash", ["FAILED", "FAILED"])
    await engine.run_batch(["bash", "glibc"])
    assert {d.component for d in (await denied(engine)).denied} == {"bash", "glibc"}

    # The same update the API, the CLI and `temporal workflow update execute` send.
    cleared = await clear_denied(engine.client, "glibc")
    assert cleared.component == "glibc" and len(cleared.removed) == 1
    assert {d.component for d in (await denied(engine)).denied} == {"bash"}

    again = await engine.run_batch(["glibc", "bash"])
    assert by_name(again)["glibc"].state == "stable"
    assert by_name(again)["bash"].state == "skipped"


async def test_the_ledger_keeps_its_state_across_continue_as_new(engine: Engine) -> None:
    from ebs.contracts.ledger import (
        LEDGER_WORKFLOW,
        SIGNAL_LEDGER_RECORD,
        ComponentRecord,
        LedgerBatch,
        LedgerPackage,
        LedgerState,
    )

    def batch(n: int) -> LedgerBatch:
        return LedgerBatch(f"b{n}", f"2026-01-01T00:00:{n:02d}", [LedgerPackage(
            ComponentRecord(f"pkg{n}", f"b{n}", "failed", "build failed", f"pkg{n}-1-1.fc45"),
            scm_url=f"git+https://x/pkg{n}#{n}", failed_for_good=True,
        )])

    handle = await engine.client.start_workflow(
        LEDGER_WORKFLOW, LedgerState(history_limit=12), id=LEDGER_WORKFLOW_ID,
        task_queue=engine.task_queue, start_signal=SIGNAL_LEDGER_RECORD,
        start_signal_args=[batch(0)],
    )
    first_run = handle.result_run_id
    for n in range(1, 12):
        await handle.signal(SIGNAL_LEDGER_RECORD, batch(n))
    answer = await denied(engine)
    assert sorted(d.component for d in answer.denied) == sorted(f"pkg{n}" for n in range(12))
    assert (await handle.describe()).run_id != first_run  # it did continue as new
    records = records_from_rows(await handle.query(QUERY_COMPONENTS, result_type=list))
    assert len(records) == 12

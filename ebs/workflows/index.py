"""PackageIndex: makes every package of a large batch findable by EbsPackages.

A keyword-list search attribute value holds at most 2 KB (about 150 package
names), so a batch of 2,000 carries only its first names itself. For the rest,
the batch starts one PackageIndex child per 2 KB of names
(`<batch id>-packages-N`), each with those names in EbsPackages; it ends at
once and stays in visibility as long as the batch does. A search for
`EbsPackages = 'bash'` in the Web UI finds the batch or one of its index
children (whose parent is the batch); `ebs history` and `/history` map the
children back to their batch.
"""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.common import SearchAttributePair, TypedSearchAttributes

with workflow.unsafe.imports_passed_through():
    from ebs.contracts.batch import PackageIndexRequest
    from ebs.contracts.names import INDEX_WORKFLOW
    from ebs.contracts.search import PACKAGES_KEY, packages_value

PATCH_INDEX = "batch-package-index"


def name_chunks(names: list[str]) -> list[list[str]]:
    """`names` in order, cut into pieces that each fit one EbsPackages value."""
    chunks: list[list[str]] = []
    rest = list(names)
    while rest:
        chunk = packages_value(rest) or rest[:1]
        chunks.append(chunk)
        rest = rest[len(chunk):]
    return chunks


def index_workflow_id(batch_id: str, part: int) -> str:
    return f"{batch_id}-packages-{part}"


@workflow.defn(name=INDEX_WORKFLOW)
class PackageIndex:
    @workflow.run
    async def run(self, req: PackageIndexRequest) -> None:
        return None  # the search attribute set at its start is the point


async def index_packages(batch_id: str, names: list[str]) -> None:
    """From a batch: start the index children its own EbsPackages cannot hold
    (none for a batch whose names all fit; guarded for older histories)."""
    names = sorted(names)
    if len(packages_value(names)) == len(names) or not workflow.patched(PATCH_INDEX):
        return
    await asyncio.gather(*(
        workflow.start_child_workflow(
            PackageIndex.run,
            PackageIndexRequest(batch_id, part, len(chunk)),
            id=index_workflow_id(batch_id, part),
            search_attributes=TypedSearchAttributes([SearchAttributePair(PACKAGES_KEY, chunk)]),
            parent_close_policy=workflow.ParentClosePolicy.ABANDON,
            static_summary=f"index of {batch_id}: {chunk[0]} … {chunk[-1]}",
        )
        for part, chunk in enumerate(name_chunks(names))
    ))

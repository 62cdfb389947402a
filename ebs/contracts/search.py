"""The search attributes ebs sets on its workflows, and the size limit of a value.

Registered on the Temporal namespace by ebs.temporal_client; set by the
workflows (typed keys) and used in visibility queries by the API and the docs.
"""

from __future__ import annotations

import json

from temporalio.common import SearchAttributeKey

SA_PACKAGES = "EbsPackages"  # KeywordList
SA_PHASE = "EbsPhase"  # Keyword
SA_OUTCOME = "EbsOutcome"  # Keyword
SA_CONFIG_VERSION = "EbsConfigVersion"  # Keyword

SEARCH_ATTRIBUTES = {
    SA_PACKAGES: "KeywordList",
    SA_PHASE: "Keyword",
    SA_OUTCOME: "Keyword",
    SA_CONFIG_VERSION: "Keyword",
}

PACKAGES_KEY = SearchAttributeKey.for_keyword_list(SA_PACKAGES)
PHASE_KEY = SearchAttributeKey.for_keyword(SA_PHASE)
OUTCOME_KEY = SearchAttributeKey.for_keyword(SA_OUTCOME)
CONFIG_VERSION_KEY = SearchAttributeKey.for_keyword(SA_CONFIG_VERSION)

# Temporal refuses a search attribute value over 2 KB (its default
# limit.searchAttributesSizeOfValue), failing the workflow task.
SEARCH_VALUE_BYTES = 2048


def packages_value(names: list[str], limit: int = SEARCH_VALUE_BYTES - 48) -> list[str]:
    """As many of `names` (in order) as fit one keyword-list value.

    A batch of more than about 150 packages is findable by EbsPackages only for
    those; the batch result always has them all.
    """
    kept: list[str] = []
    size = 2  # []
    for name in names:
        size += len(json.dumps(name)) + 2  # quotes, escapes and ", "
        if size > limit:
            break
        kept.append(name)
    return kept

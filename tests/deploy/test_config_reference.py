"""docs/CONFIG.md documents every key of the config schema, and only those."""

from __future__ import annotations

import re

from ebs.config.loader import key_paths
from tests.helpers.deploy import ROOT


def test_config_reference_documents_every_key() -> None:
    text = (ROOT / "docs" / "CONFIG.md").read_text()
    documented = set(re.findall(
        r"^\| `((?:configuration|components|temporal|api|timers|messaging)\.[^`]+)` \|", text, re.M
    ))
    keys = key_paths()
    assert not keys - documented, f"docs/CONFIG.md lacks {sorted(keys - documented)}"
    assert not documented - keys, f"docs/CONFIG.md documents unknown {sorted(documented - keys)}"

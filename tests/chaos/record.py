"""The figures a chaos test reports: one row per scenario it ran.

A test fills `Row`s (through the `chaos` fixture); after the test the rows get
the test's outcome and, when $EBS_CHAOS_RESULTS names a file, are appended to
it as JSON lines. bench/chaos_report.py turns such files into the table of
docs/RELIABILITY.md.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

RESULTS_ENV = "EBS_CHAOS_RESULTS"


@dataclass
class Row:
    scenario: str
    group: str
    runs: int = 1  # batches (or message streams) run under this scenario
    injected: int = 0  # failures injected: kills, faults, dropped messages...
    injected_detail: str = ""  # what they were, in words
    duplicates: int = 0  # duplicate Koji build tasks / Bodhi updates / batch entries
    losses: int = 0  # packages or events that never reached a final state
    leaked_side_tags: int = 0
    seconds: float = 0.0
    ok: bool | None = None  # the scenario's own invariants held
    bug: str = ""  # a known bug this scenario demonstrates (the test is xfail)
    notes: str = ""
    result: str = ""  # filled after the test: pass | FAIL | known bug
    test: str = ""
    slow: bool = False


@dataclass
class Rows:
    test: str
    slow: bool
    rows: list[Row] = field(default_factory=list)

    def add(self, row: Row) -> Row:
        row.test, row.slow = self.test, self.slow
        self.rows.append(row)
        return row

    def finish(self, outcome: str) -> None:
        """`outcome`: the pytest outcome of the test (passed, failed, skipped, xfailed)."""
        for row in self.rows:
            if row.bug and row.ok is False:
                row.result = "known bug"
            elif outcome == "passed" and row.ok is not False:
                row.result = "pass"
            elif outcome == "skipped":
                row.result = "skipped"
            elif row.bug and row.ok:
                row.result = "fixed? (xfail test passed)"
            else:
                row.result = "FAIL"
        path = os.environ.get(RESULTS_ENV)
        if not path or not self.rows:
            return
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("a") as f:
            for row in self.rows:
                f.write(json.dumps(asdict(row)) + "\n")

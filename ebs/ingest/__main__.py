"""`python -m ebs.ingest --config FILE [--messaging-config TOML] ...` is
`ebs ingest ...` (tests and benchmarks start the bridge so)."""

from __future__ import annotations

import sys

from ebs.cli import main

if __name__ == "__main__":
    main(["ingest", *sys.argv[1:]])

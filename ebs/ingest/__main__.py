"""`python -m ebs.ingest --config FILE [--messaging-config TOML] ...`"""

from __future__ import annotations

import logging
import os
import sys

from ebs.ingest.service import main

if __name__ == "__main__":
    code = main()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter finalization: the Temporal SDK's native threads can
    # crash it (seen after talking to a server that went away).
    os._exit(code)

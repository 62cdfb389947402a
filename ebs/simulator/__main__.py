"""`python -m ebs.simulator ...` is `ebs sim ...`."""

import sys

from ebs.cli import main

main(["sim", *sys.argv[1:]])

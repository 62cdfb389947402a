"""`python -m ebs` is the `ebs` command."""

from ebs.cli import main

main()

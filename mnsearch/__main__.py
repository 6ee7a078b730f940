"""`python -m mnsearch` runs the command-line interface."""

from mnsearch.cli import main

raise SystemExit(main())

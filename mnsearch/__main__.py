"""`python -m mnsearch` runs the command-line interface."""

from mnsearch.cli.main import main

raise SystemExit(main())

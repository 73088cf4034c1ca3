"""`python -m nnreport` runs the command line."""

from nnreport.cli import main

raise SystemExit(main())

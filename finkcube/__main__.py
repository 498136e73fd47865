"""``python -m finkcube``: the command line."""

from finkcube.cli import main

raise SystemExit(main())

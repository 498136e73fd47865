"""``python -m finkcube``: the command line."""

from finkcube.cli.main import main

raise SystemExit(main())

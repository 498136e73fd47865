"""The ``finkcube`` command line: :func:`main` (argv in, exit status out)."""

from finkcube.cli.main import main, main_entry

__all__ = ["main", "main_entry"]

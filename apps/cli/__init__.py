"""The ``cdp`` command line: one module per command group around one shared start-up module."""

from apps.cli.main import main

__all__ = ["main"]

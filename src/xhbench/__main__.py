"""``python -m xhbench``: the command line."""

from .cli import cli

cli()

"""``python -m trampolin``: the CLI."""

from trampolin.cli import run

run()

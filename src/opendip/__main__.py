"""`python -m opendip` runs the command line."""

from opendip.cli.main import app

app()

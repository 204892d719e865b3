"""The `opendip` command line (Typer + Rich). Each domain module has its own file here."""

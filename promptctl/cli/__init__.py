"""The ``promptctl`` command line: thin typer commands on top of the core. Imported only by the CLI."""

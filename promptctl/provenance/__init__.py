"""Provenance: from a span back to its prompt (``which``), what a channel served when (``blame``), and whether
production served what the registry said, when it said it (``conform``).

Each module is importable on its own; ``conform`` is the only one that needs DuckDB.
"""

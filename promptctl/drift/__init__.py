"""Drift: per-version rolling means of eval scores on exported spans, thresholds from the registry, and an
audited rollback gate. ``analysis`` is the SQL, ``engines`` where it runs (DuckDB, ClickHouse), ``gate`` the
registry side (thresholds metadata, rollback through ``ChannelStore``), ``plot`` the picture.
"""

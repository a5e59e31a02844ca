"""Event sources: one module per integration, behind :class:`detector.sources.base.Source`."""

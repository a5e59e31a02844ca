"""Event sources: each integration in its own module behind :class:`detector.sources.base.Source`."""

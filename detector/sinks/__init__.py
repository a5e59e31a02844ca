"""Chain sinks: each destination in its own module behind :class:`detector.sinks.base.Sink`."""

"""The detector service: parsers, sources, sinks, CLI, configuration, wiring, metrics."""

"""This project's Falco rules (YAML) and the tooling that checks them (tests only)."""

"""hubagent: a local-first smart-home agent hub."""

__version__ = "0.1.0"

"""legacy-bridge: serve a retired REST API from the GraphQL APIs that replaced it."""

__version__ = "0.1.0"

"""The monitoring engine: pure computation over figures (no stores, no services, no HTTP)."""

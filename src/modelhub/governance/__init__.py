"""The governance engine: pure computation over models and data (bias, attributions,
personal-data scans, lineage graphs, model cards, reports). No stores, no services."""

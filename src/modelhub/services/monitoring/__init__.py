"""Monitoring's use cases: one module and one service per concern."""

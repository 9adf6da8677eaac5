"""Monitoring use cases: one module and one service class per area."""

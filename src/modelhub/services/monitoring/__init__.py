"""Monitoring use cases: one module and one service per concern (issue 11)."""

"""Monitoring use cases: one service per concern, over the monitoring engine and the stores."""

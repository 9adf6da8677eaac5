"""Monitoring services: one module per part of the monitoring issue."""

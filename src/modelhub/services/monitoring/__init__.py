"""Monitoring services: one module (and one service class) per area of issue 11."""

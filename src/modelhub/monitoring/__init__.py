"""The monitoring engine: pure computation over sketches, roll-ups and samples.

It imports nothing from services, stores or the API; services feed it records and
store what it returns.
"""

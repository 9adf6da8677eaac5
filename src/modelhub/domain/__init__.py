"""Typed records and state machines. No I/O lives here."""

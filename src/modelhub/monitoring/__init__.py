"""The monitoring engine: pure computation over figures that services read for it."""

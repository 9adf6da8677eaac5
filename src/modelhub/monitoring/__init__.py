"""The monitoring engine: pure computation over figures the services read from stores."""

"""The monitoring services: one module per part of issue 11, one service class each."""

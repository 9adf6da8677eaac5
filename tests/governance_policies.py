"""Governance policies for tests that are not about governance but reach production."""

from __future__ import annotations

# Production needs one reviewer's approval and nothing else: what `models approve`
# meant before the governance policy, for tests that move a version to production.
APPROVAL_ONLY = """\
format: 1
stages:
  production:
    requires: [approval]
"""

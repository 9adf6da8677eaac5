"""Governance: the policy in force, the evidence recorded against it, and the review workflow.

One module per part: `policy` (the versioned policy), `assessments` (the one place
evidence is recorded), `scoring` (a version run on a table, for bias and explanations),
then each kind of evidence and the workflow that reads them.
"""

"""The governance policy as YAML: the default parses, rules resolve, bad policies are named."""

from __future__ import annotations

import pytest

from modelhub.domain.auth import Role
from modelhub.domain.enums import ModelType, Stage
from modelhub.domain.governance import ReviewKind
from modelhub.domain.governance_policy import parse_policy
from modelhub.errors import InvalidInput
from modelhub.services.governance.policy import default_policy_text

APPROVAL, COMPLIANCE = ReviewKind.APPROVAL, ReviewKind.COMPLIANCE


def test_the_default_policy_gates_production_and_leaves_staging_open() -> None:
    policy = parse_policy(default_policy_text())
    staging = policy.requirements(ModelType.EMBEDDING_MODEL, {}, Stage.STAGING)
    production = policy.requirements(ModelType.EMBEDDING_MODEL, {}, Stage.PRODUCTION)
    assert staging.requires == []
    assert production.requires == [APPROVAL, COMPLIANCE]
    assert production.approvals.count == 1
    assert production.approvals.roles == [Role.ADMIN, Role.DATA_SCIENTIST]
    assert production.approvals.creator_may_approve is False
    assert production.thresholds.bias.demographic_parity_difference == 0.1
    assert production.thresholds.bias.equalized_odds_difference == 0.1
    assert "apache-2.0" in production.licenses
    assert production.rules == []


def test_matching_rules_apply_in_order_and_a_later_one_wins() -> None:
    policy = parse_policy(default_policy_text())
    classifier = policy.requirements(ModelType.CLASSIFICATION, {}, Stage.PRODUCTION)
    assert classifier.requires == [APPROVAL, COMPLIANCE, ReviewKind.EXPLAINABILITY]
    assert classifier.rules == ["classifiers"]
    risky = policy.requirements(ModelType.CLASSIFICATION, {"risk": "high"}, Stage.PRODUCTION)
    assert set(risky.requires) == set(ReviewKind)
    assert risky.approvals.count == 2
    assert risky.approvals.roles == [Role.ADMIN, Role.DATA_SCIENTIST]  # only count overridden
    assert risky.rules == ["classifiers", "high-risk"]
    assert risky.assessments == [
        COMPLIANCE,
        ReviewKind.BIAS,
        ReviewKind.EXPLAINABILITY,
        ReviewKind.ETHICS,
    ]


def test_a_rule_overrides_thresholds_and_licenses_for_its_models_only() -> None:
    policy = parse_policy(
        """
format: 1
stages: {production: {requires: [approval, bias]}}
rules:
  - name: strict-team
    match: {tags: {team: personas}}
    thresholds:
      bias: {demographic_parity_difference: 0.05, min_group_size: 100}
    licenses: [mit]
"""
    )
    strict = policy.requirements(ModelType.CUSTOM, {"team": "personas"}, Stage.PRODUCTION)
    other = policy.requirements(ModelType.CUSTOM, {"team": "other"}, Stage.PRODUCTION)
    assert strict.thresholds.bias.demographic_parity_difference == 0.05
    assert strict.thresholds.bias.min_group_size == 100
    assert strict.licenses == ["mit"]
    assert other.thresholds.bias.demographic_parity_difference == 0.1
    assert "apache-2.0" in other.licenses


@pytest.mark.parametrize(
    ("text", "field", "says"),
    [
        ("stages: {production: {requires: [approval, vibes]}}", "stages.production.requires.1",
         "unknown review kind 'vibes'"),
        ("thresholds: {bias: {demographic_parity_difference: 1.5}}",
         "thresholds.bias.demographic_parity_difference", "less than or equal to 1"),
        ("thresholds: {bias: {equalized_odds_difference: -0.1}}",
         "thresholds.bias.equalized_odds_difference", "greater than or equal to 0"),
        ("approvals: {count: 0}", "approvals.count", "greater than or equal to 1"),
        ("approvals: {roles: [wizard]}", "approvals.roles.0", "admin"),
        ("approvals: {roles: []}", "approvals.roles", "at least one role"),
        ("stages: {development: {requires: [approval]}}", "stages", "has no gate"),
        ("format: 2", "format", "unknown policy format 2"),
        ("reviewers: 3", "reviewers", "Extra inputs are not permitted"),
        ("rules: [{name: r, match: {types: [robot]}}]", "rules.0.match.types.0", "classification"),
    ],
)  # fmt: skip
def test_a_bad_policy_names_each_problem(text: str, field: str, says: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        parse_policy(text)
    problems = exc.value.details["errors"]
    assert any(p["field"] == field and says in p["message"] for p in problems), problems
    assert field in exc.value.message


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "this is an empty document"),
        ("- a list\n", "this is a list"),
        ("stages: [unclosed", "not valid YAML"),
        ("a: &x 1\nb: *x\n", "not valid YAML"),  # anchors and aliases are refused
        ("approvals: {count: 99999999999999999999999}", "not valid YAML"),
    ],
)
def test_what_is_not_a_policy_document_is_refused_plainly(text: str, says: str) -> None:
    with pytest.raises(InvalidInput, match=says):
        parse_policy(text)


def test_a_deeply_nested_policy_is_refused_not_recursed() -> None:
    with pytest.raises(InvalidInput, match="not valid YAML"):
        parse_policy("rules: " + "[" * 5000 + "]" * 5000)

"""The ethics record: a complete file parses, a bad one names every problem."""

from __future__ import annotations

import pytest

from modelhub.errors import InvalidInput
from modelhub.governance.ethics import EthicsDecision, parse_ethics

GOOD = """
intended_use: Route support tickets to the right team.
out_of_scope_uses: ["decisions about employment, credit or insurance"]
affected_groups: [customers writing in a second language]
risks:
  - risk: tickets in other languages are misrouted more often
    mitigation: a person reviews low-confidence routes
human_oversight: The support lead samples 50 routed tickets a week.
contact: ml-governance@example.com
decision: approved
notes: Re-review when the training data changes.
"""


def test_a_complete_record_parses() -> None:
    record = parse_ethics(GOOD)
    assert record.decision is EthicsDecision.APPROVED
    assert record.risks[0].mitigation.startswith("a person reviews")
    assert record.out_of_scope_uses == ["decisions about employment, credit or insurance"]


def test_every_missing_field_is_named() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_ethics("intended_use: x\ndecision: approved\n")
    missing = caught.value.details["missing"]
    assert missing == [
        "out_of_scope_uses",
        "affected_groups",
        "risks",
        "human_oversight",
        "contact",
    ]
    for name in missing:
        assert name in caught.value.message


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("", "an empty document"),
        ("- a list", "a list"),
        ("intended_use: [unclosed", "not valid YAML"),
        (GOOD.replace("decision: approved", "decision: maybe"), "decision"),
        (GOOD.replace("    mitigation: a person", "    mitigated: a person"), "risks.0"),
        (GOOD + "colour: blue\n", "colour: unknown field"),
        (
            GOOD.replace(
                "intended_use: Route support tickets to the right team.", "intended_use: ' '"
            ),
            "intended_use",
        ),
        ("a: &x [1]\nb: *x\n", "anchors and aliases"),
        ("x: " + "[" * 200 + "]" * 200, "nested deeper"),
    ],
)
def test_bad_files_are_refused_naming_the_problem(text: str, named: str) -> None:
    with pytest.raises(InvalidInput, match="ethics") as caught:
        parse_ethics(text)
    assert named in caught.value.message

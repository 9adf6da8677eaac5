"""The generated model card: YAML front matter plus Markdown that huggingface_hub reads back."""

from __future__ import annotations

from typing import Any

import yaml
from huggingface_hub import ModelCard, ModelCardData

from modelhub.domain.cost import CostSummary
from modelhub.domain.governance import ReviewKind, ReviewRequest
from modelhub.governance.model_card import CardInputs, render_card
from tests.unit.governance.lineage_records import (
    AT,
    assessment,
    bias_figures,
    explanation_figures,
    model,
    version,
)

DIGEST = "cd" * 32


def full_inputs() -> CardInputs:
    trained = version(
        "intents",
        2,
        source_run="17",
        pipeline="tune@3",
        datasets=[DIGEST],
        dataset_versions=["chats@4"],
        base_version="intents@1",
        hyperparameters={"lr": 0.01, "max_epochs": 3},
        extra={"metrics": {"accuracy": 0.91, "val_loss": 0.32}},
    )
    # The shapes the ethics, bias and explain services record.
    ethics = assessment(
        ReviewKind.ETHICS,
        {
            "record": {
                "intended_use": "Route support chats",
                "out_of_scope_uses": ["medical advice", "credit"],
            },
            "reviewer": "dana",
        },
    )
    bias = assessment(ReviewKind.BIAS, bias_figures(), passed=False)
    cost = CostSummary(subject="run 17", currency="EUR", total=0.42, cpu_seconds=31.5)
    review = ReviewRequest(
        model="intents", version=2, requested_by="carol", policy_version=3, opened_at=AT
    )
    return CardInputs(
        model=model("intents", license="apache-2.0", tags={"team": "support"}),
        version=trained,
        ethics=ethics,
        bias=bias,
        explanation=assessment(ReviewKind.EXPLAINABILITY, explanation_figures()),
        run_cost=cost,
        policy_version=3,
        review=review,
    )


def split(text: str) -> tuple[dict[str, Any], str]:
    assert text.startswith("---\n")
    meta, body = text[4:].split("\n---\n", 1)
    return yaml.safe_load(meta), body


def test_the_card_is_front_matter_and_markdown_with_the_usual_sections() -> None:
    meta, body = split(render_card(full_inputs()))
    assert meta["license"] == "apache-2.0"
    assert meta["datasets"] == ["chats@4"]
    assert meta["base_model"] == "intents@1"
    assert meta["library_name"] == "safetensors"
    assert "team:support" in meta["tags"]
    assert sorted(meta["metrics"]) == ["accuracy", "val_loss"]
    headings = [line for line in body.splitlines() if line.startswith("## ")]
    assert headings == [
        "## Model description",
        "## Uses",
        "## Bias, risks, and limitations",
        "## Training details",
        "## Evaluation",
        "## Explainability",
        "## Environmental impact",
        "## Governance",
    ]
    assert "- Route support chats" in body and "- medical advice" in body


def test_the_card_renders_the_real_bias_and_explanation_figures_as_tables() -> None:
    figures = bias_figures()
    [grouping] = figures["groupings"]
    dpd = grouping["worst"]["demographic_parity_difference"]
    assert not dpd["passed"]  # the planted gap is beyond the default bar of 0.1
    _, body = split(render_card(full_inputs()))
    assert "### Grouping: sex" in body
    assert "| figure | value | bar | verdict |" in body
    assert f"| demographic parity difference | {dpd['value']:.4g} | at most 0.1 | FAIL |" in body
    assert "| demographic parity ratio |" in body and "| equalized odds difference |" in body
    f_row = next(g for g in grouping["groups"] if g["group"] == "f")
    rates = f_row["rates"]["1"]
    assert (
        f"| f | 120 | {f_row['accuracy']:.4g} | {rates['selection_rate']:.4g} | "
        f"{rates['false_positive_rate']:.4g} | {rates['false_negative_rate']:.4g} | yes |"
    ) in body
    assert "| x | 5 |" in body and "no (too small)" in body
    assert "Too small to judge: x (5 rows)." in body
    assert "Positive class: 1" in body and "sensitive column(s): sex" in body
    assert "(structured, see the JSON)" not in body
    assert "### Most important features (top 2 of 2)" in body
    assert "| 1 | income | 0.21 | 0.02 |" in body and "| 2 | age | 0.05 | 0.01 |" in body
    local = body.split("### One input explained: row 3, predicted 1")[1]
    assert local.index("| income | 5.2e+04 | 0.3 |") < local.index("| age | 41 | 0.01 |")
    assert f"chats@4 (sha256:{DIGEST})" in body
    assert "| CPU seconds | 31.5 |" in body
    assert "- policy version in force: 3" in body and "- review: pending" in body


def test_the_card_round_trips_through_huggingface_hub() -> None:
    card = ModelCard(render_card(full_inputs()))
    data = card.data
    assert isinstance(data, ModelCardData)
    assert data.license == "apache-2.0"
    assert data.datasets == ["chats@4"]
    assert data.base_model == "intents@1"
    assert data.model_name == "intents"
    results = {r.metric_type: r for r in data.eval_results or []}
    assert results["accuracy"].metric_value == 0.91
    assert results["accuracy"].task_type == "tabular-classification"
    assert results["accuracy"].dataset_name == "chats@4"
    assert "## Evaluation" in card.text


def test_a_bare_registered_version_gets_a_card_that_says_what_is_missing() -> None:
    inputs = CardInputs(model=model("plain"), version=version("plain", 1))
    text = render_card(inputs)
    meta, body = split(text)
    assert "license" not in meta and "model-index" not in meta
    assert "No ethics review is recorded" in body
    assert "No bias assessment is recorded" in body
    assert "registered, not trained here" in body
    assert "No metrics are recorded" in body
    data = ModelCard(text).data
    assert isinstance(data, ModelCardData) and data.tags == meta["tags"]


def test_hostile_text_cannot_break_the_front_matter_or_a_table() -> None:
    inputs = full_inputs()
    evil = "x\n---\nlicense: stolen\n| a | b |"
    hostile = CardInputs(
        model=model("intents", license="mit", tags={"k": evil}, description=evil),
        version=inputs.version,
        bias=assessment(ReviewKind.BIAS, {"by_group": {evil: {"accuracy": 1.0}}}),  # old shape
    )
    meta, body = split(render_card(hostile))
    assert meta["license"] == "mit"
    row = next(line for line in body.splitlines() if "accuracy" not in line and "x --- " in line)
    assert row.startswith("| x --- license: stolen \\| a \\| b \\|")

"""A version's model card in the Hugging Face convention: README.md with YAML front matter.

Pure rendering over records the card service gathers: the model and version from the
registry, the latest ethics and bias assessments, the training run's cost, and the
review state under the policy in force. The front matter carries license, datasets,
metrics, base_model, tags, library_name and a `model-index` (task, dataset, metrics),
so that `huggingface_hub.ModelCard` reads it back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

from modelhub.domain.cost import CostSummary
from modelhub.domain.enums import Framework, ModelType
from modelhub.domain.governance import Assessment, ReviewRequest
from modelhub.domain.records import ModelVersion, RegisteredModel
from modelhub.governance.evidence_markdown import (
    assessment_markdown,
    ethics_record,
)
from modelhub.governance.lineage_graph import federated_details
from modelhub.governance.markdown import cell, table

LIBRARIES = {
    Framework.PYTORCH: "pytorch",
    Framework.SAFETENSORS: "safetensors",
    Framework.ONNX: "onnx",
    Framework.HUGGINGFACE: "transformers",
    Framework.SKLEARN: "sklearn",
}
TASKS = {
    ModelType.LANGUAGE_MODEL: "text-generation",
    ModelType.GENERATION: "text-generation",
    ModelType.EMBEDDING_MODEL: "feature-extraction",
    ModelType.MULTIMODAL: "any-to-any",
}
# The Hugging Face hub's tags and metric ids: short, no spaces or YAML-hostile characters.
_TAG = re.compile(r"[^A-Za-z0-9._:/-]+")


@dataclass(frozen=True)
class CardInputs:
    model: RegisteredModel
    version: ModelVersion
    ethics: Assessment | None = None
    bias: Assessment | None = None
    explanation: Assessment | None = None
    run_cost: CostSummary | None = None
    policy_version: int = 0
    review: ReviewRequest | None = None


def task_of(version: ModelVersion) -> str:
    if version.type in TASKS:
        return TASKS[version.type]
    if version.type == ModelType.CLASSIFICATION:
        text_input = any(
            spec.dtype.lower() in {"bytes", "str", "string"} for spec in version.signature.inputs
        )
        return "text-classification" if text_input else "tabular-classification"
    return "other"


def front_matter(inputs: CardInputs) -> dict[str, Any]:
    model, version = inputs.model, inputs.version
    data: dict[str, Any] = {}
    if model.license:
        data["license"] = model.license
    datasets = list(version.lineage.dataset_versions) or [
        f"sha256:{d}" for d in version.lineage.datasets
    ]
    if datasets:
        data["datasets"] = datasets
    metrics = evaluation_metrics(version)
    if metrics:
        data["metrics"] = [_TAG.sub("-", m) for m in metrics]
    if version.lineage.base_version:
        data["base_model"] = version.lineage.base_version
    tags = ["modelhub", version.type.value, version.framework.value]
    tags += [_TAG.sub("-", f"{k}:{v}" if v else k) for k, v in sorted(model.tags.items())]
    data["tags"] = list(dict.fromkeys(tags))
    if version.framework in LIBRARIES:
        data["library_name"] = LIBRARIES[version.framework]
    if metrics:
        dataset_ref = datasets[0] if datasets else "unspecified"
        data["model-index"] = [
            {
                "name": model.name,
                "results": [
                    {
                        "task": {"type": task_of(version)},
                        "dataset": {"name": dataset_ref, "type": dataset_ref.split("@")[0]},
                        "metrics": [
                            {"type": _TAG.sub("-", k), "name": k, "value": float(v)}
                            for k, v in metrics.items()
                        ],
                    }
                ],
            }
        ]
    return data


# What a run records beside its metrics: counters, not results a card reports.
BOOKKEEPING = frozenset({"step", "steps", "best_step", "epoch", "epochs"})


def evaluation_metrics(version: ModelVersion) -> dict[str, float]:
    """The version's metrics that measure the model (loss, accuracy ...), not the run."""
    return {k: v for k, v in version.metrics.items() if k not in BOOKKEEPING}


def render_card(inputs: CardInputs) -> str:
    """The README.md text: YAML front matter, then the usual sections in Markdown."""
    meta = yaml.safe_dump(front_matter(inputs), sort_keys=False, allow_unicode=True)
    body = [
        *_description(inputs),
        *_uses(inputs.ethics),
        *_bias(inputs.bias),
        *_training(inputs.version),
        *_evaluation(inputs.version),
        *_explanation(inputs.explanation),
        *_environment(inputs.run_cost),
        *_governance(inputs),
    ]
    return f"---\n{meta}---\n\n" + "\n".join(body).rstrip() + "\n"


def _description(inputs: CardInputs) -> list[str]:
    model, v = inputs.model, inputs.version
    rows: list[list[Any]] = [
        ["version", f"{v.version}" + (f" ({v.label})" if v.label else "")],
        ["type", v.type.value],
        ["framework", v.framework.value],
        ["architecture", v.architecture or "unknown"],
        ["parameters", v.parameters if v.parameters is not None else "unknown"],
        ["precision", v.precision.value],
        ["size (bytes)", v.size],
        ["artifact digest", f"sha256:{v.digest}"],
        ["created by", v.created_by],
        ["created at", v.created_at.isoformat()],
        ["owner", model.owner],
    ]
    return [
        f"# {model.name} version {v.version}",
        "",
        "## Model description",
        "",
        model.description.strip() or "No description was given when the model was registered.",
        "",
        *table(["field", "value"], rows),
        "",
    ]


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(item) for item in value]
    return [str(value)]


def _uses(ethics: Assessment | None) -> list[str]:
    lines = ["## Uses", "", "### Intended use", ""]
    if ethics is None:
        lines += ["No ethics review is recorded for this version.", "", "### Out-of-scope use", ""]
        return [*lines, "No ethics review is recorded for this version.", ""]
    record = ethics_record(ethics.figures)
    intended = _as_list(record.get("intended_use"))
    lines += [f"- {cell(item)}" for item in intended] or ["Not stated in the ethics review."]
    lines += ["", "### Out-of-scope use", ""]
    out = _as_list(record.get("out_of_scope_uses"))
    lines += [f"- {cell(item)}" for item in out] or ["Not stated in the ethics review."]
    lines += [
        "",
        f"From the ethics review by {cell(ethics.actor)} on {ethics.created_at:%Y-%m-%d} "
        f"({'passed' if ethics.passed else 'not passed'}, policy version {ethics.policy_version}).",
        "",
    ]
    return lines


def _bias(bias: Assessment | None) -> list[str]:
    lines = ["## Bias, risks, and limitations", ""]
    if bias is None:
        return [*lines, "No bias assessment is recorded for this version.", ""]
    verdict = "passed" if bias.passed else "did not pass"
    lines += [
        f"The latest bias assessment {verdict} (policy version {bias.policy_version}, run by "
        f"{cell(bias.actor)} on {bias.created_at:%Y-%m-%d}): {cell(bias.summary)}",
        "",
        *assessment_markdown(bias, level=3),
    ]
    return lines


def _explanation(explanation: Assessment | None) -> list[str]:
    lines = ["## Explainability", ""]
    if explanation is None:
        return [*lines, "No explainability assessment is recorded for this version.", ""]
    verdict = "passed" if explanation.passed else "did not pass"
    return [
        *lines,
        f"The latest explainability assessment {verdict} (policy version "
        f"{explanation.policy_version}, run by {cell(explanation.actor)} on "
        f"{explanation.created_at:%Y-%m-%d}): {cell(explanation.summary)}",
        "",
        *assessment_markdown(explanation, level=3),
    ]


def _training(v: ModelVersion) -> list[str]:
    lineage = v.lineage
    lines = ["## Training details", ""]
    if not (lineage.source_run or lineage.datasets or lineage.base_version):
        return [
            *lines,
            "This version was registered, not trained here: no lineage is recorded.",
            "",
        ]
    if lineage.source_run:
        lines.append(f"- run: {cell(lineage.source_run)}")
    if lineage.pipeline:
        lines.append(f"- pipeline: {cell(lineage.pipeline)}")
    if lineage.base_version:
        lines.append(f"- fine-tuned from: {cell(lineage.base_version)}")
    if lineage.optimised_from:
        lines.append(f"- optimised from: {cell(lineage.optimised_from)}")
    if lineage.federated:
        setup = ", ".join(f"{k} {v}" for k, v in federated_details(lineage.federated).items())
        lines.append(f"- federated: {cell(setup)}")
    names = (
        lineage.dataset_versions if len(lineage.dataset_versions) == len(lineage.datasets) else []
    )
    for index, digest in enumerate(lineage.datasets):
        name = f"{cell(names[index])} " if names else ""
        lines.append(f"- dataset: {name}(sha256:{digest})")
    if lineage.hyperparameters:
        rows = [[k, v] for k, v in sorted(lineage.hyperparameters.items())]
        lines += ["", "### Hyperparameters", "", *table(["name", "value"], rows)]
    return [*lines, ""]


def _evaluation(v: ModelVersion) -> list[str]:
    lines = ["## Evaluation", ""]
    if not v.metrics:
        return [*lines, "No metrics are recorded for this version.", ""]
    return [
        *lines,
        *table(["metric", "value"], [[k, val] for k, val in sorted(v.metrics.items())]),
        "",
    ]


def _environment(cost: CostSummary | None) -> list[str]:
    lines = ["## Environmental impact", ""]
    if cost is None:
        return [*lines, "No training cost is recorded (the version was not trained here).", ""]
    rows: list[list[Any]] = [
        ["CPU seconds", cost.cpu_seconds],
        ["GPU seconds", cost.gpu_seconds],
        ["cost", f"{cost.total:.4f} {cost.currency}"],
    ]
    if cost.estimate is not None:
        rows.append(["estimated before the run", f"{cost.estimate:.4f} {cost.currency}"])
    lines += [
        f"Measured by the monitoring engine for {cell(cost.subject)}:",
        "",
        *table(["", "value"], rows),
    ]
    lines += [f"- {cell(note)}" for note in cost.notes]
    return [*lines, ""]


def _governance(inputs: CardInputs) -> list[str]:
    v = inputs.version
    review = inputs.review
    state = review.state.value if review else "no review requested"
    return [
        "## Governance",
        "",
        f"- policy version in force: {inputs.policy_version}",
        f"- review: {state}",
        f"- approval: {v.approval.value}"
        + (f" ({cell(v.approval_note)})" if v.approval_note else ""),
        f"- stage: {v.stage.value}",
        "",
        "Generated by modelhub from the registry and the governance records.",
        "",
    ]

"""An assessment's figures as readable Markdown, for the model card and the auditor's report.

Each kind of evidence has its own shape (see governance/bias.py, services/governance/
explain.py, compliance.py, ethics.py); each renderer reads that shape and falls back on
the generic `figures_markdown` when the figures are not what it expects (older records,
or a kind with no renderer of its own), so a report never fails on old evidence.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from modelhub.domain.governance import Assessment, ReviewKind
from modelhub.governance.markdown import cell, figures_markdown, table

TOP_FEATURES = 10  # features of the ranking shown
TOP_LOCAL = 10  # attributions of the local explanation shown
FIGURE_NAMES = {
    "demographic_parity_difference": "demographic parity difference",
    "demographic_parity_ratio": "demographic parity ratio",
    "equalized_odds_difference": "equalized odds difference",
}
RATE_NAMES = {
    "selection_rate": "selection rate",
    "false_positive_rate": "false positive rate",
    "false_negative_rate": "false negative rate",
}


def _num(value: Any) -> str:
    return "undefined" if value is None else cell(float(value))


def assessment_markdown(assessment: Assessment, level: int = 3) -> list[str]:
    """The figures of one assessment; `level` is the heading depth of its sub-sections."""
    render = RENDERERS.get(assessment.kind)
    if render is not None:
        try:
            return render(assessment.figures, level)
        except (KeyError, TypeError, ValueError, AttributeError):
            pass  # figures of another shape: the generic rendering below
    return figures_markdown(assessment.figures)


def bias_markdown(figures: dict[str, Any], level: int = 3) -> list[str]:
    """Per grouping: the three figures against their bars, the per-group table (rows,
    accuracy, selection and error rates) and the groups too small to judge."""
    hashes = "#" * level
    thresholds = figures["thresholds"]
    classes = [str(c) for c in figures["classes"]]
    one_vs_rest = figures.get("mode") == "one_vs_rest"
    how = (
        "Each class is judged against the rest (one-vs-rest)."
        if one_vs_rest
        else f"Positive class: {cell(figures['positive'])} "
        f"({cell(figures.get('positive_chosen', ''))})."
    )
    lines = [
        f"Assessed on {int(figures['rows']):,} rows of {cell(figures.get('data', 'the data'))} "
        f"(label {cell(figures.get('label', '?'))}; classes {cell(', '.join(classes))}); "
        f"sensitive column(s): {cell(', '.join(figures['sensitive']))}.",
        "",
        f"{how} Groups under {thresholds['min_group_size']} rows are reported, not judged.",
        "",
    ]
    for grouping in figures["groupings"]:
        lines += [f"{hashes} Grouping: {cell(grouping['name'])}", ""]
        worst = grouping.get("worst") or {}
        if grouping.get("reason"):
            lines += [f"Not judged: {cell(grouping['reason'])}.", ""]
        else:
            rows = []
            for figure, at in (
                ("demographic_parity_difference", "at most"),
                ("demographic_parity_ratio", "at least"),
                ("equalized_odds_difference", "at most"),
            ):
                found = worst.get(figure)
                bar = f"{at} {cell(float(thresholds[figure]))}"
                if found is None:
                    rows.append([FIGURE_NAMES[figure], "undefined", bar, "", "pass"])
                    continue
                rows.append(
                    [
                        FIGURE_NAMES[figure],
                        _num(found["value"]),
                        bar,
                        found.get("class", "") if one_vs_rest else "",
                        "pass" if found["passed"] else "FAIL",
                    ]
                )
            header = ["figure", "value", "bar", "worst class", "verdict"]
            if not one_vs_rest:
                header, rows = header[:3] + header[4:], [r[:3] + r[4:] for r in rows]
            lines += [*table(header, rows), ""]
        views = classes if one_vs_rest else [str(figures["positive"])]
        for view in views:
            if one_vs_rest:
                lines += [f"Class {cell(view)} against the rest:", ""]
            body = [
                [
                    group["group"],
                    group["size"],
                    _num(group.get("accuracy")),
                    *(_num(group["rates"].get(view, {}).get(rate)) for rate in RATE_NAMES),
                    "yes" if group.get("judged", True) else "no (too small)",
                ]
                for group in grouping["groups"]
            ]
            header = ["group", "rows", "accuracy", *RATE_NAMES.values(), "judged"]
            lines += [*table(header, body), ""]
        small = grouping.get("small_groups") or []
        if small:
            listed = ", ".join(f"{s['group']} ({s['size']} rows)" for s in small)
            lines += [f"Too small to judge: {cell(listed)}.", ""]
    failures = figures.get("failures") or []
    if failures:
        lines += ["Beyond the policy's bars:", "", *(f"- {cell(f)}" for f in failures[:20]), ""]
    return lines


def explanation_markdown(figures: dict[str, Any], level: int = 3) -> list[str]:
    """The method, what the importance measures, the top features and one row's
    attributions when one was explained."""
    hashes = "#" * level
    ranking = figures["ranking"]
    lines = [
        f"Method: {cell(figures['method'])} over {int(figures['rows']):,} rows; importance is "
        f"the {cell(figures['score'])}"
        + (f", from a baseline of {cell(figures['baseline'])}" if figures.get("baseline") else "")
        + ".",
        "",
    ]
    if figures.get("mean_relative_delta") is not None:
        bar = (figures.get("thresholds") or {}).get("max_convergence_delta")
        lines += [
            f"Mean relative convergence delta {_num(figures['mean_relative_delta'])}"
            + (f" (the policy allows at most {cell(float(bar))})" if bar is not None else "")
            + f"; largest {_num(figures.get('max_relative_delta'))}.",
            "",
        ]
    shown = ranking[:TOP_FEATURES]
    lines += [
        f"{hashes} Most important features (top {len(shown)} of {len(ranking)})",
        "",
        *table(
            ["rank", "feature", "importance", "std"],
            [
                [i + 1, r["feature"], _num(r["importance"]), _num(r.get("std"))]
                for i, r in enumerate(shown)
            ],
        ),
        "",
    ]
    local = figures.get("local")
    if local:
        attributions = sorted(
            local["attributions"], key=lambda a: abs(float(a["attribution"])), reverse=True
        )[:TOP_LOCAL]
        lines += [
            f"{hashes} One input explained: row {local['row']}, predicted "
            f"{cell(local['predicted'])}",
            "",
            *table(
                ["feature", "value", "attribution"],
                [
                    [
                        a["feature"],
                        "" if a.get("value") is None else a["value"],
                        _num(a["attribution"]),
                    ]
                    for a in attributions
                ],
            ),
            "",
        ]
    return lines


def compliance_markdown(figures: dict[str, Any], level: int = 3) -> list[str]:
    checks = figures["checks"]
    rows = [[c["name"], c["status"], c["reason"]] for c in checks]
    return [*table(["check", "result", "reason"], rows), ""]


def ethics_markdown(figures: dict[str, Any], level: int = 3) -> list[str]:
    record = figures["record"]
    lines = [
        f"- intended use: {cell(record['intended_use'])}",
        f"- out of scope: {cell('; '.join(record['out_of_scope_uses']))}",
        f"- affected groups: {cell(', '.join(record['affected_groups']))}",
        f"- human oversight: {cell(record['human_oversight'])}",
        f"- contact: {cell(record['contact'])}",
        f"- decision: {cell(record['decision'])}"
        + (f" by {cell(figures['reviewer'])}" if figures.get("reviewer") else ""),
        "",
        *table(["risk", "mitigation"], [[r["risk"], r["mitigation"]] for r in record["risks"]]),
        "",
    ]
    if record.get("notes"):
        lines += [f"Notes: {cell(record['notes'])}", ""]
    return lines


def ethics_record(figures: dict[str, Any]) -> dict[str, Any]:
    """The reviewer's record inside an ethics assessment's figures (older ones held its
    fields at the top)."""
    record = figures.get("record")
    return record if isinstance(record, dict) else figures


RENDERERS: dict[ReviewKind, Callable[[dict[str, Any], int], list[str]]] = {
    ReviewKind.BIAS: bias_markdown,
    ReviewKind.EXPLAINABILITY: explanation_markdown,
    ReviewKind.COMPLIANCE: compliance_markdown,
    ReviewKind.ETHICS: ethics_markdown,
}

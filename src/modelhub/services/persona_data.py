"""What a persona's interactions become: scrubbed drafts on the way in, and on the way
to training the rows of a cycle's datasets.

Held-out interactions are chosen by a hash of the persona and the interaction's id, so
the same interaction is always on the same side, whatever order or batch it came in,
and no cycle ever trains on what evaluates it.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass

from modelhub.domain.personas import Interaction, InteractionIn
from modelhub.governance.pii import scrub_text
from modelhub.stores.metadata.base_personas import InteractionDraft


def held_out(persona: str, interaction_id: str, fraction: float) -> bool:
    digest = hashlib.sha256(f"{persona}\x00{interaction_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


@dataclass(frozen=True)
class Scrubbed:
    drafts: list[InteractionDraft]
    kinds: dict[str, int]  # the whole batch
    per_draft: list[dict[str, int]]


def scrub(persona: str, model: str, items: list[InteractionIn], fraction: float) -> Scrubbed:
    """Each interaction with its personal data blanked (message, response, correction),
    its label and its side (train or held out)."""
    kinds: Counter[str] = Counter()
    drafts = []
    per_draft = []
    for item in items:
        found: Counter[str] = Counter()
        message, counts = scrub_text(item.message)
        found.update(counts)
        response, counts = scrub_text(item.response)
        found.update(counts)
        feedback = item.feedback.model_dump(mode="json", exclude_none=True)
        if item.feedback.correction:
            feedback["correction"], counts = scrub_text(item.feedback.correction)
            found.update(counts)
        kinds.update(found)
        per_draft.append(dict(found))
        label = item.label()
        if label is not None:
            label, _ = scrub_text(label)
        drafts.append(
            InteractionDraft(
                id=item.id,
                model=item.model or model,
                version=item.version,
                request_id=item.request_id,
                message=message,
                response=response,
                feedback=feedback,
                label=label[:128] if label else None,
                held_out=held_out(persona, item.id, fraction),
                scrubbed=sum(found.values()),
            )
        )
    return Scrubbed(drafts, dict(kinds), per_draft)


def classifier_rows(interactions: list[Interaction], model: str) -> list[dict[str, str]]:
    """Rows {"text", "label"} for a text classifier: the intent model's labelled ones."""
    return [
        {"text": i.message, "label": i.label}
        for i in interactions
        if i.label is not None and i.model == model and i.message.strip()
    ]


def preference_rows(interactions: list[Interaction], model: str) -> list[dict[str, str]]:
    """Rows {"prompt", "chosen", "rejected"} for the chat model's preference trainer:
    for each prompt with answers rated differently (thumbs up counts as 5, down as 1),
    the best against the worst."""
    scored: dict[str, list[tuple[float, int, str]]] = {}
    for i in interactions:
        if i.model != model or not i.response:
            continue
        score = _score(i)
        if score is not None:
            scored.setdefault(i.message, []).append((score, i.seq, i.response))
    rows = []
    for prompt, answers in scored.items():
        ranked = sorted(answers)
        worst, best = ranked[0], ranked[-1]
        if best[0] > worst[0] and best[2] != worst[2]:
            rows.append({"prompt": prompt, "chosen": best[2], "rejected": worst[2]})
    return rows


def _score(interaction: Interaction) -> float | None:
    feedback = interaction.feedback
    if feedback.rating is not None:
        return float(feedback.rating)
    if feedback.thumbs is not None:
        return 5.0 if feedback.thumbs == "up" else 1.0
    return None


def jsonl(rows: list[dict[str, str]]) -> bytes:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode("utf-8")

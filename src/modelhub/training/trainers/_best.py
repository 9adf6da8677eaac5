"""Shared by the built-in trainers: with keep_best, the best checkpoint is what they write.

A trainer checkpoints its final state (so it competes for best), then asks
`best_state`: when an earlier checkpoint was better, it loads that state into its
model, measures it again, and writes it as the output instead of the last state.
"""

from __future__ import annotations

from typing import Any

from modelhub.training.context import LocalContext


def best_state(ctx: LocalContext, final_step: int) -> tuple[int, dict[str, Any] | None] | None:
    """(step, state) of the best checkpoint, with state None when it is the final state.

    None when keep_best is off or no checkpoint has been judged yet.
    """
    if ctx.keep_best is None:
        return None
    best = ctx.best()
    if best is None:
        return None
    if int(best["step"]) == final_step:
        return final_step, None
    return ctx.best_checkpoint()


def logged_at(ctx: LocalContext, step: int, names: tuple[str, ...]) -> dict[str, float]:
    """The values of `names` logged at exactly `step` (the last, if logged twice)."""
    return {
        m["name"]: float(m["value"])
        for m in ctx.metrics()
        if m["step"] == step and m["name"] in names
    }

"""The `text_generation` runtime: continues prompts with a modelhub char_lm model.

Each row is generated on its own and, when `seed` is given, from its own generator
seeded with it: a row's text never depends on which other requests the batcher put
beside it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from modelhub.domain.records import Signature, TensorSpec
from modelhub.serving.runtimes._common import (
    MAX_SEED,
    float_parameter,
    int_parameter,
    text_array,
    text_column,
    torch_memory_bytes,
    unloaded,
)
from modelhub.serving.runtimes.base import RuntimeInfo

RUNTIME = "text_generation"
PARAMETERS = ("max_tokens", "temperature", "top_k", "seed")
MAX_TOKENS = 1024
DEFAULT_MAX_TOKENS = 32
MAX_TOP_K = 2**31 - 1  # above the vocabulary size it just means "every token"


class TextGenerationRuntime:
    """The continuation (never the prompt) of each row's text."""

    def __init__(self, folder: Path) -> None:
        from modelhub.networks import char_lm

        self._lm: Any = char_lm.load(folder)
        for parameter in self._lm.model.parameters():
            parameter.requires_grad_(False)
        config = self._lm.config
        self.info = RuntimeInfo(
            runtime=RUNTIME,
            signature=Signature(
                inputs=[TensorSpec(name="text", dtype="BYTES", shape=[-1])],
                outputs=[TensorSpec(name="text", dtype="BYTES", shape=[-1])],
            ),
            memory_bytes=torch_memory_bytes(self._lm.model),
            blocking=True,
            parameters=PARAMETERS,
            details={"context_length": config.context_length, "vocab_size": config.vocab_size},
        )

    def infer(
        self, inputs: dict[str, np.ndarray], parameters: dict[str, Any]
    ) -> dict[str, np.ndarray]:
        """Raises InvalidInput for a bad prompt or parameter (the field names it)."""
        lm = self._lm
        if lm is None:
            raise unloaded(RUNTIME)
        prompts = text_column(inputs, "text")
        max_tokens = int_parameter(parameters, "max_tokens", DEFAULT_MAX_TOKENS, 1, MAX_TOKENS)
        temperature = float_parameter(parameters, "temperature", 1.0, 0.0)
        top_k = int_parameter(parameters, "top_k", None, 1, MAX_TOP_K)
        seed = int_parameter(parameters, "seed", None, 0, MAX_SEED)
        texts = [
            lm.generate(
                prompt,
                max_new_tokens=max_tokens,
                temperature=temperature,
                top_k=top_k,
                seed=seed,
            )
            for prompt in prompts
        ]
        return {"text": text_array(texts)}

    def unload(self) -> None:
        self._lm = None

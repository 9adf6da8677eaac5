"""OpenAI-style `/v1/embeddings` and `/v1/completions`, so a persona calls its model
with the client it already has. Both translate to rows for the same batcher the
Open Inference Protocol uses.

Token counts in `usage`: for the character-level language model a token is a
character, so completions count exactly; embeddings count whitespace-separated
words, which is an approximation of the encoder's word pieces.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import TYPE_CHECKING, Any

import numpy as np

from modelhub.domain.bounded_json import loads
from modelhub.errors import InvalidInput
from modelhub.serving.codec import check_parameter_value

if TYPE_CHECKING:
    from modelhub.serving.dataplane.app import DataPlane, Scope

EMBEDDING_RUNTIMES = ("sentence_embeddings",)
GENERATION_RUNTIMES = ("text_generation",)
EMBEDDING_ENCODINGS = ("float", "base64")
COMPLETION_PARAMETERS = {"max_tokens", "temperature", "top_k", "seed"}
IGNORED_COMPLETION_FIELDS = {"model", "prompt", "n", "stream", "user", "echo", "logprobs", "stop"}


def _object(body: bytes) -> dict[str, Any]:
    data = loads(body)  # nothing below recurses into the body: texts must be strings
    if not isinstance(data, dict):
        raise InvalidInput("body must be a JSON object", {"field": "body"})
    return data


def _texts(value: object, field: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(item, str) for item in value):
        return list(value)
    raise InvalidInput(f"{field} must be a string or a non-empty list of strings", {"field": field})


def _model_name(data: dict[str, Any]) -> str:
    model = data.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidInput("model is required: the name of a served model", {"field": "model"})
    return model


async def _run_texts(
    plane: DataPlane,
    scope: Scope,
    name: str,
    texts: list[str],
    parameters: dict[str, Any],
    runtimes: tuple[str, ...],
    kind: str,
) -> dict[str, Any]:
    """Rows of text through the model `name`, which must be served by one of `runtimes`."""
    slot = plane.host.pick(name)
    runtime = await plane.host.runtime(slot)
    if runtime.info.runtime not in runtimes:
        raise InvalidInput(
            f"{name} is a {runtime.info.runtime} model, not {kind} model", {"field": "model"}
        )
    inputs = {"text": np.array(texts, dtype=object)}
    return await plane.run_rows(scope, slot, inputs, len(texts), parameters)


async def embeddings(plane: DataPlane, scope: Scope, body: bytes) -> bytes:
    data = _object(body)
    name = _model_name(data)
    texts = _texts(data.get("input"), "input")
    encoding = data.get("encoding_format", "float")
    if encoding not in EMBEDDING_ENCODINGS:
        raise InvalidInput(
            "encoding_format must be 'float' or 'base64'",
            {"field": "encoding_format"},
        )
    outputs = await _run_texts(plane, scope, name, texts, {}, EMBEDDING_RUNTIMES, "an embedding")
    vectors = outputs["embedding"]
    words = sum(len(text.split()) for text in texts)
    return json.dumps(
        {
            "object": "list",
            "model": name,
            "data": [
                {"object": "embedding", "index": i, "embedding": _encoded(vector, encoding)}
                for i, vector in enumerate(vectors)
            ],
            "usage": {"prompt_tokens": words, "total_tokens": words},
        },
        separators=(",", ":"),
    ).encode()


def _encoded(vector: np.ndarray, encoding: str) -> list[float] | str:
    """A vector as a list of numbers, or as OpenAI's `base64`: little-endian float32
    bytes, which the official client asks for unless told otherwise."""
    if encoding == "base64":
        return base64.b64encode(vector.astype("<f4", copy=False).tobytes()).decode("ascii")
    values: list[float] = vector.tolist()
    return values


async def completions(plane: DataPlane, scope: Scope, body: bytes) -> bytes:
    data = _object(body)
    name = _model_name(data)
    prompts = _texts(data.get("prompt"), "prompt")
    if data.get("stream"):
        raise InvalidInput("streaming completions are not served", {"field": "stream"})
    if data.get("n", 1) != 1:
        raise InvalidInput("n must be 1", {"field": "n"})
    unknown = set(data) - COMPLETION_PARAMETERS - IGNORED_COMPLETION_FIELDS
    if unknown:
        field = sorted(unknown)[0]
        raise InvalidInput(f"unknown field {field!r}", {"field": field})
    parameters = {key: data[key] for key in COMPLETION_PARAMETERS if data.get(key) is not None}
    for key, value in parameters.items():
        check_parameter_value(value, key)
    parameters.setdefault("max_tokens", 16)
    outputs = await _run_texts(
        plane, scope, name, prompts, parameters, GENERATION_RUNTIMES, "a text generation"
    )
    texts = [str(text) for text in outputs["text"]]
    prompt_tokens = sum(len(prompt) for prompt in prompts)
    completion_tokens = sum(len(text) for text in texts)
    stop = data.get("stop")
    choices = []
    for index, text in enumerate(texts):
        reason = "length"
        if isinstance(stop, str) and stop and stop in text:
            text, reason = text[: text.index(stop)], "stop"
        choices.append({"text": text, "index": index, "logprobs": None, "finish_reason": reason})
    return json.dumps(
        {
            "id": f"cmpl-{scope.get('modelhub.request_id') or uuid.uuid4().hex[:24]}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": name,
            "choices": choices,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        },
        separators=(",", ":"),
    ).encode()

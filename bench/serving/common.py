"""What every server under test is: an endpoint, its protocol, and the check of one answer."""

from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from serving.model_a import ModelA, check_logits, mlflow_logits, oip_logits

Protocol = Literal["oip", "mlflow"]


@dataclass(frozen=True)
class Endpoint:
    """A running server's inference URL, the body to POST there, and how it was run."""

    name: str  # as it appears in the JSON lines and the chart: "mlflow", "mlserver-batch"...
    url: str
    body: Path
    protocol: Protocol
    config: dict[str, Any] = field(default_factory=dict)  # workers, versions, batching...


def body_for(model: ModelA, protocol: Protocol) -> Path:
    return model.oip_body if protocol == "oip" else model.mlflow_body


def post_json(url: str, body: bytes, timeout: float = 30.0) -> Any:
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def check_prediction(endpoint: Endpoint, model: ModelA, atol: float = 1e-4) -> list[float]:
    """POST the benchmark body once; raise unless the logits match torch's within `atol`."""
    answer = post_json(endpoint.url, endpoint.body.read_bytes())
    try:
        logits = oip_logits(answer) if endpoint.protocol == "oip" else mlflow_logits(answer)
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise RuntimeError(
            f"{endpoint.name}: unexpected answer {str(answer)[:300]!r}: {exc!r}"
        ) from exc
    check_logits(logits, model.logits, endpoint.name, atol)
    return logits

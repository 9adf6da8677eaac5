"""Python clients: `Client` over HTTP, `LocalClient` in-process; one contract, `ModelhubClient`.

Calls with options take the services' request models, exported here too.
"""

from __future__ import annotations

from modelhub.client.contract import ModelhubClient
from modelhub.client.http import Client
from modelhub.domain.personas import Feedback, InteractionIn
from modelhub.domain.queries import VersionQuery
from modelhub.services.deployments import DeployRequest, RolloutRequest
from modelhub.services.interop import ExportResult, ImportRequest
from modelhub.services.personas import PersonaRequest
from modelhub.services.registry import RegisterRequest

__all__ = [
    "Client",
    "DeployRequest",
    "ExportResult",
    "Feedback",
    "ImportRequest",
    "InteractionIn",
    "ModelhubClient",
    "PersonaRequest",
    "RegisterRequest",
    "RolloutRequest",
    "VersionQuery",
]

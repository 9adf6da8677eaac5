from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from modelhub.services import Services
from modelhub.services.inference import InferenceService


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def get_inference(request: Request) -> InferenceService:
    inference: InferenceService = request.app.state.inference
    return inference


ServicesDep = Annotated[Services, Depends(get_services)]
InferenceDep = Annotated[InferenceService, Depends(get_inference)]

"""/api/v1/deployments: thin routes over the deployment service."""

from __future__ import annotations

from fastapi import APIRouter, Query

from modelhub.api.deps import ServicesDep
from modelhub.api.schemas import DeployBody, DeploymentDetail, ScaleBody, UpdateBody
from modelhub.api.security import DeploymentReader, DeploymentWriter
from modelhub.domain.deployments import Deployment, Environment
from modelhub.domain.optimisation import DeploymentReply
from modelhub.services.deployments import DeployRequest, RolloutRequest

router = APIRouter(prefix="/api/v1", tags=["deployments"])


@router.post("/deployments", response_model=DeploymentReply, status_code=202)
def deploy(body: DeployBody, services: ServicesDep, caller: DeploymentWriter) -> DeploymentReply:
    request = DeployRequest(
        ref=body.model,
        environment=body.environment,
        replicas=body.replicas,
        autoscale=body.autoscale,
        name=body.name,
        load_balancing=body.load_balancing,
        resources=body.resources,
        override_approval=body.override_approval,
        prediction_log=body.prediction_log,
        optimize=body.optimize,
        pool=body.pool,
    )
    return services.deployments.deploy(caller, request)


@router.get("/deployments", response_model=list[Deployment])
def list_deployments(
    services: ServicesDep,
    caller: DeploymentReader,
    environment: Environment | None = None,
    model: str | None = None,
    all: bool = Query(default=False, description="Include stopped deployments."),
) -> list[Deployment]:
    return services.deployments.list_all(caller, environment, model, all)


@router.get("/deployments/{name}", response_model=DeploymentDetail)
def show_deployment(name: str, services: ServicesDep, caller: DeploymentReader) -> DeploymentDetail:
    deployment = services.deployments.get(caller, name)
    return DeploymentDetail(deployment=deployment, usage=services.deployments.usage(caller, name))


@router.post("/deployments/{name}/scale", response_model=Deployment, status_code=202)
def scale(
    name: str, body: ScaleBody, services: ServicesDep, caller: DeploymentWriter
) -> Deployment:
    return services.deployments.scale(caller, name, body.replicas)


@router.post("/deployments/{name}/update", response_model=Deployment, status_code=202)
def update(
    name: str, body: UpdateBody, services: ServicesDep, caller: DeploymentWriter
) -> Deployment:
    request = RolloutRequest(
        deployment=name,
        version=body.version,
        canary=body.canary,
        override_approval=body.override_approval,
        analysis=body.analysis,
        min_requests=body.min_requests,
        max_duration=body.max_duration,
        alpha=body.alpha,
    )
    return services.deployments.update(caller, request)


@router.post("/deployments/{name}/promote", response_model=Deployment, status_code=202)
def promote(name: str, services: ServicesDep, caller: DeploymentWriter) -> Deployment:
    return services.deployments.promote(caller, name)


@router.post("/deployments/{name}/rollback", response_model=Deployment, status_code=202)
def rollback(name: str, services: ServicesDep, caller: DeploymentWriter) -> Deployment:
    return services.deployments.rollback(caller, name)


@router.post("/deployments/{name}/stop", response_model=Deployment)
def stop(name: str, services: ServicesDep, caller: DeploymentWriter) -> Deployment:
    return services.deployments.stop(caller, name)

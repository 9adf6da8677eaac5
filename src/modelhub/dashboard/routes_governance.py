"""The dashboard's governance views: the policy and the reviews, one version's status and
evidence with the reviewers' actions, and the audit log with its chain check.

Each action calls the service method its API route calls, under the same Action.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, Response

from modelhub.dashboard.errors import TAG
from modelhub.dashboard.render import go_to, is_htmx, page
from modelhub.dashboard.session import page_requires
from modelhub.domain.auth import Action, Caller
from modelhub.domain.governance_policy import GATED_STAGES
from modelhub.domain.limits import PositiveInt64
from modelhub.services import Services

router = APIRouter(tags=[TAG], include_in_schema=False)

GovernanceReader = Annotated[Caller, Depends(page_requires(Action.GOVERNANCE_READ))]
GovernanceAssessor = Annotated[Caller, Depends(page_requires(Action.GOVERNANCE_ASSESS))]
Approver = Annotated[Caller, Depends(page_requires(Action.MODELS_APPROVE))]
AuditReader = Annotated[Caller, Depends(page_requires(Action.AUDIT_READ))]

PER_PAGE = 50
PageNumber = Annotated[int, Query(ge=1, le=1_000_000, alias="page")]
Filter = Annotated[str, Query(max_length=200)]
VERSION = "/governance/{name}/{version}"


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


@router.get("/governance", response_class=HTMLResponse)
def governance(request: Request, caller: GovernanceReader, page_no: PageNumber = 1) -> Response:
    services = _services(request)
    reviews = services.reviews.reviews(caller, (page_no - 1) * PER_PAGE, PER_PAGE)
    return page(
        request,
        "governance/index.html",
        caller,
        tab="governance",
        policy=services.policy.show(caller),
        reviews=reviews,
        page_no=page_no,
        per_page=PER_PAGE,
        pager_url=lambda number: f"/governance?page={number}",
    )


@router.get("/audit", response_class=HTMLResponse)
def audit(
    request: Request,
    caller: AuditReader,
    actor: Filter = "",
    action: Filter = "",
    target: Filter = "",
    since: Annotated[str, Query(max_length=32)] = "",
    page_no: PageNumber = 1,
) -> Response:
    services = _services(request)
    filters = {"actor": actor, "action": action, "target": target, "since": since}
    found = services.audit.page(
        caller,
        actor.strip() or None,
        action.strip() or None,
        target.strip() or None,
        since.strip() or None,
        PER_PAGE,
        (page_no - 1) * PER_PAGE,
    )
    kept = {key: value for key, value in filters.items() if value}

    def page_url(number: int) -> str:
        return "/audit?" + urlencode(kept | {"page": number})

    return page(
        request,
        "governance/audit.html",
        caller,
        tab="governance",
        events=found,
        filters=filters,
        page_no=page_no,
        per_page=PER_PAGE,
        page_url=page_url,
    )


@router.get("/audit/verify", response_class=HTMLResponse)
def audit_verify(request: Request, caller: AuditReader) -> Response:
    """The chain walked end to end: loaded into the audit page after it renders, since
    its cost grows with the log."""
    verdict = _services(request).audit.verify(caller)
    template = "governance/_verify.html" if is_htmx(request) else "governance/verify.html"
    return page(request, template, caller, tab="governance", verdict=verdict)


@router.get(VERSION, response_class=HTMLResponse)
def version_page(
    request: Request, name: str, version: PositiveInt64, caller: GovernanceReader
) -> Response:
    services = _services(request)
    statuses = [
        services.reviews.status(caller, name, version, stage.value) for stage in GATED_STAGES
    ]
    evidence = services.reviews.latest_assessments(caller, name, version)
    return page(
        request,
        "governance/version.html",
        caller,
        tab="governance",
        name=name,
        version=version,
        statuses=statuses,
        evidence={kind.value: found for kind, found in evidence.items()},
    )


@router.get(f"{VERSION}/bias.png", response_class=Response)
def bias_chart(
    request: Request,
    name: str,
    version: PositiveInt64,
    caller: GovernanceReader,
    assessment: PositiveInt64 | None = None,
) -> Response:
    png = _services(request).bias.chart(caller, f"{name}@{version}", assessment)
    return Response(png, media_type="image/png", headers={"cache-control": "private, max-age=3600"})


@router.post(f"{VERSION}/request")
def request_review(
    request: Request,
    name: str,
    version: PositiveInt64,
    caller: GovernanceAssessor,
    reviewers: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    named = [who.strip() for who in reviewers.replace(",", " ").split() if who.strip()]
    _services(request).reviews.request(caller, name, version, named)
    return go_to(request, f"/governance/{name}/{version}")


Note = Annotated[str, Form(max_length=4000)]


@router.post(f"{VERSION}/approve")
def approve(
    request: Request, name: str, version: PositiveInt64, caller: Approver, note: Note = ""
) -> Response:
    return _decide(request, caller, name, version, True, note)


@router.post(f"{VERSION}/reject")
def reject(
    request: Request, name: str, version: PositiveInt64, caller: Approver, note: Note = ""
) -> Response:
    return _decide(request, caller, name, version, False, note)


def _decide(
    request: Request, caller: Caller, name: str, version: int, approve: bool, note: str
) -> Response:
    _services(request).reviews.decide(caller, name, version, approve, note.strip() or None)
    return go_to(request, f"/governance/{name}/{version}")


@router.post(f"{VERSION}/check")
def compliance_check(
    request: Request, name: str, version: PositiveInt64, caller: GovernanceAssessor
) -> Response:
    _services(request).compliance.check(caller, f"{name}@{version}")
    return go_to(request, f"/governance/{name}/{version}#compliance")

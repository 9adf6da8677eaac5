"""modelhub.Client: the registry over HTTP, raising the same errors as the server."""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx

from modelhub.client.contract import Progress
from modelhub.client.errors import raise_for_error
from modelhub.client.http_alerts import AlertCalls
from modelhub.client.http_connection import request_body
from modelhub.client.http_cost import CostCalls
from modelhub.client.http_deployments import DeploymentCalls
from modelhub.client.http_drift import DriftCalls
from modelhub.client.http_governance_bias import GovernanceBiasCalls
from modelhub.client.http_governance_compliance import ComplianceCalls
from modelhub.client.http_governance_explain import ExplainCalls
from modelhub.client.http_governance_lineage import GovernanceLineageCalls
from modelhub.client.http_governance_workflow import GovernanceWorkflowCalls
from modelhub.client.http_history import HistoryCalls
from modelhub.client.http_interop import InteropCalls
from modelhub.client.http_optimisation import OptimisationCalls
from modelhub.client.http_personas import PersonaCalls
from modelhub.client.http_pipeline_optimization import PipelineOptimizationCalls
from modelhub.client.http_predictions import PredictionCalls
from modelhub.client.http_report import ReportCalls
from modelhub.client.http_training import TrainingCalls
from modelhub.client.http_tuning import TuningCalls
from modelhub.domain.auth import Principal, TokenInfo
from modelhub.domain.hosts import Host
from modelhub.domain.names import check_model_name
from modelhub.domain.plugins import Plugin
from modelhub.domain.queries import VersionQuery
from modelhub.domain.records import (
    AuditEvent,
    AuditVerdict,
    Dataset,
    ModelVersion,
    Page,
    RegisteredModel,
)
from modelhub.errors import IntegrityError, Unavailable
from modelhub.services.manifest import (
    safe_target,
    source_files,
    write_card_beside,
    write_verified_stream,
)
from modelhub.services.registry import RegisterRequest

CHUNK = 1024 * 1024
REGISTER_HEADER = "x-modelhub-register"
# A file up to this size registers in one request (hashed first, so the server can
# refuse damage before registering); larger ones and folders go through /uploads.
ONE_REQUEST_MAX_BYTES = 64 * 1024 * 1024
ONE_REQUEST_MAX_HEADER = 8 * 1024


def _fits_one_request(source: Path, header: str) -> bool:
    return (
        source.is_file()
        and source.stat().st_size <= ONE_REQUEST_MAX_BYTES
        and len(header.encode()) <= ONE_REQUEST_MAX_HEADER
        and header.isascii()
    )


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _file_chunks(path: Path, progress: Progress | None) -> Iterator[bytes]:
    with open(path, "rb") as source:
        while chunk := source.read(CHUNK):
            if progress:
                progress(len(chunk))
            yield chunk


class Client(
    GovernanceWorkflowCalls,
    TrainingCalls,
    DeploymentCalls,
    AlertCalls,
    DriftCalls,
    ReportCalls,
    CostCalls,
    PredictionCalls,
    HistoryCalls,
    GovernanceLineageCalls,
    ComplianceCalls,
    ExplainCalls,
    GovernanceBiasCalls,
    InteropCalls,
    OptimisationCalls,
    PipelineOptimizationCalls,
    TuningCalls,
    PersonaCalls,
):
    """Talk to a running modelhub server: `Client(url, token)`, or from the environment.

    `transport` lets tests and embedders inject an httpx transport (an ASGI app, a
    mock network); by default it is a pooled HTTP connection.
    """

    # -- plumbing -------------------------------------------------------------

    @staticmethod
    def _model_path(name: str) -> str:
        # Checked here too: an encoded '/' in a name would reach a different route.
        return f"/api/v1/models/{quote(check_model_name(name), safe='')}"

    # -- registry -------------------------------------------------------------

    def register(
        self, request: RegisterRequest, source: Path, progress: Progress | None = None
    ) -> ModelVersion:
        fields = request_body(request, "name")
        name = request.name
        source = Path(source)
        header = json.dumps(fields, separators=(",", ":"))
        if _fits_one_request(source, header):
            url = f"{self._model_path(name)}/files/{quote(source.name, safe='')}"
            digest = _sha256_of(source)  # checked by the server before it registers anything
            data = self._request(
                "POST",
                url,
                content=_file_chunks(source, progress),
                headers={REGISTER_HEADER: header, "x-content-sha256": digest},
            )
            return ModelVersion.model_validate(data)
        upload_id = self._upload(source, progress)
        try:
            data = self._request(
                "POST",
                f"{self._model_path(name)}/versions",
                json=fields | {"upload_id": upload_id},
            )
        except BaseException:
            self._discard(upload_id)  # the server drops a refused upload itself too
            raise
        return ModelVersion.model_validate(data)

    def _upload(self, path: Path, progress: Progress | None) -> str:
        """Stream a file or folder into a new upload on the server; return its id."""
        files = source_files(path)
        upload_id = str(self._request("POST", "/api/v1/uploads")["upload_id"])
        try:
            for relative, local in files:
                self._upload_file(upload_id, relative, local, progress)
        except BaseException:
            self._discard(upload_id)
            raise
        return upload_id

    def _upload_file(
        self, upload_id: str, relative: str, local: Path, progress: Progress | None
    ) -> None:
        digest = hashlib.sha256()

        def chunks() -> Iterator[bytes]:
            with open(local, "rb") as source:
                while chunk := source.read(CHUNK):
                    digest.update(chunk)
                    if progress:
                        progress(len(chunk))
                    yield chunk

        url = f"/api/v1/uploads/{upload_id}/files/{quote(relative)}"
        sent = self._request("PUT", url, content=chunks())
        if sent["digest"] != digest.hexdigest():
            raise IntegrityError(f"{relative} changed while it was being uploaded")

    def _discard(self, upload_id: str) -> None:
        with contextlib.suppress(httpx.HTTPError):  # the server drops stale uploads itself
            self._http.delete(f"/api/v1/uploads/{upload_id}")

    def get(self, ref: str) -> ModelVersion:
        name, _, selector = ref.partition("@")
        url = f"{self._model_path(name)}/versions/{quote(selector or 'latest', safe='')}"
        return ModelVersion.model_validate(self._request("GET", url))

    def get_model(self, name: str) -> RegisteredModel:
        return RegisteredModel.model_validate(self._request("GET", self._model_path(name)))

    def versions(self, name: str) -> list[ModelVersion]:
        data = self._request("GET", f"{self._model_path(name)}/versions")
        return [ModelVersion.model_validate(v) for v in data]

    def search(self, query: VersionQuery) -> Page:
        params: list[tuple[str, str | int | bool]] = [
            (key, value)
            for key, value in (
                ("name", query.name),
                ("type", query.type),
                ("framework", query.framework),
                ("stage", query.stage),
                ("search", query.text),
            )
            if value
        ]
        params += [("tag", f"{k}={v}") for k, v in query.tags.items()]
        params += [
            ("include_archived", query.include_archived),
            ("all_versions", query.all_versions),
            ("limit", query.limit),
            ("offset", query.offset),
        ]
        return Page.model_validate(self._request("GET", "/api/v1/models", params=params))

    def set_stage(self, name: str, version: int, stage: str, force: bool = False) -> ModelVersion:
        url = f"{self._model_path(name)}/versions/{version}/stage"
        body = {"stage": stage, "force": force}
        return ModelVersion.model_validate(self._request("POST", url, json=body))

    def approve(self, name: str, version: int, note: str | None = None) -> ModelVersion:
        url = f"{self._model_path(name)}/versions/{version}/approve"
        return ModelVersion.model_validate(self._request("POST", url, json={"note": note}))

    def reject(self, name: str, version: int, note: str | None = None) -> ModelVersion:
        url = f"{self._model_path(name)}/versions/{version}/reject"
        return ModelVersion.model_validate(self._request("POST", url, json={"note": note}))

    def set_alias(self, name: str, alias: str, version: int) -> ModelVersion:
        url = f"{self._model_path(name)}/aliases/{quote(alias, safe='')}"
        return ModelVersion.model_validate(self._request("PUT", url, json={"version": version}))

    def remove_alias(self, name: str, alias: str) -> None:
        self._request("DELETE", f"{self._model_path(name)}/aliases/{quote(alias, safe='')}")

    def set_model_card(self, ref: str, text: str) -> ModelVersion:
        name, _, selector = ref.partition("@")
        url = f"{self._model_path(name)}/versions/{quote(selector or 'latest', safe='')}/card"
        return ModelVersion.model_validate(self._request("PUT", url, json={"text": text}))

    def update_model(
        self,
        name: str,
        description: str | None = None,
        license: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> RegisteredModel:
        body = {"description": description, "license": license, "tags": tags}
        data = self._request("PATCH", self._model_path(name), json=body)
        return RegisteredModel.model_validate(data)

    def archive(self, ref: str, restore: bool = False) -> str:
        name, _, selector = ref.partition("@")
        url = self._model_path(name)
        if selector:
            url += f"/versions/{quote(selector, safe='')}"
        return str(self._request("POST", f"{url}/archive", json={"restore": restore})["deleted"])

    def delete(self, ref: str) -> str:
        name, _, selector = ref.partition("@")
        url = self._model_path(name)
        if selector:
            url += f"/versions/{quote(selector, safe='')}"
        return str(self._request("DELETE", url)["deleted"])

    def gc(self, grace_seconds: int | None = None) -> dict[str, int]:
        params = {} if grace_seconds is None else {"grace_seconds": grace_seconds}
        return dict(self._request("POST", "/api/v1/gc", params=params))

    def download(
        self, ref: str, dest: Path, progress: Progress | None = None
    ) -> tuple[ModelVersion, list[Path]]:
        version = self.get(ref)
        written: list[Path] = []
        for entry in version.files:
            target = safe_target(Path(dest), entry.path)
            url = (
                f"{self._model_path(version.name)}/versions/{version.version}"
                f"/files/{quote(entry.path)}"
            )
            try:
                with self._http.stream("GET", url) as response:
                    if response.status_code >= 400:
                        response.read()
                        raise_for_error(response)
                    write_verified_stream(
                        response.iter_bytes(CHUNK), target, entry.digest, progress
                    )
            except httpx.TransportError as exc:
                raise Unavailable(
                    f"download of {entry.path} broke off ({exc}); if it happens again the "
                    "server's stored file is damaged: its digest check stopped the transfer"
                ) from exc
            written.append(target)
        card = write_card_beside(version, Path(dest))
        if card is not None:
            written.append(card)
        return version, written

    # -- datasets ---------------------------------------------------------------

    def register_dataset(
        self,
        path: Path,
        name: str,
        format: str | None = None,
        description: str = "",
        progress: Progress | None = None,
    ) -> Dataset:
        upload_id = self._upload(Path(path), progress)
        body = {"upload_id": upload_id, "format": format, "description": description}
        url = f"/api/v1/datasets/{quote(check_model_name(name), safe='')}/versions"
        return Dataset.model_validate(self._request("POST", url, json=body))

    def get_dataset(self, ref: str) -> Dataset:
        name, _, selector = ref.partition("@")
        url = (
            f"/api/v1/datasets/{quote(check_model_name(name), safe='')}"
            f"/versions/{quote(selector or 'latest', safe='')}"
        )
        return Dataset.model_validate(self._request("GET", url))

    def list_datasets(self, name: str | None = None) -> list[Dataset]:
        params = {"name": name} if name else {}
        data = self._request("GET", "/api/v1/datasets", params=params)
        return [Dataset.model_validate(d) for d in data]

    # -- access control and audit ----------------------------------------------

    def whoami(self) -> Principal:
        return Principal.model_validate(self._request("GET", "/api/v1/auth/whoami"))

    def add_user(self, name: str, role: str) -> Principal:
        body = {"name": name, "role": role}
        return Principal.model_validate(self._request("POST", "/api/v1/auth/users", json=body))

    def update_user(
        self, name: str, role: str | None = None, disabled: bool | None = None
    ) -> Principal:
        body = {"role": role, "disabled": disabled}
        url = f"/api/v1/auth/users/{quote(name, safe='')}"
        return Principal.model_validate(self._request("PATCH", url, json=body))

    def list_users(self) -> list[Principal]:
        return [Principal.model_validate(p) for p in self._request("GET", "/api/v1/auth/users")]

    def create_token(
        self,
        user: str | None = None,
        expires: str | None = None,
        scope: str = "write",
        description: str = "",
    ) -> tuple[TokenInfo, str]:
        body = {"user": user, "expires": expires, "scope": scope, "description": description}
        data = self._request("POST", "/api/v1/auth/tokens", json=body)
        return TokenInfo.model_validate(data["info"]), str(data["token"])

    def list_tokens(self, user: str | None = None) -> list[TokenInfo]:
        params = {"user": user} if user else {}
        data = self._request("GET", "/api/v1/auth/tokens", params=params)
        return [TokenInfo.model_validate(t) for t in data]

    def revoke_token(self, token_id: str) -> TokenInfo:
        url = f"/api/v1/auth/tokens/{quote(token_id, safe='')}"
        return TokenInfo.model_validate(self._request("DELETE", url))

    def audit_events(
        self,
        actor: str | None = None,
        action: str | None = None,
        target: str | None = None,
        since: str | None = None,
        limit: int = 100,
    ) -> list[AuditEvent]:
        filters = {"actor": actor, "action": action, "target": target, "since": since}
        params: dict[str, str | int] = {k: v for k, v in filters.items() if v}
        params["limit"] = limit
        data = self._request("GET", "/api/v1/audit", params=params)
        return [AuditEvent.model_validate(e) for e in data]

    def audit_verify(self, expect_head: str | None = None) -> AuditVerdict:
        params = {"expect_head": expect_head} if expect_head is not None else {}
        data = self._request("GET", "/api/v1/audit/verify", params=params)
        return AuditVerdict.model_validate(data)

    def hosts(self) -> list[Host]:
        return [Host.model_validate(h) for h in self._request("GET", "/api/v1/hosts")]

    def plugins(self) -> list[Plugin]:
        return [Plugin.model_validate(p) for p in self._request("GET", "/api/v1/plugins")]

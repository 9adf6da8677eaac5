"""The registry client that works directly on the local home, with no server."""

from __future__ import annotations

from pathlib import Path

from modelhub.client.base import Progress
from modelhub.domain.records import Lineage, ModelVersion, Page, RegisteredModel
from modelhub.services import Services, build_services
from modelhub.services.registry import RegisterRequest
from modelhub.settings import Settings


class LocalClient:
    """Same methods and errors as `Client`, served by the services in this process."""

    def __init__(self, settings: Settings, actor: str) -> None:
        self.services: Services = build_services(settings)
        self.actor = actor

    def close(self) -> None:
        self.services.close()

    def register(
        self,
        path: Path,
        name: str,
        *,
        type: str | None = None,
        framework: str | None = None,
        description: str = "",
        license: str | None = None,
        tags: dict[str, str] | None = None,
        label: str | None = None,
        trust: bool = False,
        lineage: Lineage | None = None,
        metrics: dict[str, float] | None = None,
        model_card: str | None = None,
        progress: Progress | None = None,
    ) -> ModelVersion:
        request = RegisterRequest(
            name=name,
            type=type,
            framework=framework,
            description=description,
            license=license,
            tags=tags,
            label=label,
            trust=trust,
            lineage=lineage,
            metrics=metrics,
            model_card=model_card,
        )
        return self.services.registry.register(request, Path(path), self.actor, progress=progress)

    def get(self, ref: str) -> ModelVersion:
        return self.services.registry.get(ref)

    def get_model(self, name: str) -> RegisteredModel:
        return self.services.registry.get_model(name)

    def versions(self, name: str) -> list[ModelVersion]:
        return self.services.registry.versions(name)

    def search(
        self,
        *,
        name: str | None = None,
        type: str | None = None,
        framework: str | None = None,
        stage: str | None = None,
        tags: dict[str, str] | None = None,
        text: str | None = None,
        include_archived: bool = False,
        all_versions: bool = False,
        limit: int = 100,
        offset: int = 0,
    ) -> Page:
        return self.services.registry.search(
            name=name,
            type=type,
            framework=framework,
            stage=stage,
            tags=tags,
            text=text,
            include_archived=include_archived,
            all_versions=all_versions,
            limit=limit,
            offset=offset,
        )

    def set_stage(self, name: str, version: int, stage: str) -> ModelVersion:
        return self.services.registry.set_stage(name, version, stage, self.actor)

    def approve(self, name: str, version: int, note: str | None = None) -> ModelVersion:
        return self.services.registry.approve(name, version, note, self.actor)

    def reject(self, name: str, version: int, note: str | None = None) -> ModelVersion:
        return self.services.registry.reject(name, version, note, self.actor)

    def set_alias(self, name: str, alias: str, version: int) -> ModelVersion:
        return self.services.registry.set_alias(name, alias, version, self.actor)

    def remove_alias(self, name: str, alias: str) -> None:
        self.services.registry.remove_alias(name, alias, self.actor)

    def set_model_card(self, ref: str, text: str) -> ModelVersion:
        return self.services.registry.set_model_card(ref, text, self.actor)

    def archive(self, ref: str, restore: bool = False) -> str:
        return self.services.registry.archive(ref, self.actor, restore=restore)

    def delete(self, ref: str) -> str:
        return self.services.registry.delete(ref, self.actor)

    def gc(self, grace_seconds: int | None = None) -> dict[str, int]:
        report = self.services.registry.gc(grace_seconds)
        return {
            "blobs_deleted": report.blobs_deleted,
            "bytes_freed": report.bytes_freed,
            "blobs_kept_young": report.blobs_kept_young,
        }

    def download(
        self, ref: str, dest: Path, progress: Progress | None = None
    ) -> tuple[ModelVersion, list[Path]]:
        return self.services.registry.download(ref, Path(dest), progress)

"""Import and export calls of `LocalClient`, over the services in this process."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from modelhub.client.contract import Progress
from modelhub.client.local_home import LocalHome
from modelhub.domain.records import ModelVersion
from modelhub.services.interop import ExportResult, ImportRequest


class LocalInteropCalls(LocalHome):
    def import_model(
        self, request: ImportRequest, source: Path, progress: Progress | None = None
    ) -> ModelVersion:
        source = Path(source)
        if request.source_name is None:
            request = replace(request, source_name=source.resolve().name)
        return self.services.interop.import_model(self.caller, request, source, progress)

    def export_model(self, ref: str, to: str, dest: Path) -> ExportResult:
        return self.services.interop.export(self.caller, ref, to, Path(dest))

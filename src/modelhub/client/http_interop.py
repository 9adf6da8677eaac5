"""Import and export calls of `modelhub.Client`: the folder travels through /uploads,
the export comes back as a tar stream unpacked into the destination folder."""

from __future__ import annotations

import abc
import tempfile
from pathlib import Path
from urllib.parse import quote

import httpx

from modelhub.client.contract import Progress
from modelhub.client.errors import raise_for_error
from modelhub.client.http_connection import HttpConnection, request_body
from modelhub.domain.names import check_model_name
from modelhub.domain.records import ModelVersion
from modelhub.errors import Unavailable
from modelhub.interop.destination import check_destination, staged_beside
from modelhub.interop.tar_stream import CHUNK, extract_tar
from modelhub.services.interop import ExportResult, ImportRequest


class InteropCalls(HttpConnection):
    @abc.abstractmethod
    def _upload(self, path: Path, progress: Progress | None) -> str: ...

    @abc.abstractmethod
    def _discard(self, upload_id: str) -> None: ...

    def import_model(
        self, request: ImportRequest, source: Path, progress: Progress | None = None
    ) -> ModelVersion:
        source = Path(source)
        if request.source_name is None:
            request = _with_source_name(request, source)
        upload_id = self._upload(source, progress)
        body = request_body(request) | {"upload_id": upload_id}
        try:
            data = self._request("POST", "/api/v1/models/imports", json=body)
        except BaseException:
            self._discard(upload_id)  # the server drops it too; this is for a broken link
            raise
        return ModelVersion.model_validate(data)

    def export_model(self, ref: str, to: str, dest: Path) -> ExportResult:
        dest = Path(dest)
        check_destination(dest)  # before the server builds anything
        name, _, selector = ref.partition("@")
        url = (
            f"/api/v1/models/{quote(check_model_name(name), safe='')}/versions/"
            f"{quote(selector or 'latest', safe='')}/export"
        )
        with staged_beside(dest) as out, tempfile.TemporaryFile(dir=out.parent) as archive:
            try:
                with self._http.stream("GET", url, params={"to": to}) as response:
                    if response.status_code >= 400:
                        response.read()
                        raise_for_error(response)
                    version = int(response.headers["x-modelhub-version"])
                    fmt = response.headers["x-modelhub-format"]
                    for chunk in response.iter_bytes(CHUNK):
                        archive.write(chunk)
            except httpx.TransportError as exc:
                raise Unavailable(f"the export of {ref} broke off: {exc}") from exc
            archive.seek(0)
            written = extract_tar(archive, out)
            files = sorted(p.relative_to(out).as_posix() for p in written)
        return ExportResult(name=check_model_name(name), version=version, format=fmt, files=files)


def _with_source_name(request: ImportRequest, source: Path) -> ImportRequest:
    from dataclasses import replace

    return replace(request, source_name=source.resolve().name)

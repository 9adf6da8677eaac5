"""The dashboard's Model Registry tab: the models table, a model and its versions, a
version with its inspection, lineage, card and governance status, and the registry's
actions (register an upload, import a path on the server, set a stage or an alias,
download a file). Each action calls the service method its API route calls."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import PurePosixPath
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from modelhub.dashboard.errors import TAG
from modelhub.dashboard.render import go_to, is_htmx, markdown, page
from modelhub.dashboard.session import PageReader, page_requires
from modelhub.domain.auth import Action, Caller
from modelhub.domain.deployments import Environment
from modelhub.domain.enums import Framework, ModelType, Stage
from modelhub.domain.limits import PositiveInt64
from modelhub.domain.names import parse_tags
from modelhub.domain.queries import ModelQuery, VersionQuery
from modelhub.domain.records import ModelVersion
from modelhub.errors import InvalidInput, ModelhubError
from modelhub.interop import ExportFormat, ImportFormat
from modelhub.services import Services
from modelhub.services.deployments import MAX_REPLICAS
from modelhub.services.guarded import GuardedRegistry
from modelhub.services.interop import ImportRequest
from modelhub.services.registry import RegisterRequest
from modelhub.web.status import HTTP_STATUS

router = APIRouter(tags=[TAG], include_in_schema=False)

PageRegistrar = Annotated[Caller, Depends(page_requires(Action.MODELS_REGISTER))]
PageUpdater = Annotated[Caller, Depends(page_requires(Action.MODELS_UPDATE))]
PageStager = Annotated[Caller, Depends(page_requires(Action.MODELS_STAGE))]

PER_PAGE = 50
CHUNK = 1024 * 1024
# Starlette's own bounds on one form, said where the form is read (a Hugging Face folder
# is a few dozen files); its files spool to disk past 1 MB, never whole in memory.
MAX_FORM_FILES = 1000
MAX_FORM_FIELDS = 1000


HEADING = re.compile(r"<(/?)h([1-6])>")
FRONT_MATTER = re.compile(r"\A---\n.*?\n---\n", re.DOTALL)


def card_html(text: str | None, top: int = 3) -> Markup | None:
    """A model card's Markdown as HTML whose headings sit under the page's own: its `#`
    becomes <h3> under the section's <h2> (one <h1> per page, headings in order). The
    YAML front matter (the Hugging Face Hub's metadata) is for machines: left out."""
    if not text:
        return None
    shift = top - 1
    body = FRONT_MATTER.sub("", text)
    html = HEADING.sub(lambda m: f"<{m[1]}h{min(int(m[2]) + shift, 6)}>", str(markdown(body)))
    return Markup(html)


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


# -- the models table -----------------------------------------------------------


@dataclass(frozen=True)
class Listing:
    """The table's filters, order and page, as the query string carries them."""

    q: str = ""
    type: str = ""
    framework: str = ""
    stage: str = ""
    tag: tuple[str, ...] = field(default_factory=tuple)
    sort: str = "name"
    order: str = "asc"
    page: int = 1

    def query(self) -> ModelQuery:
        if self.order not in ("asc", "desc"):
            raise InvalidInput(f"unknown order {self.order!r}: use asc or desc", {"field": "order"})
        return ModelQuery(
            text=self.q or None,
            type=self.type or None,
            framework=self.framework or None,
            stage=self.stage or None,
            tags=parse_tags([t for t in self.tag if t]),
            sort=self.sort,
            descending=self.order == "desc",
            limit=PER_PAGE,
            offset=(self.page - 1) * PER_PAGE,
        )

    def url(self, **changes: Any) -> str:
        """/models with these filters, and `changes` (a new page, sort or order)."""
        moved = replace(self, **changes)
        pairs: list[tuple[str, str | int]] = [
            (key, value)
            for key, value in (
                ("q", moved.q),
                ("type", moved.type),
                ("framework", moved.framework),
                ("stage", moved.stage),
            )
            if value
        ]
        pairs += [("tag", t) for t in moved.tag if t]
        if moved.sort != "name" or moved.order != "asc":
            pairs += [("sort", moved.sort), ("order", moved.order)]
        if moved.page != 1:
            pairs.append(("page", moved.page))
        return "/models" + (f"?{urlencode(pairs)}" if pairs else "")

    def page_url(self, page: int) -> str:
        return self.url(page=page)

    def sort_url(self, column: str) -> str:
        """Sort by `column`; a second click on the sorted column reverses it."""
        order = "desc" if self.sort == column and self.order == "asc" else "asc"
        return self.url(sort=column, order=order, page=1)


@router.get("/models", response_class=HTMLResponse)
def list_models(
    request: Request,
    caller: PageReader,
    q: Annotated[str, Query(max_length=200)] = "",
    type: Annotated[str, Query(max_length=32)] = "",
    framework: Annotated[str, Query(max_length=32)] = "",
    stage: Annotated[str, Query(max_length=32)] = "",
    tag: Annotated[list[str], Query(max_length=300)] = [],  # noqa: B006 - read, never mutated
    sort: Annotated[str, Query(max_length=16)] = "name",
    order: Annotated[str, Query(max_length=4)] = "asc",
    page_no: Annotated[PositiveInt64, Query(alias="page")] = 1,
) -> HTMLResponse:
    listing = Listing(q, type, framework, stage, tuple(tag), sort, order, page_no)
    found = services_of(request).registry_for(caller).list_models(listing.query())
    table_only = is_htmx(request) and request.headers.get("hx-target") == "models-table"
    return page(
        request,
        "registry/_models_table.html" if table_only else "registry/models.html",
        caller,
        tab="registry",
        listing=listing,
        found=found,
        per_page=PER_PAGE,
        types=[t.value for t in ModelType],
        frameworks=[f.value for f in Framework],
        stages=[s.value for s in Stage],
    )


# -- register and import ----------------------------------------------------------


def _form_page(
    request: Request,
    template: str,
    caller: Caller,
    values: dict[str, str],
    error: ModelhubError | None = None,
) -> HTMLResponse:
    return page(
        request,
        template,
        caller,
        tab="registry",
        values=values,
        error=error.message if error else None,
        error_field=(error.details or {}).get("field") if error else None,
        status_code=HTTP_STATUS[error.code] if error else 200,
        types=[t.value for t in ModelType],
        import_dirs=[str(d) for d in services_of(request).registry.import_dirs],
        import_formats=[f.value for f in ImportFormat],
    )


@router.get("/models/register", response_class=HTMLResponse)
def register_form(request: Request, caller: PageRegistrar) -> HTMLResponse:
    return _form_page(request, "registry/register.html", caller, {})


def register_request(values: dict[str, str]) -> RegisterRequest:
    """The registration's fields as the form gives them: tags as `k=v, k2=v2`."""
    tags = [pair.strip() for pair in values.get("tags", "").split(",") if pair.strip()]
    return RegisterRequest(
        name=values.get("name", "").strip(),
        type=values.get("type") or None,
        description=values.get("description", ""),
        license=values.get("license", "").strip() or None,
        tags=parse_tags(tags),
    )


@router.post("/models/register", response_model=None)
async def register(request: Request, caller: PageRegistrar) -> Response:
    form = await request.form(max_files=MAX_FORM_FILES, max_fields=MAX_FORM_FIELDS)
    values = {k: v for k, v in form.multi_items() if isinstance(v, str) and k != "csrf"}
    uploads = [
        item
        for key in ("files", "folder")
        for item in form.getlist(key)
        if isinstance(item, UploadFile) and item.filename
    ]
    registry = services_of(request).registry_for(caller)
    try:
        version = await run_in_threadpool(
            register_uploaded, registry, register_request(values), uploads
        )
    except ModelhubError as exc:
        if is_htmx(request):
            raise
        return _form_page(request, "registry/register.html", caller, values, exc)
    return go_to(request, version_url(version))


def upload_paths(uploads: list[UploadFile]) -> list[str]:
    """Each file's path inside the version: a folder's files keep their place under the
    folder (the browser names them `folder/sub/file`), picked files their own name."""
    names = [PurePosixPath(u.filename or "") for u in uploads]
    tops = {n.parts[0] for n in names if len(n.parts) > 1}
    if len(tops) == 1 and all(len(n.parts) > 1 for n in names):
        return [PurePosixPath(*n.parts[1:]).as_posix() for n in names]
    return [n.as_posix() for n in names]


def register_uploaded(
    registry: GuardedRegistry, request: RegisterRequest, uploads: list[UploadFile]
) -> ModelVersion:
    """Register the form's files through the API's own paths: one file as the
    one-request registration, several as a staged upload (as the CLI sends a folder).
    Refused or not, nothing stays staged."""
    if not uploads:
        raise InvalidInput("choose a model file or a folder to upload", {"field": "files"})
    paths = upload_paths(uploads)
    registry.check_registration(request)  # a bad name or type costs no upload
    if len(uploads) == 1:
        registration = registry.open_registration(request, paths[0])
        try:
            for chunk in _chunks(uploads[0]):
                registration.write(chunk)
        except BaseException:
            registration.abort()
            raise
        return registration.finish()
    upload_id = registry.start_upload()
    try:
        for path, upload in zip(paths, uploads, strict=True):
            staged = registry.open_upload_file(upload_id, path)
            try:
                for chunk in _chunks(upload):
                    staged.write(chunk)
            except BaseException:
                staged.abort()
                raise
            staged.finish()
    except BaseException:
        registry.discard_upload(upload_id)
        raise
    return registry.register_upload(upload_id, request)


def _chunks(upload: UploadFile) -> Iterator[bytes]:
    upload.file.seek(0)
    while chunk := upload.file.read(CHUNK):
        yield chunk


@router.get("/models/import", response_class=HTMLResponse)
def import_form(request: Request, caller: PageRegistrar) -> HTMLResponse:
    return _form_page(request, "registry/import.html", caller, {})


@router.post("/models/import", response_model=None)
def import_model(
    request: Request,
    caller: PageRegistrar,
    path: Annotated[str, Form(max_length=4096)] = "",
    name: Annotated[str, Form(max_length=200)] = "",
    type: Annotated[str, Form(max_length=32)] = "",
    description: Annotated[str, Form(max_length=10000)] = "",
    license: Annotated[str, Form(max_length=128)] = "",
    tags: Annotated[str, Form(max_length=4000)] = "",
    from_format: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    values = {
        "path": path,
        "name": name,
        "type": type,
        "description": description,
        "license": license,
        "tags": tags,
        "from_format": from_format,
    }
    services = services_of(request)
    try:
        if from_format:  # another platform's layout, read as the API's imports read it
            version = services.interop.import_server_path(caller, import_request(values), path)
        else:
            version = services.registry_for(caller).import_path(register_request(values), path)
    except ModelhubError as exc:
        if is_htmx(request):
            raise
        return _form_page(request, "registry/import.html", caller, values, exc)
    return go_to(request, version_url(version))


def import_request(values: dict[str, str]) -> ImportRequest:
    """The import form's fields as an ImportRequest (an empty name: the folder's)."""
    plain = register_request(values)
    return ImportRequest(
        from_format=values["from_format"],
        name=plain.name or None,
        source_name=PurePosixPath(values.get("path", "").strip()).name or None,
        type=plain.type,
        description=plain.description,
        license=plain.license,
        tags=plain.tags,
    )


# -- a model, a version -------------------------------------------------------------


def model_url(name: str) -> str:
    return f"/models/{quote(name, safe='')}"


def version_url(version: ModelVersion) -> str:
    return f"{model_url(version.name)}/versions/{version.version}"


@router.get("/models/{name}", response_class=HTMLResponse)
def show_model(
    request: Request,
    name: str,
    caller: PageReader,
    page_no: Annotated[PositiveInt64, Query(alias="page")] = 1,
) -> HTMLResponse:
    registry = services_of(request).registry_for(caller)
    model = registry.get_model(name)
    found = registry.search(
        VersionQuery(
            name=model.name,
            all_versions=True,
            include_archived=True,
            limit=PER_PAGE,
            offset=(page_no - 1) * PER_PAGE,
        )
    )
    return page(
        request,
        "registry/model.html",
        caller,
        tab="registry",
        model=model,
        versions=found,
        aliases=registry.aliases(model.name),
        page_no=page_no,
        per_page=PER_PAGE,
        model_url=model_url(model.name),
    )


@router.get("/models/{name}/versions/{version}", response_class=HTMLResponse)
def show_version(
    request: Request, name: str, version: PositiveInt64, caller: PageReader
) -> HTMLResponse:
    services = services_of(request)
    found = services.registry_for(caller).get(f"{name}@{version}")
    ref = f"{found.name}@{found.version}"
    governed = services.auth.allows(caller, Action.GOVERNANCE_READ)
    return page(
        request,
        "registry/version.html",
        caller,
        tab="registry",
        v=found,
        model_url=model_url(found.name),
        version_url=version_url(found),
        lineage=services.lineage.upstream_for(caller, ref) if governed else None,
        card=card_html(services.cards.card_for(caller, ref).text) if governed else None,
        author_card=card_html(found.model_card),
        governance=(
            services.reviews.status(caller, found.name, found.version) if governed else None
        ),
        environments=[e.value for e in Environment],
        max_replicas=MAX_REPLICAS,
        stages=[s.value for s in Stage],
        export_formats=[f.value for f in ExportFormat],
        quote=quote,
    )


@router.post("/models/{name}/versions/{version}/stage", response_model=None)
def set_stage(
    request: Request,
    name: str,
    version: PositiveInt64,
    caller: PageStager,
    stage: Annotated[str, Form(max_length=32)],
) -> Response:
    changed = services_of(request).registry_for(caller).set_stage(name, version, stage)
    return go_to(request, version_url(changed))


@router.post("/models/{name}/versions/{version}/alias", response_model=None)
def set_alias(
    request: Request,
    name: str,
    version: PositiveInt64,
    caller: PageUpdater,
    alias: Annotated[str, Form(max_length=64)],
) -> Response:
    changed = services_of(request).registry_for(caller).set_alias(name, alias.strip(), version)
    return go_to(request, version_url(changed))


@router.get("/models/{name}/versions/{version}/files/{path:path}")
def download_file(
    request: Request, name: str, version: PositiveInt64, path: str, caller: PageReader
) -> StreamingResponse:
    registry = services_of(request).registry_for(caller)
    found, entry = registry.file_entry(f"{name}@{version}", path)
    filename = PurePosixPath(entry.path).name
    return StreamingResponse(
        registry.read_file(entry.digest),
        media_type="application/octet-stream",
        headers={
            "content-length": str(entry.size),
            "content-disposition": f"attachment; filename*=UTF-8''{quote(filename, safe='')}",
            "x-content-sha256": entry.digest,
            "x-modelhub-version": str(found.version),
        },
    )


@router.get("/models/{name}/versions/{version}/export")
def export_version(
    request: Request,
    name: str,
    version: PositiveInt64,
    caller: PageReader,
    to: Annotated[str, Query(max_length=32)],
) -> StreamingResponse:
    """The version as MLflow, Hugging Face or ONNX, a tar download (the API's export)."""
    archive = services_of(request).interop.export_archive(caller, f"{name}@{version}", to)
    result = archive.result
    filename = quote(f"{result.name}-{result.version}-{result.format}.tar", safe="")
    return StreamingResponse(
        archive.chunks,
        media_type="application/x-tar",
        headers={"content-disposition": f"attachment; filename*=UTF-8''{filename}"},
    )

"""Lookup latency in a 100,000-version store; MLflow at 500 versions, same run.

The store: 2,000 models x 50 versions, model tag team=t(i % 5), alias `champion`
on version 25 of every model. Filling it through register() would take an hour,
so four real versions are registered first (real blobs, real inspection) and
their rows are copied in bulk through the metadata store's own engine and
table definitions (one executemany per table); the templates are then deleted.
Bulk rows carry no audit events. The filled home is cached under
bench/.cache/lookup-<alembic head>-<schema hash>-<versions>/ (reuse unless --rebuild).

Measured, median over many calls, in process and over REST (a `modelhub
server` process on 127.0.0.1, one keep-alive httpx connection, raw GETs):
  alias:  registry.get("model-00123@champion")
          GET /api/v1/models/model-00123/versions/champion
  search: "name + tag" = every version of the model with that exact name whose
          model carries tag team=t3 (50 rows), the same question as MLflow's
          search_model_versions("name='x' and tags.team='t3'"):
          registry.search(VersionQuery(name="model-00123", tags={"team": "t3"}, all_versions=True))
          GET /api/v1/models?name=model-00123&tag=team=t3&all_versions=true
  search_latest (extra): the same without all_versions (newest version only).

    python bench/bench_lookup_100k.py [--quick] [--rebuild] [--iterations 1000]
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert, select

from benchlib import (
    CACHE_DIR,
    admin_token,
    emit,
    free_port,
    isolate_from_user_env,
    log,
    median,
    modelhub_server_argv,
    rounded,
    run_peer,
    server_process,
    time_calls,
    write_small_safetensors,
)
from modelhub.domain.queries import VersionQuery
from modelhub.services import Services, build_services
from modelhub.services.registry import RegisterRequest
from modelhub.settings import Settings
from modelhub.stores.metadata.sql import VERSION_RECORDS, SqlMetadataStore
from modelhub.stores.metadata.tables import aliases, model_tags, models, version_files, versions

PER_MODEL = 50
TEAMS = 5
TEMPLATES = 4
CHAMPION = 25
QUERY_MODEL = 123
GOAL_INPROC_MS = 1.0
GOAL_REST_MS = 3.0


def model_name(i: int) -> str:
    return f"model-{i:05d}"


def schema_revision() -> str:
    """Alembic head plus a hash of the migrations and tables: pre-release, migrations
    are sometimes edited in place without a new revision."""
    from alembic.script import ScriptDirectory

    from modelhub.stores.metadata import tables
    from modelhub.stores.metadata.migrate import MIGRATIONS

    head = ScriptDirectory(str(MIGRATIONS)).get_current_head() or "none"
    digest = hashlib.sha256()
    for path in [*sorted(MIGRATIONS.rglob("*.py")), Path(tables.__file__)]:
        digest.update(path.read_bytes())
    return f"{head}-{digest.hexdigest()[:12]}"


def fill(services: Services, total: int, scratch: Path) -> None:
    """Register TEMPLATES real versions, then copy their rows into `total` versions."""
    # The services' own database, opened beside them: bulk rows go in below the services.
    store = SqlMetadataStore(services.settings.resolved_database_url)
    for i in range(TEMPLATES):
        path = scratch / f"t{i}" / "model.safetensors"
        path.parent.mkdir(parents=True)
        write_small_safetensors(path, 64 * 1024)
        services.registry.register(RegisterRequest(name="template", type="custom"), path, "bench")

    with store.engine.begin() as conn:
        model_template = conn.execute(select(models).where(models.c.name == "template")).one()
        template_id = model_template.id
        rows = conn.execute(
            select(versions).where(versions.c.model_id == template_id).order_by(versions.c.version)
        ).all()
        templates = [row._asdict() for row in rows]
        files_of: dict[int, list[dict[str, Any]]] = {}
        for row in templates:
            files_of[row["id"]] = [
                f._asdict()
                for f in conn.execute(
                    select(version_files).where(version_files.c.version_id == row["id"])
                )
            ]
        next_model = (
            conn.execute(select(models.c.id).order_by(models.c.id.desc())).scalar() or 0
        ) + 1
        next_version = (
            conn.execute(select(versions.c.id).order_by(versions.c.id.desc())).scalar() or 0
        ) + 1

    n_models = total // PER_MODEL
    now = datetime.now(UTC)
    model_rows: list[dict[str, Any]] = []
    tag_rows: list[dict[str, Any]] = []
    version_rows: list[dict[str, Any]] = []
    file_rows: list[dict[str, Any]] = []
    alias_rows: list[dict[str, Any]] = []
    for m in range(n_models):
        model_id = next_model + m
        model_row = model_template._asdict() | {
            "id": model_id, "name": model_name(m), "description": f"bench model {m}",
            "created_at": now, "updated_at": now,
        }  # fmt: skip
        if "next_version" in model_row:  # the counter that keeps numbers from being reused
            model_row["next_version"] = PER_MODEL + 1
        model_rows.append(model_row)
        tag_rows.append({"model_id": model_id, "key": "team", "value": f"t{m % TEAMS}"})
        for v in range(1, PER_MODEL + 1):
            template = templates[(m * PER_MODEL + v) % TEMPLATES]
            version_id = next_version + m * PER_MODEL + (v - 1)
            version_rows.append(template | {"id": version_id, "model_id": model_id, "version": v})
            file_rows.extend(f | {"version_id": version_id} for f in files_of[template["id"]])
            if v == CHAMPION:
                alias_rows.append(
                    {"model_id": model_id, "alias": "champion", "version_id": version_id}
                )
    log(f"bulk insert: {len(model_rows)} models, {len(version_rows)} versions")
    with store.engine.connect().execution_options(sqlite_write=True) as conn, conn.begin():
        for table, batch in (
            (models, model_rows),
            (model_tags, tag_rows),
            (versions, version_rows),
            (version_files, file_rows),
            (aliases, alias_rows),
        ):
            for start in range(0, len(batch), 10_000):
                conn.execute(insert(table), batch[start : start + 10_000])
    # The bulk rows reference the template blobs, so deleting the templates keeps them.
    services.registry.delete("template", "bench")
    with store.engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
    store.close()


def prepared_home(total: int, rebuild: bool) -> Path:
    home = CACHE_DIR / f"lookup-{schema_revision()}-{total}" / "home"
    done = home.parent / "complete"
    if done.exists() and not rebuild:
        log(f"reusing {home}")
        return home
    shutil.rmtree(home.parent, ignore_errors=True)
    home.mkdir(parents=True)
    services = build_services(Settings(home=home))
    try:
        with tempfile.TemporaryDirectory(prefix="bench-lookup-") as scratch:
            fill(services, total, Path(scratch))
    finally:
        services.close()
    done.write_text("ok\n")
    return home


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 versions, few iterations")
    parser.add_argument("--versions", type=int, default=100_000)
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--rest-iterations", type=int, default=500)
    parser.add_argument("--mlflow-versions", type=int, default=500)
    parser.add_argument("--rebuild", action="store_true", help="refill the cached store")
    parser.add_argument("--no-mlflow", action="store_true", help="skip the reference")
    args = parser.parse_args()
    isolate_from_user_env()
    if args.quick:
        args.versions, args.iterations, args.rest_iterations = 2000, 100, 50
        args.mlflow_versions = 100

    home = prepared_home(args.versions, args.rebuild)
    name = model_name(QUERY_MODEL % (args.versions // PER_MODEL))
    team = f"t{QUERY_MODEL % (args.versions // PER_MODEL) % TEAMS}"
    result: dict[str, Any] = {"bench": "lookup_100k", "versions": args.versions}

    services = build_services(Settings(home=home))
    try:
        registry = services.registry
        hit = registry.get(f"{name}@champion")
        assert hit.version == CHAMPION, hit
        page = registry.search(VersionQuery(name=name, tags={"team": team}, all_versions=True))
        assert page.total == PER_MODEL, page.total
        log(f"in-process: {args.iterations} iterations each")
        alias = time_calls(lambda: registry.get(f"{name}@champion"), args.iterations)
        search = time_calls(
            lambda: registry.search(
                VersionQuery(name=name, tags={"team": team}, all_versions=True)
            ),
            args.iterations,
        )

        def search_unkept() -> object:
            VERSION_RECORDS.forget()
            return registry.search(VersionQuery(name=name, tags={"team": team}, all_versions=True))

        unkept = time_calls(search_unkept, args.iterations)
        latest = time_calls(
            lambda: registry.search(VersionQuery(name=name, tags={"team": team})), args.iterations
        )
    finally:
        services.close()

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with (
        tempfile.TemporaryDirectory(prefix="bench-lookup-log-") as logs,
        server_process(
            modelhub_server_argv(port),
            f"{url}/healthz",
            {"MODELHUB_HOME": str(home)},
            Path(logs) / "server.log",
        ),
        httpx.Client(
            base_url=url,
            timeout=30,
            headers={"authorization": f"Bearer {admin_token(home)}"},
        ) as http,
    ):

        def get(path: str, params: dict[str, str] | None = None) -> None:
            http.get(path, params=params).raise_for_status()

        log(f"REST: {args.rest_iterations} iterations each")
        alias_path = f"/api/v1/models/{name}/versions/champion"
        search_params = {"name": name, "tag": f"team={team}", "all_versions": "true"}
        rest_alias = time_calls(lambda: get(alias_path), args.rest_iterations)
        rest_search = time_calls(lambda: get("/api/v1/models", search_params), args.rest_iterations)

    ms = 1000.0
    result.update(
        alias_inproc_ms=rounded(median(alias) * ms),
        search_inproc_ms=rounded(median(search) * ms),
        alias_rest_ms=rounded(median(rest_alias) * ms),
        search_rest_ms=rounded(median(rest_search) * ms),
        search_latest_inproc_ms=rounded(median(latest) * ms),
        search_unkept_inproc_ms=rounded(median(unkept) * ms),
        search_rows=PER_MODEL,
    )
    if not args.no_mlflow:
        peer = run_peer(
            "mlflow_lookup.py",
            [
                "--versions", str(args.mlflow_versions),
                "--iterations", str(min(args.iterations, 500)),
                "--rest-iterations", str(min(args.rest_iterations, 200)),
            ],
        )  # fmt: skip
        result.update(
            mlflow_versions=peer.get("versions"),
            mlflow_alias_inproc_ms=peer.get("alias_inproc_ms"),
            mlflow_search_inproc_ms=peer.get("search_inproc_ms"),
            mlflow_alias_rest_ms=peer.get("alias_rest_ms"),
            mlflow_search_rest_ms=peer.get("search_rest_ms"),
            mlflow_search_rows=peer.get("search_hits"),
            mlflow_version=peer.get("mlflow_version"),
        )
    inproc_worst = max(result["alias_inproc_ms"], result["search_inproc_ms"])
    rest_worst = max(result["alias_rest_ms"], result["search_rest_ms"])
    result.update(
        goal_inproc_ms=GOAL_INPROC_MS,
        goal_rest_ms=GOAL_REST_MS,
        goal_met_inproc=inproc_worst <= GOAL_INPROC_MS,
        goal_met_rest=rest_worst <= GOAL_REST_MS,
    )
    if args.quick:
        result["quick"] = True
    emit(result)


if __name__ == "__main__":
    main()

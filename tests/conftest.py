"""Fixtures every test area shares: real PostgreSQL and S3-compatible servers.

PostgreSQL tests skip, with the reason, where no server answers (a laptop without
one). CI sets MODELHUB_REQUIRE_POSTGRES=1: then a run that selects any of them and
finds no server stops at once with one line saying so, instead of skipping them.
MODELHUB_TEST_POSTGRES_URL points the tests at another server (default below).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, settings

# Property tests are reproducible and bounded: the same examples on every run, no
# per-example deadline (the machine is shared and noisy), a budget set per test.
settings.register_profile(
    "modelhub",
    derandomize=True,
    deadline=None,
    max_examples=200,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.load_profile("modelhub")

# A COLUMNS inherited from the caller (pytest-xdist's workers set 80) is read once, at
# import, by the CLI's Rich console, which would then ignore the COLUMNS each in-process
# CLI test gives. Without it, the console asks the environment at every print.
os.environ.pop("COLUMNS", None)

PG_ADMIN_URL = os.environ.get(
    "MODELHUB_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
PG_HOST = urlsplit(PG_ADMIN_URL).netloc
REQUIRE_POSTGRES = os.environ.get("MODELHUB_REQUIRE_POSTGRES", "") not in ("", "0")


def postgres_unreachable() -> str | None:
    """Why the PostgreSQL server cannot be reached, or None when it answers."""
    import psycopg

    try:
        psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3).close()
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"PostgreSQL not reachable at {PG_HOST.rpartition('@')[2]}: {reason}"
    return None


def needs_postgres(item: pytest.Item) -> bool:
    fixtures = getattr(item, "fixturenames", ())
    return item.get_closest_marker("postgres") is not None or "pg_url" in fixtures


def pytest_collection_finish(session: pytest.Session) -> None:
    """Under MODELHUB_REQUIRE_POSTGRES, stop before the first test if the server is away."""
    if not REQUIRE_POSTGRES or session.config.option.collectonly:
        return
    if not any(needs_postgres(item) for item in session.items):
        return
    reason = postgres_unreachable()
    if reason is not None:
        pytest.exit(
            f"MODELHUB_REQUIRE_POSTGRES=1 and {reason}", returncode=pytest.ExitCode.TESTS_FAILED
        )


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this test session, dropped at the end."""
    import psycopg

    reason = postgres_unreachable()
    if reason is not None:
        if REQUIRE_POSTGRES:
            pytest.fail(f"MODELHUB_REQUIRE_POSTGRES=1 and {reason}", pytrace=False)
        pytest.skip(reason)
    admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)
    name = f"modelhub_test_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://{PG_HOST}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            admin.execute(f'DROP DATABASE IF EXISTS "{name}"')


@pytest.fixture
def pg_schema_url(pg_url: str) -> Iterator[str]:
    """An empty schema of the session database, selected through the URL's search_path.

    A schema per test is far cheaper than a database per test and just as empty.
    """
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:16]}"
    plain = pg_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{pg_url}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ]
)
def metadata_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A SQLAlchemy URL of an empty metadata database, on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'metadata.db'}"
    return str(request.getfixturevalue("pg_schema_url"))


# -- metadata databases already at the newest schema ---------------------------
# Alembic's fifteen revisions cost seconds per database (about 4 s on PostgreSQL on a
# loaded machine); a store test needs the schema, not its making. The migrations run once
# per session into a template, and each test gets its own copy: a file copy on SQLite,
# CREATE DATABASE ... TEMPLATE on PostgreSQL (about 0.25 s). The migrations themselves
# are tested from an empty database, through `metadata_url`.


def _admin_execute(*statements: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3) as admin:
        for statement in statements:
            admin.execute(statement)


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from modelhub.stores.metadata.sql import SqlMetadataStore

    path = tmp_path_factory.mktemp("migrated-sqlite") / "metadata.db"
    SqlMetadataStore(f"sqlite:///{path}").close()
    return path


@pytest.fixture(scope="session")
def migrated_pg_template(pg_url: str) -> Iterator[str]:
    """The name of a PostgreSQL database at the newest schema, to copy from."""
    from modelhub.stores.metadata.sql import SqlMetadataStore

    name = f"modelhub_template_{uuid.uuid4().hex[:12]}"
    _admin_execute(f'CREATE DATABASE "{name}"')
    try:
        SqlMetadataStore(f"postgresql+psycopg://{PG_HOST}/{name}").close()
        yield name
    finally:
        _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ]
)
def migrated_metadata_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A SQLAlchemy URL of a metadata database of its own, at the newest schema and
    otherwise empty, on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        import sqlite3
        from contextlib import closing

        path = tmp_path / "metadata.db"
        template = request.getfixturevalue("migrated_sqlite")
        with closing(sqlite3.connect(template)) as source, closing(sqlite3.connect(path)) as copy:
            source.backup(copy)
        yield f"sqlite:///{path}"
        return
    template = request.getfixturevalue("migrated_pg_template")
    name = f"modelhub_test_{uuid.uuid4().hex[:12]}"
    _admin_execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}" STRATEGY WAL_LOG')
    try:
        yield f"postgresql+psycopg://{PG_HOST}/{name}"
    finally:
        _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# -- a real S3-compatible server (moto) on loopback ------------------------------

BUCKET = "modelhub-contract"
CREDENTIALS = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"moto server exited with {proc.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"moto server did not listen on 127.0.0.1:{port} in {timeout}s")


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    pytest.importorskip("boto3")
    pytest.importorskip("moto.server")
    port = _free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with open(log, "wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_listening(port, proc)
        endpoint = f"http://127.0.0.1:{port}"
        client = s3_client(endpoint)
        client.create_bucket(Bucket=BUCKET)
        client.close()
        yield endpoint
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def s3_client(endpoint: str) -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **CREDENTIALS)

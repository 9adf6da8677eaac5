"""Optuna's RDB storage in the project's own database (the metadata store's URL).

Optuna creates its tables (`studies`, `trials`, ...) beside ours with its own
`create_all`; none of its names is one of ours. Two things are shared and handled
here:

- `alembic_version` belongs to modelhub's migrations. Optuna reads the same table to
  check its schema version and would find our revision, so its check is skipped
  (`skip_compatibility_check`); Optuna's schema is whatever its `create_all` made.
- On SQLite, Optuna's transactions take the write lock up front (BEGIN IMMEDIATE), as
  the metadata store's do, so a writer waits its turn (busy timeout) instead of
  failing with "database is locked" when a read upgrades to a write.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import create_engine, event, inspect
from sqlalchemy.engine import Engine, make_url

if TYPE_CHECKING:
    from optuna.storages import RDBStorage


def optuna_storage(url: str) -> RDBStorage:
    """An Optuna RDBStorage over the metadata store's database URL (sqlite or postgresql)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # not a line per study made
    parsed = make_url(url)
    kwargs: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        kwargs = {"connect_args": {"check_same_thread": False, "timeout": 30}}
    elif parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
        kwargs = {"pool_pre_ping": True}
    storage = optuna.storages.RDBStorage(
        parsed.render_as_string(hide_password=False),
        engine_kwargs=kwargs,
        skip_compatibility_check=True,
    )
    if parsed.get_backend_name() == "sqlite":
        _write_lock_up_front(storage)
    return storage


def studies_table_probe(url: str) -> Engine:
    """An engine that answers whether Optuna's tables exist yet (`has_studies`), without
    importing Optuna or creating its tables: a server that never tuned never pays for it."""
    return create_engine(url)


def has_studies(probe: Engine) -> bool:
    return inspect(probe).has_table("studies")


def _write_lock_up_front(storage: RDBStorage) -> None:
    engine = storage.engine

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()  # the connections made before the listeners go; new ones get them

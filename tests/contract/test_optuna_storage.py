"""Optuna's RDB storage in the metadata store's own database, on SQLite and PostgreSQL.

The two share `alembic_version`: a study made there must leave modelhub's revision
as it was, and the store must open again afterwards.
"""

from __future__ import annotations

import optuna
from optuna.storages import RDBStorage
from sqlalchemy import create_engine, text

from modelhub.stores.metadata.factory import open_metadata_store
from modelhub.stores.metadata.migrate import HEAD_REVISION
from modelhub.stores.metadata.optuna_storage import optuna_storage


def _revision(url: str) -> str:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            return str(conn.execute(text("SELECT version_num FROM alembic_version")).scalar())
    finally:
        engine.dispose()


def test_a_study_lives_beside_the_metadata_store(metadata_url: str) -> None:
    open_metadata_store(metadata_url).close()
    storage, reread = optuna_storage(metadata_url), optuna_storage(metadata_url)
    try:
        _study_round_trip(metadata_url, storage, reread)
    finally:
        storage.engine.dispose()
        reread.engine.dispose()
    open_metadata_store(metadata_url).close()  # the store still opens on the shared database


def _study_round_trip(url: str, storage: RDBStorage, reread: RDBStorage) -> None:
    study = optuna.create_study(study_name="intents", storage=storage, direction="minimize")
    study.set_user_attr("modelhub", {"trials": 3, "status": "running"})
    trial = study.ask({"lr": optuna.distributions.FloatDistribution(1e-4, 1.0, log=True)})
    trial.report(0.7, 1)
    trial.set_user_attr("run_id", 12)
    study.tell(trial, 0.5)

    again = optuna.load_study(study_name="intents", storage=reread)
    assert again.user_attrs["modelhub"] == {"trials": 3, "status": "running"}
    (kept,) = again.get_trials()
    assert (kept.value, kept.user_attrs["run_id"], kept.intermediate_values) == (0.5, 12, {1: 0.7})
    assert _revision(url) == HEAD_REVISION

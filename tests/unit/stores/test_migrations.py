from __future__ import annotations

from pathlib import Path

from alembic.script import ScriptDirectory

from modelhub.stores.metadata.engine import make_engine
from modelhub.stores.metadata.migrate import (
    HEAD_REVISION,
    alembic_config,
    current_revision,
    upgrade,
)


def test_head_constant_matches_the_migration_scripts(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    script = ScriptDirectory.from_config(alembic_config(engine))
    assert script.get_current_head() == HEAD_REVISION


def test_upgrade_is_idempotent(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    assert current_revision(engine) is None
    upgrade(engine)
    upgrade(engine)
    assert current_revision(engine) == HEAD_REVISION

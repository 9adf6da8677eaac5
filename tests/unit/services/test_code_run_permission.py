"""Running a user's code is `code.run`, checked on saving a script pipeline and on starting it."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelhub.domain.auth import Caller, Role
from modelhub.errors import InvalidInput, PermissionDenied
from modelhub.services import Services, build_services
from modelhub.settings import Settings

SCRIPT_SPEC = (
    "name: scripted\ntype: pre_training\ntrainer: script\ndatasets: [points]\n"
    "script: {path: train.py}\nresult_model: {name: scripted}\n"
)
SCRIPT = {"train.py": b"def train(ctx):\n    return {}\n"}
TABULAR_SPEC = (
    "name: tabular\ntype: pre_training\ntrainer: tabular_classifier\ndatasets: [points]\n"
    "result_model: {name: tabular}\n"
)
ADMIN = Caller(name="root", role=Role.ADMIN)
DEV = Caller(name="dev", role=Role.DEVELOPER)
SCIENTIST = Caller(name="sci", role=Role.DATA_SCIENTIST)


@pytest.fixture(autouse=True)
def _points(services: Services, tmp_path: Path) -> None:
    add_points(services, tmp_path)


def add_points(services: Services, tmp_path: Path) -> None:
    csv = tmp_path / "points.csv"
    csv.write_text("a,label\n" + "".join(f"{i},{i % 2}\n" for i in range(20)))
    services.datasets.register(ADMIN, csv, "points")


def test_a_developer_may_not_save_a_script_pipeline(services: Services) -> None:
    with pytest.raises(PermissionDenied, match=r"dev \(developer\) may not code\.run"):
        services.training.create_pipeline(DEV, SCRIPT_SPEC, SCRIPT)
    assert services.training.list_pipelines(ADMIN) == []  # nothing half-saved
    services.training.create_pipeline(DEV, TABULAR_SPEC)  # built-in trainers stay open


def test_a_developer_may_not_start_someone_elses_script_pipeline(services: Services) -> None:
    services.training.create_pipeline(SCIENTIST, SCRIPT_SPEC, SCRIPT)
    with pytest.raises(PermissionDenied, match=r"may not code\.run"):
        services.training.start(DEV, "scripted")
    assert services.training.list_runs(ADMIN) == []
    assert services.training.start(SCIENTIST, "scripted").created_by == "sci"


def test_code_runners_is_configurable(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "own", code_runners="admin,data_scientist,developer")
    assert settings.code_runners == [Role.ADMIN, Role.DATA_SCIENTIST, Role.DEVELOPER]
    services = build_services(settings)
    try:
        add_points(services, tmp_path)
        services.training.create_pipeline(DEV, SCRIPT_SPEC, SCRIPT)
        assert services.training.start(DEV, "scripted").created_by == "dev"
    finally:
        services.close()


def test_only_the_runs_own_output_folder_is_registered(services: Services, tmp_path: Path) -> None:
    """result.json lies in a folder the script writes: the output_dir it names is not trusted."""
    services.training.create_pipeline(SCIENTIST, SCRIPT_SPEC, SCRIPT)
    run = services.training.start(SCIENTIST, "scripted")
    elsewhere = tmp_path / "home"  # the server's home, say, with its token and key
    with pytest.raises(InvalidInput, match="the run's output must be the folder"):
        services.training.register_result(run, elsewhere, {"loss": 1.0})
    assert services.registry.model_owner("scripted") is None

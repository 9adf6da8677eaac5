"""Executor plugins: one construction interface (a factory taking the settings), over
real dist-info folders on sys.path."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelhub.errors import Unavailable
from modelhub.plugins import PluginStatus, Registry
from modelhub.settings import Settings
from modelhub.training.executor import (
    EXECUTORS,
    ExecutorFactory,
    LocalExecutor,
    executor_factory,
    open_executor,
)
from tests.plugin_dists import executor_plugins


@pytest.fixture
def executors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Registry[ExecutorFactory]:
    """A fresh `modelhub.executors` registry that sees the test plugins (the process's
    own EXECUTORS read the entry points once, before they were on sys.path)."""
    root = executor_plugins(tmp_path / "site", prefix="mhu_exec")
    monkeypatch.syspath_prepend(str(root))
    return Registry(
        "executors", executor_factory, [("local", "modelhub.training.executor:open_local", "")]
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", train_warm_workers=0)


def test_a_plugin_factory_builds_an_executor_from_the_settings(
    executors: Registry[ExecutorFactory], settings: Settings
) -> None:
    executor = open_executor("handover", settings, executors)
    assert executor is not None
    try:
        assert type(executor).__name__ == "Handover"
        assert callable(executor.start) and callable(executor.close)
    finally:
        executor.close()
    assert open_executor("unset", settings, executors) is None  # not set up here


def test_the_built_in_local_engine_comes_through_the_same_factory(settings: Settings) -> None:
    executor = open_executor("local", settings, EXECUTORS)
    try:
        assert isinstance(executor, LocalExecutor) and executor.warm == 0
    finally:
        assert executor is not None
        executor.close()


def test_a_failing_factory_is_unavailable_naming_the_engine_and_its_error(
    executors: Registry[ExecutorFactory], settings: Settings
) -> None:
    with pytest.raises(
        Unavailable,
        match="broken_factory executor could not be built: RuntimeError: no cluster here",
    ):
        open_executor("broken_factory", settings, executors)
    with pytest.raises(
        Unavailable,
        match=r"hollow_executor executor factory returned .*lacks "
        r"start\(\), close\(\)",
    ):
        open_executor("hollow_executor", settings, executors)


def test_a_class_instead_of_a_factory_fails_to_load_with_the_reason(
    executors: Registry[ExecutorFactory], settings: Settings
) -> None:
    with pytest.raises(Unavailable, match="not an executor factory"):
        open_executor("class_executor", settings, executors)
    info = {i.name: i for i in executors.describe()}
    assert info["class_executor"].status is PluginStatus.FAILED
    assert info["handover"].status is PluginStatus.LOADED
    assert info["handover"].package == "mhu_exec-handover"

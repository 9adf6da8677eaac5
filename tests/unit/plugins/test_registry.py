"""The extension-point registry over real dist-info folders on sys.path."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

from modelhub.errors import NotFound, Unavailable, UnsafeModel
from modelhub.plugins import PluginStatus, Registry, needs
from tests.plugin_dists import write_dist, write_module


class Greeter:
    def greet(self) -> str:
        return "built-in"


greeter = Greeter()


def as_greeter(obj: object) -> Greeter:
    needs(obj, "greet")
    return obj  # type: ignore[return-value]


def registry(group: str) -> Registry[Greeter]:
    return Registry(group, as_greeter, [("plain", f"{__name__}:greeter", "the built-in one")])


@pytest.fixture
def dists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    return root


GOOD = (
    "class G:\n"
    "    '''Says hello from a plugin.'''\n"
    "    def greet(self):\n"
    "        return 'plugin'\n"
    "g = G()\n"
)


def test_a_plugin_is_found_and_loaded_only_when_asked(dists: Path) -> None:
    write_module(dists, "mhu_lazy", GOOD)
    write_dist(dists, "mhu-lazy", "1.2", {"modelhub.t_lazy": {"hello": "mhu_lazy:g"}})
    found = registry("t_lazy")
    assert found.names() == ["plain", "hello"]
    assert "mhu_lazy" not in sys.modules  # listing names imports nothing
    assert found.get("hello").greet() == "plugin"
    assert "mhu_lazy" in sys.modules
    info = {i.name: i for i in found.describe()}
    assert (info["hello"].package, info["hello"].version, info["hello"].status) == (
        "mhu-lazy",
        "1.2",
        PluginStatus.LOADED,
    )
    assert info["hello"].adds == "Says hello from a plugin."
    assert info["plain"].builtin and info["plain"].adds == "the built-in one"


def test_a_plugin_that_fails_is_reported_once_and_others_still_load(
    dists: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_module(dists, "mhu_boom", "raise ImportError('no such wheel')\n")
    write_module(dists, "mhu_empty", "thing = 42\n")
    write_module(dists, "mhu_fine", GOOD)
    write_dist(dists, "mhu-boom", "1", {"modelhub.t_fail": {"boom": "mhu_boom:g"}})
    write_dist(dists, "mhu-empty", "1", {"modelhub.t_fail": {"empty": "mhu_empty:thing"}})
    write_dist(dists, "mhu-fine", "1", {"modelhub.t_fail": {"fine": "mhu_fine:g"}})
    found = registry("t_fail")
    with caplog.at_level(logging.WARNING, logger="modelhub.plugins"):
        loaded = [name for name, _, _ in found.loaded()]
        found.loaded()
        found.describe()
        with pytest.raises(Unavailable, match="no such wheel"):
            found.get("boom")
    assert loaded == ["plain", "fine"]
    status = {i.name: (i.status, i.error) for i in found.describe()}
    assert status["boom"] == (PluginStatus.FAILED, "ImportError: no such wheel")
    assert status["empty"][0] is PluginStatus.FAILED
    assert "lacks greet()" in str(status["empty"][1])
    assert [r.getMessage().count("mhu-boom") for r in caplog.records].count(1) == 1
    with pytest.raises(NotFound, match="installed: plain, boom, empty, fine"):
        found.get("nobody")


def test_a_plugin_never_shadows_a_built_in_or_another_plugin(dists: Path) -> None:
    write_module(dists, "mhu_shadow", GOOD)
    write_dist(dists, "mhu-shadow", "1", {"modelhub.t_clash": {"plain": "mhu_shadow:g"}})
    write_dist(dists, "mhu-twin-a", "1", {"modelhub.t_clash": {"twin": "mhu_shadow:g"}})
    write_dist(dists, "mhu-twin-b", "1", {"modelhub.t_clash": {"twin": "mhu_shadow:g"}})
    found = registry("t_clash")
    assert found.get("plain").greet() == "built-in"
    assert found.names() == ["plain"]
    refused = [(i.package, i.status) for i in found.describe() if not i.builtin]
    assert refused == [
        ("mhu-shadow", PluginStatus.REFUSED),
        ("mhu-twin-a", PluginStatus.REFUSED),
        ("mhu-twin-b", PluginStatus.REFUSED),
    ]
    assert "mhu_shadow" not in sys.modules  # a refused plugin is never imported
    with pytest.raises(NotFound):
        found.get("twin")


def test_an_untrusted_pickle_never_reaches_a_runtime_plugin(tmp_path: Path) -> None:
    """modelhub refuses before the plugin's load runs, whatever the plugin would do."""
    pytest.importorskip("modelhub_sklearn", reason="the sample plugin is not installed")
    from modelhub.serving.runtimes import load_runtime

    folder = tmp_path / "version"
    folder.mkdir()
    (folder / "model.pkl").write_bytes(b"\x80\x04N.")  # pickle of None
    with pytest.raises(UnsafeModel, match=r"runtime plugin 'sklearn'.*not trusted"):
        load_runtime(folder, trusted=False)

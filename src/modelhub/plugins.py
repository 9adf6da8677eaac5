"""Extension points: parts found by name, built-in ones and installed plugins alike.

Each extension point is one `Registry`: a Python entry-point group
(`modelhub.runtimes`, `modelhub.trainers`, `modelhub.executors`,
`modelhub.inspectors`, `modelhub.artifact_stores`) plus the built-in parts, which are
registered here in code as "module:attribute" references and go through the same
loading and the same interface check as a plugin. Built-ins live in code rather
than in our own pyproject's entry points so that what modelhub itself offers never
depends on how (or whether) the package metadata was reinstalled.

Nothing is imported until it is asked for: `get` loads one part, `loaded` or
`describe` load all of them. A plugin that fails to import, or whose object lacks
the interface, is recorded as failed with the error (logged once) and never breaks
the others; a plugin whose name is a built-in's, or another plugin's, is refused,
so an installed package can never silently take a built-in's place.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from importlib import metadata
from typing import Generic, TypeVar

from modelhub.errors import NotFound, Unavailable

log = logging.getLogger(__name__)

T = TypeVar("T")

GROUP_PREFIX = "modelhub."


class PluginStatus(StrEnum):
    LOADED = "loaded"
    NOT_LOADED = "not_loaded"  # found, not asked for yet
    FAILED = "failed"  # import failed or the object lacks the interface
    REFUSED = "refused"  # its name collides with a built-in's or another plugin's


@dataclass(frozen=True)
class PluginInfo:
    """One part of one extension point, as `plugins list` shows it."""

    name: str
    group: str  # the entry-point group, e.g. "modelhub.runtimes"
    package: str  # the distribution that provides it ("modelhub" for built-ins)
    version: str
    builtin: bool
    adds: str  # one line: what it adds (the object's `description`, else its docstring)
    status: PluginStatus
    error: str | None = None
    target: str = ""  # "module:attribute"


@dataclass
class _Entry:
    name: str
    target: str
    package: str
    version: str
    builtin: bool
    status: PluginStatus = PluginStatus.NOT_LOADED
    error: str | None = None
    adds: str = ""
    obj: object = None


def _one_line(obj: object) -> str:
    text = getattr(obj, "description", None)
    if not isinstance(text, str) or not text.strip():
        text = getattr(obj, "__doc__", None) or ""
    lines = text.strip().splitlines()
    return lines[0].strip()[:200] if lines else ""


def _import(target: str) -> object:
    module_name, _, attribute = target.partition(":")
    obj: object = importlib.import_module(module_name)
    for part in attribute.split(".") if attribute else ():
        obj = getattr(obj, part)
    return obj


def _modelhub_version() -> str:
    try:
        return metadata.version("modelhub")
    except metadata.PackageNotFoundError:
        return "0"


class Registry(Generic[T]):
    """The parts of one extension point, by name.

    `check(obj)` turns a loaded object into the interface `T`, raising TypeError (with
    a message naming what is missing) when it does not implement it. `builtins` are
    (name, "module:attribute", what it adds) triples, in the order they are tried.
    """

    def __init__(
        self,
        group: str,
        check: Callable[[object], T],
        builtins: Iterable[tuple[str, str, str]],
    ) -> None:
        self.group = GROUP_PREFIX + group
        self._check = check
        self._builtins = list(builtins)
        self._entries: dict[str, _Entry] | None = None
        self._refused: list[_Entry] = []
        self._lock = threading.RLock()

    # -- discovery ------------------------------------------------------------

    def _discover(self) -> dict[str, _Entry]:
        with self._lock:
            if self._entries is not None:
                return self._entries
            version = _modelhub_version()
            entries = {
                name: _Entry(name, target, "modelhub", version, builtin=True, adds=adds)
                for name, target, adds in self._builtins
            }
            found: dict[str, list[_Entry]] = {}
            for ep in metadata.entry_points(group=self.group):
                dist = ep.dist
                package = dist.metadata["Name"] if dist is not None else "?"
                entry = _Entry(
                    ep.name, ep.value, str(package), dist.version if dist else "?", builtin=False
                )
                found.setdefault(ep.name, []).append(entry)
            refused: list[_Entry] = []
            for name, holders in sorted(found.items()):
                if name in entries:
                    why = f"refused: {name!r} is a built-in {self.group} name"
                elif len(holders) > 1:
                    packages = ", ".join(sorted(e.package for e in holders))
                    why = f"refused: {len(holders)} packages claim {name!r} ({packages})"
                else:
                    entries[name] = holders[0]
                    continue
                for entry in sorted(holders, key=lambda e: e.package):
                    entry.status = PluginStatus.REFUSED
                    entry.error = why
                    self._report(entry)
                    refused.append(entry)
            self._refused = refused
            self._entries = entries
            return entries

    def _report(self, entry: _Entry) -> None:
        log.warning(
            "plugin %s %r from %s %s: %s",
            self.group,
            entry.name,
            entry.package,
            entry.version,
            entry.error,
        )

    def _load(self, entry: _Entry) -> T | None:
        with self._lock:
            if entry.status is PluginStatus.NOT_LOADED:
                try:
                    obj = _import(entry.target)
                    entry.obj = self._check(obj)
                    entry.adds = entry.adds or _one_line(obj)
                    entry.status = PluginStatus.LOADED
                except Exception as exc:  # a plugin's import may raise anything
                    entry.status = PluginStatus.FAILED
                    entry.error = f"{type(exc).__name__}: {exc}"[:500]
                    self._report(entry)
            if entry.status is PluginStatus.LOADED:
                return entry.obj  # type: ignore[return-value]
            return None

    # -- use ------------------------------------------------------------------

    def names(self) -> list[str]:
        """Every usable name: built-ins first, in their order, then plugins by name.
        Imports nothing."""
        entries = self._discover()
        builtin = [e.name for e in entries.values() if e.builtin]
        return builtin + sorted(e.name for e in entries.values() if not e.builtin)

    def is_builtin(self, name: str) -> bool:
        entry = self._discover().get(name)
        return entry is not None and entry.builtin

    def get(self, name: str) -> T:
        """The part called `name`, loaded on first use.

        Raises NotFound for a name nobody provides (the message lists the names), and
        Unavailable for a plugin that failed to load (the message carries its error).
        """
        entry = self._discover().get(name)
        if entry is None:
            known = ", ".join(self.names()) or "none"
            raise NotFound(
                f"no {self.group} part named {name!r} (installed: {known})",
                {"group": self.group, "name": name},
            )
        obj = self._load(entry)
        if obj is None:
            raise Unavailable(
                f"{self.group} plugin {name!r} from {entry.package} failed to load: {entry.error}",
                {"group": self.group, "name": name, "package": entry.package},
            )
        return obj

    def loaded(self) -> list[tuple[str, T, bool]]:
        """(name, part, builtin) for every part that loads, in `names` order; failed
        plugins are left out (and reported once)."""
        entries = self._discover()
        out = []
        for name in self.names():
            obj = self._load(entries[name])
            if obj is not None:
                out.append((name, obj, entries[name].builtin))
        return out

    def describe(self) -> list[PluginInfo]:
        """Every part, refused plugins included. Plugins are loaded so that their status
        is known; built-ins are not (a trainer imports torch), and show as loaded once
        something has used them."""
        entries = self._discover()
        for entry in entries.values():
            if not entry.builtin:
                self._load(entry)
        return [
            PluginInfo(
                name=e.name,
                group=self.group,
                package=e.package,
                version=e.version,
                builtin=e.builtin,
                adds=e.adds,
                status=e.status,
                error=e.error,
                target=e.target,
            )
            for e in [*(entries[n] for n in self.names()), *self._refused]
        ]


def needs(obj: object, *methods: str) -> None:
    """Raise TypeError unless `obj` has each callable in `methods`."""
    missing = [m for m in methods if not callable(getattr(obj, m, None))]
    if missing:
        what = getattr(obj, "__name__", None) or type(obj).__name__
        raise TypeError(
            f"{what} does not implement the interface: it lacks "
            + ", ".join(f"{m}()" for m in missing)
        )

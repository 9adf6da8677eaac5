"""What `plugins list` shows: one part of one extension point, built-in or installed."""

from __future__ import annotations

from enum import StrEnum

from modelhub.domain.records import Record

EXTENSION_POINTS = (
    "modelhub.runtimes",
    "modelhub.trainers",
    "modelhub.executors",
    "modelhub.inspectors",
    "modelhub.artifact_stores",
)


class PluginState(StrEnum):
    LOADED = "loaded"
    NOT_LOADED = "not_loaded"
    FAILED = "failed"  # it would not import, or its object lacks the interface
    REFUSED = "refused"  # its name is a built-in's or another plugin's


class Plugin(Record):
    name: str
    group: str  # the entry-point group, e.g. "modelhub.runtimes"
    package: str  # the distribution that provides it ("modelhub" for built-ins)
    version: str
    builtin: bool
    adds: str  # one line: what it adds
    status: PluginState
    error: str | None = None  # why it failed or was refused

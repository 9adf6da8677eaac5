"""A version's lineage graph: the records gathered here, the graph built by the engine."""

from __future__ import annotations

from modelhub.domain.auth import Action, Caller
from modelhub.domain.deployments import Deployment
from modelhub.domain.lineage import LineageGraph
from modelhub.domain.names import parse_ref
from modelhub.domain.records import ModelVersion
from modelhub.errors import InvalidInput, NotFound
from modelhub.governance.lineage_graph import build_lineage, names_version
from modelhub.services.auth import AuthService
from modelhub.stores.metadata.base import MetadataStore


class LineageService:
    def __init__(self, metadata: MetadataStore, auth: AuthService) -> None:
        self.metadata = metadata
        self.auth = auth

    def graph_for(self, caller: Caller, ref: str) -> LineageGraph:
        self.auth.authorize(caller, Action.GOVERNANCE_READ)
        return self.graph(ref)

    def graph(self, ref: str) -> LineageGraph:
        """Upstream and downstream of the version `ref` names; NotFound when there is none."""
        root = self.metadata.resolve(parse_ref(ref))
        # Downstream needs every version that names another: read once per graph.
        everything = [
            v
            for model in self.metadata.list_models(include_archived=True)
            for v in self.metadata.list_versions(model.name)
        ]
        deployments: dict[str, list[Deployment]] = {}

        def derived(version: ModelVersion) -> list[ModelVersion]:
            return [v for v in everything if names_version(v, version)]

        def serving(version: ModelVersion) -> list[Deployment]:
            if version.name not in deployments:
                deployments[version.name] = self.metadata.list_deployments(model=version.name)
            return deployments[version.name]

        return build_lineage(root, self._resolve, derived, serving)

    def upstream_for(self, caller: Caller, ref: str) -> LineageGraph:
        """What a version came from (bases, runs, pipelines, datasets) and what serves it,
        without what came of it: a few queries per ancestor, within the walk's bounds,
        where the downstream side of `graph` reads the whole registry (a page that shows
        a version must not grow with the registry)."""
        self.auth.authorize(caller, Action.GOVERNANCE_READ)
        root = self.metadata.resolve(parse_ref(ref))
        return build_lineage(
            root,
            self._resolve,
            lambda _version: [],
            lambda version: self.metadata.list_deployments(model=version.name),
        )

    def _resolve(self, ref: str) -> ModelVersion | None:
        """A stored reference, or None when it names nothing (deleted, or never valid)."""
        try:
            return self.metadata.resolve(parse_ref(ref))
        except (NotFound, InvalidInput):
            return None

"""Drift: each version's reference profile, and live data judged against it.

A reference is a profile (`monitoring/drift_profile.py`) kept as a content-addressed
artifact, with one row per model version in the metadata store naming its digest,
where it came from, its rows and columns. Trained versions get one from their
training dataset as their run registers them (`profile_trained`, hooked into
TrainingService); any version gets one from a file (`set_reference`). A failure to
profile a trained version's dataset does not fail the registration: it is logged
and recorded as a reference in state `failed` with the reason.

Live data comes from the prediction log (`PredictionService.inputs`/`outputs`);
`compare` judges columns given directly.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

from modelhub.domain.auth import Action, Caller
from modelhub.domain.drift import DriftReference, DriftReport, ReferenceStatus
from modelhub.domain.enums import DatasetFormat
from modelhub.domain.monitoring import Window, window_since
from modelhub.domain.names import check_model_name
from modelhub.domain.records import ModelVersion
from modelhub.errors import InvalidInput, ModelhubError, NotFound, Unavailable
from modelhub.monitoring.drift import DriftConfig, compare
from modelhub.monitoring.drift_profile import (
    Profile,
    ProfileConfig,
    build_profile,
    profile_from_json,
    profile_to_json,
)
from modelhub.services.auth import AuthService
from modelhub.services.monitoring.drift_columns import (
    Columns,
    expected_columns,
    live_columns,
    named_for_profile,
    read_columns,
)
from modelhub.services.monitoring.predictions import PredictionService
from modelhub.services.uploads import UploadService
from modelhub.settings import Settings
from modelhub.stores.artifacts.base import ArtifactStore
from modelhub.stores.metadata.base import AuditDraft, MetadataStore
from modelhub.stores.metadata.base_drift import ReferenceDraft

log = logging.getLogger(__name__)

PROFILES_CACHED = 32  # parsed profiles kept by digest: a report checks the same ones again


class DriftService:
    def __init__(
        self,
        settings: Settings,
        metadata: MetadataStore,
        artifacts: ArtifactStore,
        uploads: UploadService,
        auth: AuthService,
        live: PredictionService | None = None,
    ) -> None:
        self.metadata = metadata
        self.artifacts = artifacts
        self.uploads = uploads
        self.auth = auth
        self.live = live
        self._profiles: OrderedDict[str, Profile] = OrderedDict()
        self._profiles_lock = threading.Lock()
        self.max_rows = settings.drift_max_reference_rows
        self.profile_config = ProfileConfig(
            sample_size=settings.drift_sample_size, vector_sample=settings.drift_vector_sample
        )
        self.config = DriftConfig(
            p_value=settings.drift_p_value,
            distance=settings.drift_distance,
            large_sample=settings.drift_large_sample,
            min_live_rows=settings.drift_min_live_rows,
            vector_sample=settings.drift_vector_sample,
            permutations=settings.drift_permutations,
        )

    # -- references ---------------------------------------------------------------

    def set_reference(
        self,
        caller: Caller,
        model: str,
        version: int,
        path: Path,
        format: str | None = None,
        source: str | None = None,
    ) -> DriftReference:
        """Profile a data file as the version's reference, replacing any earlier one.

        The file's columns must be the version's inputs (and may add its outputs):
        InvalidInput names the missing and unexpected ones, and nothing is stored.
        """
        self.auth.authorize_owned(
            caller, Action.MODELS_UPDATE, self.metadata.model_owner(check_model_name(model))
        )
        target = self._version(model, version)
        what = source or path.name
        columns = read_columns(path, format, self.max_rows)
        named, roles = named_for_profile(columns, expected_columns(target), what)
        return self._store(target, named, roles, what, caller.name)

    def set_reference_upload(
        self, caller: Caller, model: str, version: int, upload_id: str, format: str | None = None
    ) -> DriftReference:
        with self.uploads.consume(upload_id, caller.name) as (path, _):
            if not path.is_file():
                raise InvalidInput("a drift reference is one file", {"upload_id": upload_id})
            return self.set_reference(caller, model, version, path, format, path.name)

    def reference(self, caller: Caller, model: str, version: int) -> DriftReference:
        self.auth.authorize(caller, Action.MODELS_READ)
        return self.metadata.get_drift_reference(check_model_name(model), version)

    def profile_trained(self, version: ModelVersion, actor: str) -> DriftReference | None:
        """The reference of a version a run just registered, from its training data.

        Never raises: a failure is logged and recorded as a `failed` reference (so a
        person sees why there is none), and the registration stands.
        """
        if not version.lineage.dataset_versions:
            return None
        source = ", ".join(version.lineage.dataset_versions)
        try:
            columns = self._training_columns(version)
            named, roles = named_for_profile(
                columns, expected_columns(version), f"dataset {source}", training=True
            )
            return self._store(version, named, roles, source, actor)
        except Exception as exc:
            reason = exc.message if isinstance(exc, ModelhubError) else repr(exc)
            log.warning("no drift reference for %s@%s: %s", version.name, version.version, reason)
            draft = ReferenceDraft(
                model=version.name,
                version=version.version,
                status=ReferenceStatus.FAILED,
                source=source,
                created_by=actor,
                error=reason,
            )
            audit = AuditDraft(
                actor, "drift.reference_failed", f"{version.name}@{version.version}",
                {"source": source, "error": reason},
            )  # fmt: skip
            try:
                return self.metadata.put_drift_reference(draft, audit)
            except Exception:
                log.exception("could not record the failed drift reference")
                return None

    def _training_columns(self, version: ModelVersion) -> Columns:
        parts: list[Columns] = []
        for ref in version.lineage.dataset_versions:
            name, _, number = ref.partition("@")
            dataset = self.metadata.get_dataset(name, int(number) if number else None)
            with self.artifacts.local_path(dataset.digest) as path:
                parts.append(read_columns(path, DatasetFormat(dataset.format).value, self.max_rows))
        shared = set.intersection(*(set(p) for p in parts))
        return {
            name: np.concatenate([p[name] for p in parts]) for name in parts[0] if name in shared
        }

    def _store(
        self,
        version: ModelVersion,
        columns: Columns,
        roles: dict[str, str],
        source: str,
        actor: str,
    ) -> DriftReference:
        profile = build_profile(columns, roles, self.profile_config)
        blob = self.artifacts.put_stream(iter([profile_to_json(profile)]))
        draft = ReferenceDraft(
            model=version.name,
            version=version.version,
            status=ReferenceStatus.READY,
            source=source,
            created_by=actor,
            digest=blob.digest,
            rows=profile.rows,
            columns=list(columns),
        )
        audit = AuditDraft(
            actor, "drift.reference", f"{version.name}@{version.version}",
            {"source": source, "digest": blob.digest, "rows": profile.rows},
        )  # fmt: skip
        try:
            return self.metadata.put_drift_reference(draft, audit)
        except BaseException:
            if blob.created and blob.digest not in self.metadata.referenced_digests():
                self.artifacts.delete(blob.digest)
            raise

    # -- checks ---------------------------------------------------------------------

    def check(self, model: str, version: int, window: Window) -> DriftReport:
        """The version's logged requests in `window` against its reference."""
        target = self._version(model, version)
        reference, profile = self._profile(model, version)
        if self.live is None:
            raise Unavailable("drift over live traffic needs the prediction log, absent here")
        expected = expected_columns(target)
        live = live_columns(
            self.live.inputs(model, version, window),
            self.live.outputs(model, version, window),
            expected,
        )
        return self._report(target, reference, profile, live, window)

    def compare(self, model: str, version: int, columns: Columns) -> DriftReport:
        """Columns given directly (a file of recent data) against the reference."""
        target = self._version(model, version)
        reference, profile = self._profile(model, version)
        named, _ = named_for_profile(columns, expected_columns(target), "the data")
        return self._report(target, reference, profile, named, None)

    def drift(self, caller: Caller, model: str, version: int, since: str = "24h") -> DriftReport:
        self.auth.authorize(caller, Action.MODELS_READ)
        return self.check(check_model_name(model), version, window_since(since))

    def compare_file(
        self, caller: Caller, model: str, version: int, path: Path, format: str | None = None
    ) -> DriftReport:
        self.auth.authorize(caller, Action.MODELS_READ)
        return self.compare(
            check_model_name(model), version, read_columns(path, format, self.max_rows)
        )

    def compare_upload(
        self, caller: Caller, model: str, version: int, upload_id: str, format: str | None = None
    ) -> DriftReport:
        with self.uploads.consume(upload_id, caller.name) as (path, _):
            if not path.is_file():
                raise InvalidInput("live data is one file", {"upload_id": upload_id})
            return self.compare_file(caller, model, version, path, format)

    def _version(self, model: str, version: int) -> ModelVersion:
        from modelhub.domain.names import ModelRef

        return self.metadata.resolve(ModelRef(check_model_name(model), str(version)))

    def _profile(self, model: str, version: int) -> tuple[DriftReference, Profile]:
        reference = self.metadata.get_drift_reference(model, version)
        if reference.status is not ReferenceStatus.READY or reference.digest is None:
            raise NotFound(
                f"{model}@{version} has no usable drift reference: {reference.error}; set one "
                f"with `modelhub drift reference {model}@{version} --data FILE`",
                {"model": model, "version": version, "error": reference.error},
            )
        return reference, self._load_profile(reference.digest)

    def _load_profile(self, digest: str) -> Profile:
        """A profile by digest; its bytes never change, so a parsed one is kept."""
        with self._profiles_lock:
            if digest in self._profiles:
                self._profiles.move_to_end(digest)
                return self._profiles[digest]
        profile = profile_from_json(b"".join(self.artifacts.open_chunks(digest)))
        with self._profiles_lock:
            self._profiles[digest] = profile
            while len(self._profiles) > PROFILES_CACHED:
                self._profiles.popitem(last=False)
        return profile

    def _report(
        self,
        version: ModelVersion,
        reference: DriftReference,
        profile: Profile,
        live: Columns,
        window: Window | None,
    ) -> DriftReport:
        result = compare(profile, live, self.config)
        return DriftReport(
            model=version.name,
            version=version.version,
            reference=reference.source,
            window_start=window.start if window else None,
            window_end=window.end if window else None,
            live_rows=result.live_rows,
            features=result.verdicts,
            drifted=bool(result.drifted_features),
            drifted_features=result.drifted_features,
            share_drifted=result.share_drifted,
            skipped=result.skipped,
        )

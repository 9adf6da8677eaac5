"""A run's inputs come out of the artifact store verified, as private copies."""

from __future__ import annotations

from pathlib import Path

from modelhub.domain.runs import RunStatus
from tests.integration.training_engine import ADMIN, engine, finished, tabular_spec, write_blobs
from tests.stores import stores_of


def test_a_corrupted_dataset_blob_fails_the_run_and_never_reaches_it(tmp_path: Path) -> None:
    with engine(tmp_path) as services:
        source = write_blobs(tmp_path / "blobs.csv")
        dataset = services.datasets.register(ADMIN, source, "blobs")
        genuine = source.read_bytes()
        tampered = genuine.replace(b",1\n", b",0\n", 5)  # still a valid CSV: wrong labels
        with stores_of(services) as stores, stores.artifacts.local_path(dataset.digest) as blob:
            blob.chmod(0o644)
            blob.write_bytes(tampered)
        services.training.create_pipeline(ADMIN, tabular_spec("p"))
        run = services.training.start(ADMIN, "p")

        done = finished(services, run.id, timeout=60, scheduler=services.training.build_scheduler())

        assert done.status is RunStatus.FAILED and done.error_code == "integrity_error"
        assert dataset.digest in (done.error or "")
        run_dir = services.training.run_dir(run.id)
        leftovers = [p for p in run_dir.rglob("*") if p.is_file()]
        assert all(p.read_bytes() != tampered for p in leftovers)
        assert not (run_dir / "data" / "blobs.csv").exists()

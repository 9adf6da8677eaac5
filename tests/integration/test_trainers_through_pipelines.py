"""Each built-in trainer as a pipeline: trained by the scheduler, registered, reloaded.

The versions come back out of the registry and predict (or generate) exactly what
the run's own output does; fine-tuning starts from a registered version and says so
in its lineage.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelhub.domain.runs import RunStatus
from modelhub.services import Services
from modelhub.training.trainers import char_lm, text_classifier
from tests.integration.training_engine import ADMIN, engine, finished
from tests.unit.training.test_text_classifier import HELD_OUT, flat, intents_file

LINES = ["the persona answers kindly and briefly.", "she remembers names and thanks people."] * 60


def _train(services: Services, spec: str) -> int:
    services.training.create_pipeline(ADMIN, spec)
    name = spec.split("\n", 1)[0].removeprefix("name: ").strip()
    run = services.training.start(ADMIN, name)
    done = finished(services, run.id, timeout=300)
    assert done.status is RunStatus.COMPLETED, done.error
    assert done.result_version is not None
    return done.id


def test_text_classifier_learns_intents_then_fine_tunes_from_its_version(
    tmp_path: Path,
) -> None:
    with engine(tmp_path, train_warm_workers=1) as services:
        services.datasets.register(ADMIN, intents_file(tmp_path / "intents.jsonl"), "intents")
        services.training.start_scheduler()
        first = _train(
            services,
            "name: intents-head\ntype: pre_training\ntrainer: text_classifier\n"
            "datasets: [intents]\nmax_epochs: 10\nresult_model: {name: persona-intents}\n",
        )
        served = tmp_path / "v1"
        services.registry.download("persona-intents@1", served)
        trained = text_classifier.load(services.training.run_dir(first) / "output")
        again = text_classifier.load(served)
        assert again.predict(HELD_OUT) == trained.predict(HELD_OUT)
        assert flat(again.predict_proba(HELD_OUT)) == pytest.approx(
            flat(trained.predict_proba(HELD_OUT))
        )
        assert again.predict(HELD_OUT) == ["greeting", "farewell", "weather"]

        second = _train(
            services,
            "name: intents-ft\ntype: fine_tuning\ntrainer: text_classifier\n"
            "base_model: persona-intents@latest\ndatasets: [intents]\nmax_epochs: 1\n"
            "result_model: {name: persona-intents}\n",
        )
        version = services.registry.get("persona-intents@2")
        assert version.lineage.base_version == "persona-intents@1"
        assert version.lineage.source_run == str(second)
        tuned = text_classifier.load(services.training.run_dir(second) / "output")
        assert tuned.predict(HELD_OUT) == ["greeting", "farewell", "weather"]
        assert services.training.get_run(ADMIN, second).metrics["val_accuracy"] >= 0.8


def test_char_lm_pretrains_then_continues_and_generates_the_same_after_reload(
    tmp_path: Path,
) -> None:
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"text": line}) + "\n" for line in LINES))
    small = "{context_length: 32, d_model: 32, n_heads: 4, batch_size: 16, learning_rate: 0.01}"
    with engine(tmp_path, train_warm_workers=1) as services:
        services.datasets.register(ADMIN, corpus, "persona-corpus")
        services.training.start_scheduler()
        first = _train(
            services,
            "name: lm-pre\ntype: pre_training\ntrainer: char_lm\ndatasets: [persona-corpus]\n"
            f"max_epochs: 1\nhyperparameters: {small}\nresult_model: {{name: persona-lm}}\n",
        )
        second = _train(
            services,
            "name: lm-more\ntype: fine_tuning\ntrainer: char_lm\nbase_model: persona-lm@1\n"
            f"datasets: [persona-corpus]\nmax_epochs: 1\nhyperparameters: {small}\n"
            "result_model: {name: persona-lm}\n",
        )
        assert services.registry.get("persona-lm@2").lineage.base_version == "persona-lm@1"
        for version, run_id in ((1, first), (2, second)):
            folder = tmp_path / f"lm{version}"
            services.registry.download(f"persona-lm@{version}", folder)
            local = char_lm.load(services.training.run_dir(run_id) / "output")
            text = local.generate("the persona ", max_new_tokens=30, temperature=0)
            assert (
                char_lm.load(folder).generate("the persona ", max_new_tokens=30, temperature=0)
                == text
            )
            assert len(text) == 30

"""The full example in docs/pipelines.md runs as written and gives a registered version."""

from __future__ import annotations

import json
from pathlib import Path

from modelhub.domain.runs import RunStatus
from modelhub.training.trainers import text_classifier
from tests.integration.training_engine import ADMIN, engine, finished
from tests.unit.training.test_spec import example_yaml
from tests.unit.training.test_text_classifier import HELD_OUT, intents_file

SUPPORT = [
    "my order never arrived",
    "i want a refund",
    "the app keeps crashing",
    "how do i reset my password",
    "i was charged twice",
    "cancel my subscription please",
    "the package is damaged",
    "i can't log in to my account",
    "where is my parcel",
    "the checkout page shows an error",
    "please help me with my invoice",
    "my card was declined",
]


def test_the_documented_pipeline_runs_end_to_end(tmp_path: Path) -> None:
    intents = intents_file(tmp_path / "intents.jsonl")
    extra = tmp_path / "extra.jsonl"
    rows = [{"text": text, "label": "support"} for text in SUPPORT]
    rows += [{"text": "hello there", "label": "greeting"}, {"text": None, "label": "greeting"}]
    extra.write_text("".join(json.dumps(row) + "\n" for row in rows))

    with engine(tmp_path, train_cpus=4.0, train_warm_workers=1) as services:
        for _ in range(3):  # the example names version 3
            services.datasets.register(ADMIN, intents, "persona_intents")
        services.datasets.register(ADMIN, extra, "persona_intents_extra")
        services.training.start_scheduler()
        services.training.create_pipeline(
            ADMIN,
            "name: intents-first\ntype: pre_training\ntrainer: text_classifier\n"
            "datasets: [persona_intents]\nmax_epochs: 10\n"
            "result_model: {name: intent-classifier}\n",
        )
        first = services.training.start(ADMIN, "intents-first")
        assert finished(services, first.id, timeout=300).status is RunStatus.COMPLETED
        services.registry.set_alias("intent-classifier", "champion", 1, "alice")

        created = services.training.create_pipeline(ADMIN, example_yaml())
        assert created.pipeline.name == "persona-intents-finetune"
        run = services.training.start(ADMIN, "persona-intents-finetune")
        run = finished(services, run.id, timeout=300)
        assert run.status is RunStatus.COMPLETED, run.error

        version = services.registry.get("intent-classifier@2")
        assert version.lineage.base_version == "intent-classifier@1"
        assert version.lineage.dataset_versions == [
            "persona_intents@3",
            "persona_intents_extra@1",
        ]
        report = run.inputs["preprocessing"]["persona_intents+persona_intents_extra"]
        steps = {step["step"]: step for step in report["steps"]}
        assert steps["dedupe"]["rows_in"] - steps["dedupe"]["rows_out"] == 1  # "hello there"
        assert steps["filter"]["rows_in"] - steps["filter"]["rows_out"] == 1  # the null text
        assert report["rows_out"] == report["rows_in"] - 2

        local = services.training.run_dir(run.id) / "output"
        model = text_classifier.load(local)
        assert model.classes == ["farewell", "greeting", "support", "weather"]
        assert model.predict([*HELD_OUT, "my parcel never came"]) == [
            "greeting",
            "farewell",
            "weather",
            "support",
        ]

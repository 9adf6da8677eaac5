"""Bias assessments of tabular classifiers trained here, through the platform.

Two pipelines train on generated people: in one, group b is refused unless its score
is far higher (the label depends on the group, and the model learns it); in the other,
three classes depend on the score alone. The first fails the bias gate, the second
passes one-vs-rest; bad input is refused with nothing recorded; and the same runs
through a real server, its HTTP client and the CLI.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from modelhub.client import Client
from modelhub.client.local import LocalClient
from modelhub.domain.auth import Caller, Role
from modelhub.domain.bias import BiasOptions
from modelhub.domain.governance import ReviewKind
from modelhub.domain.records import ModelVersion
from modelhub.domain.runs import RunStatus
from modelhub.errors import InvalidInput, NotFound, PermissionDenied
from modelhub.services import Services
from modelhub.services.registry import RegisterRequest
from tests.integration.conftest import Cli, ServerProcess, clean_env
from tests.integration.governance_data import spec, write_people
from tests.integration.training_engine import ADMIN, engine, finished

VIEWER = Caller(name="victor", role=Role.VIEWER)
STRANGER = Caller(name="dora", role=Role.DEVELOPER)


@dataclass
class Trained:
    services: Services
    folder: Path
    unfair: ModelVersion
    fair: ModelVersion


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trained]:
    folder = tmp_path_factory.mktemp("bias")
    with engine(folder) as services:
        services.training.start_scheduler()
        runs = []
        for name, kind in (("loans", "unfair"), ("tiers", "classes")):
            data = write_people(folder / f"{name}-train.csv", 1200, seed=1, kind=kind)
            services.datasets.register(ADMIN, data, f"{name}-people")
            services.training.create_pipeline(ADMIN, spec(name, f"{name}-people"))
            runs.append(services.training.start(ADMIN, name).id)
        for run_id in runs:
            done = finished(services, run_id, timeout=240)
            assert done.status is RunStatus.COMPLETED, done.error
        yield Trained(
            services,
            folder,
            services.registry.get("loans@1"),
            services.registry.get("tiers@1"),
        )


def test_a_model_that_learned_to_disadvantage_a_group_fails_the_bias_gate(
    trained: Trained,
) -> None:
    data = write_people(trained.folder / "loans-eval.csv", 1500, seed=2, kind="unfair")
    found = trained.services.bias.assess(
        ADMIN, "loans@1", data, BiasOptions(sensitive=["group", "band"], label="label")
    )
    assert found.kind is ReviewKind.BIAS and not found.passed
    figures = found.figures
    assert (figures["positive"], figures["rows"]) == ("1", 1500)
    assert [g["name"] for g in figures["groupings"]] == ["group", "band", "group & band"]
    group = next(g for g in figures["groupings"] if g["name"] == "group")
    rates = {g["group"]: g["rates"]["1"]["selection_rate"] for g in group["groups"]}
    assert rates["a"] - rates["b"] > 0.2  # b is selected far less often
    assert not group["worst"]["demographic_parity_difference"]["passed"]
    band = next(g for g in figures["groupings"] if g["name"] == "band")
    assert band["worst"]["demographic_parity_difference"]["passed"]
    intersection = next(g for g in figures["groupings"] if g["name"] == "group & band")
    assert {g["group"] for g in intersection["groups"]} == {
        "a & old", "a & young", "b & old", "b & young",
    }  # fmt: skip
    assert "group: " in found.summary and found.attachments.keys() == {"chart.png"}
    chart = trained.services.bias.chart(VIEWER, "loans@1", found.id)
    assert chart.startswith(b"\x89PNG")


def test_a_fair_multiclass_model_passes_one_vs_rest_and_a_tiny_group_is_reported(
    trained: Trained,
) -> None:
    data = write_people(trained.folder / "tiers-eval.csv", 1500, seed=3, kind="classes")
    lines = data.read_text().splitlines()
    # Twelve rows of a third group: reported with their size, not judged.
    lines[1:13] = [line.replace(",a,", ",c,").replace(",b,", ",c,") for line in lines[1:13]]
    data.write_text("\n".join(lines) + "\n")
    found = trained.services.bias.assess(
        ADMIN, "tiers@1", data, BiasOptions(sensitive=["group"], label="label")
    )
    assert found.passed, found.summary
    figures = found.figures
    assert figures["mode"] == "one_vs_rest" and figures["classes"] == ["0", "1", "2"]
    (group,) = figures["groupings"]
    assert set(group["gaps"]) == {"0", "1", "2"}
    assert group["small_groups"] == [{"group": "c", "size": 12}]
    assert len(figures["checks"]) == 9 and all(c["passed"] for c in figures["checks"])


def test_bad_input_is_refused_naming_the_problem_and_nothing_is_recorded(
    trained: Trained,
) -> None:
    bias, folder = trained.services.bias, trained.folder
    version = trained.services.registry.get("tiers@1")
    before = len(bias.assessments.all(version))
    good = write_people(folder / "tiers-bad.csv", 200, seed=4, kind="classes")
    with pytest.raises(InvalidInput, match="sensitive column 'gender' not in the data"):
        bias.assess(
            ADMIN, "tiers@1", good, BiasOptions(sensitive=["group", "gender"], label="label")
        )
    with pytest.raises(InvalidInput, match="label column 'outcome' not in the data"):
        bias.assess(ADMIN, "tiers@1", good, BiasOptions(sensitive=["group"], label="outcome"))
    one_class = folder / "one-class.csv"
    one_class.write_text(
        "\n".join(line.rsplit(",", 1)[0] + ",1" for line in good.read_text().splitlines()[1:])
    )
    one_class.write_text("x1,x2,g,group,band,label\n" + one_class.read_text() + "\n")
    with pytest.raises(InvalidInput, match="label column 'label' holds one class"):
        bias.assess(ADMIN, "tiers@1", one_class, BiasOptions(sensitive=["group"], label="label"))
    no_feature = folder / "no-x2.csv"
    no_feature.write_text(
        "\n".join(
            ",".join(row.split(",")[:1] + row.split(",")[2:])
            for row in good.read_text().splitlines()
        )
    )
    with pytest.raises(InvalidInput, match="feature column 'x2' not in the data"):
        bias.assess(ADMIN, "tiers@1", no_feature, BiasOptions(sensitive=["group"], label="label"))
    with pytest.raises(
        InvalidInput, match="label column 'group' cannot also be a sensitive column"
    ):
        bias.assess(ADMIN, "tiers@1", good, BiasOptions(sensitive=["group"], label="group"))
    with pytest.raises(PermissionDenied):
        bias.assess(VIEWER, "tiers@1", good, BiasOptions(sensitive=["group"], label="label"))
    with pytest.raises(PermissionDenied):
        bias.assess(STRANGER, "tiers@1", good, BiasOptions(sensitive=["group"], label="label"))
    assert len(bias.assessments.all(version)) == before


def test_the_local_client_assesses_in_process_and_returns_the_chart(trained: Trained) -> None:
    data = write_people(trained.folder / "local-eval.csv", 600, seed=6, kind="unfair")
    client = LocalClient(trained.services.settings, actor="ada")
    try:
        found = client.assess_bias("loans", 1, data, BiasOptions(sensitive=["band"], label="label"))
        assert found.actor == "ada" and [g["name"] for g in found.figures["groupings"]] == ["band"]
        assert client.bias_chart("loans", 1).startswith(b"\x89PNG")  # the newest
        with pytest.raises(NotFound, match="no bias assessment 999999"):
            client.bias_chart("loans", 1, 999999)
    finally:
        client.close()


def test_through_a_server_its_http_client_and_the_cli(
    trained: Trained, shared_server: ServerProcess
) -> None:
    served = trained.folder / "served-loans"
    trained.services.registry.download("loans@1", served)
    data = write_people(trained.folder / "server-eval.csv", 800, seed=5, kind="unfair")
    with Client(shared_server.url, token=shared_server.token) as client:
        client.register(RegisterRequest(name="loans", type="classification"), served)
        found = client.assess_bias(
            "loans", 1, data, BiasOptions(sensitive=["group"], label="label", positive="1")
        )
        assert not found.passed and found.figures["positive_chosen"] == "given"
        assert client.bias_chart("loans", 1, found.id).startswith(b"\x89PNG")
        with pytest.raises(InvalidInput, match="sensitive column 'gender'"):
            client.assess_bias("loans", 1, data, BiasOptions(sensitive=["gender"], label="label"))
    env = clean_env(MODELHUB_URL=shared_server.url, MODELHUB_TOKEN=shared_server.token)
    chart = trained.folder / "chart.png"
    shown = modelhub(env, "loans@1", str(data), "group,band", "-o", str(chart))
    assert shown.returncode == 0, shown.stderr
    assert "FAILED" in shown.stdout and "group & band" in shown.stdout
    assert chart.read_bytes().startswith(b"\x89PNG")
    refused = modelhub(env, "loans@1", str(data), "nope", "--json")
    assert refused.returncode == 2 and "sensitive column 'nope'" in refused.stderr


def modelhub(
    env: dict[str, str], ref: str, data: str, sensitive: str, *more: str
) -> subprocess.CompletedProcess[str]:
    """`modelhub governance assess-bias` as a user runs it."""
    args = ["governance", "assess-bias", ref, "--data", data, "--sensitive", sensitive]
    return Cli("server", env, Path.cwd()).run(*args, "--label", "label", *more, ok=False)

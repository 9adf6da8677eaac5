"""`modelhub tune` on a real server: a study of five trials, two at a time, the server
killed (SIGKILL) mid-study and started again; the study completes, keeps what had
finished, prunes the poor trials (their runs cancelled) and registers the best one.

One server and one study for the module; each test reads one part of what was seen.
The search is built so pruning must happen: half its learning rates learn nothing
(1e-6), and with one finished trial the median pruner stops such a trial at its first
evaluation. The sampler's seed fixes which trial gets which: trials 0, 1 and 3 learn,
2, 4 and 5 (asked if a trial is lost in the kill) do not.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from modelhub.client import Client
from modelhub.domain.runs import RunStatus
from modelhub.domain.tuning import Study, StudyStatus, TrialState, TuneRequest
from modelhub.errors import IllegalTransition, InvalidInput, NotFound
from modelhub.services import build_services
from modelhub.settings import Settings
from tests.integration.conftest import Cli, ServerProcess, clean_env, make_server
from tests.integration.serving_helpers import wait_for
from tests.integration.training_engine import ADMIN, tabular_spec, write_blobs

NAME = "tuned"
SEARCH = (
    "{params: {learning_rate: {type: categorical, choices: [0.05, 1.0e-6]}, "
    "hidden: {type: categorical, choices: [8, 32]}}, startup_trials: 1, seed: 29}"
)
UNPRUNED = SEARCH.removesuffix("}") + ", pruner: none}"
SPEC = tabular_spec(NAME, max_epochs=12, search=SEARCH)
TRIALS = 5


@dataclass
class Seen:
    server: ServerProcess
    before: Study  # just before the kill
    after: Study  # once the study completed on the restarted server
    bad: dict[str, str]  # field -> message for a spec with a bad search block
    timed: Study  # a study of three trials with a timeout of 3 s


def _ended(study: Study) -> list[int]:
    return [t.number for t in study.trial_list if t.state is not TrialState.RUNNING]


@pytest.fixture(scope="module")
def seen(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seen]:
    root = tmp_path_factory.mktemp("tuning")
    server = make_server(
        root,
        MODELHUB_TRAIN_LEASE_SECONDS="3",
        MODELHUB_TRAIN_HEARTBEAT_SECONDS="0.5",
        MODELHUB_TRAIN_MAX_RUNNING="2",
        MODELHUB_TRAIN_CPUS="2",
        MODELHUB_TRAIN_GPUS="0",
        MODELHUB_TRAIN_WARM_WORKERS="2",
        MODELHUB_TRAIN_RETRY_BACKOFF_SECONDS="0.1",
        MODELHUB_TUNE_POLL_SECONDS="0.2",
    )
    server.start()
    try:
        services = build_services(Settings(home=server.home))
        services.datasets.register(ADMIN, write_blobs(root / "blobs.csv", 240), "blobs")
        services.close()
        with Client(server.url, server.token) as client:
            bad_spec = tabular_spec(
                "badly-tuned",
                search="{params: {learning_rate: {type: float, low: 0, high: 1, log: true}, "
                "hidden: {type: categorical}, learnin_rate: {type: float, low: 1, high: 0.1}}}",
            )
            with pytest.raises(InvalidInput) as caught:
                client.tune(TuneRequest(spec=bad_spec, trials=2))
            bad = {e["field"]: e["message"] for e in caught.value.details["errors"]}
            with pytest.raises(NotFound):
                client.get_pipeline("badly-tuned")  # nothing stored
            client.tune(TuneRequest(spec=SPEC, trials=TRIALS, parallel=2))
            before = wait_for(
                lambda: (
                    (s := client.study(NAME))
                    and len(_ended(s)) >= 2
                    and any(t.state is TrialState.RUNNING for t in s.trial_list)
                    and s
                ),
                timeout=120,
                interval=0.2,
            )
        server.kill9()
        server.start()
        with Client(server.url, server.token) as client:
            after = wait_for(
                lambda: (s := client.study(NAME)).status is not StudyStatus.RUNNING and s,
                timeout=180,
                interval=0.3,
            )
            # A timeout of a few seconds: no new trial is asked once it has passed.
            # No pruner: every trial asked runs to its end, whatever the machine's speed
            # (with one, a second trial asked in time could be pruned, rightly).
            timed_spec = tabular_spec("timed", max_epochs=3, search=UNPRUNED)
            client.tune(TuneRequest(spec=timed_spec, trials=3, timeout="3s"))
            timed = wait_for(
                lambda: (s := client.study("timed")).status is not StudyStatus.RUNNING and s,
                timeout=120,
                interval=0.3,
            )
        yield Seen(server, before, after, bad, timed)
    finally:
        server.stop()


def test_the_study_completes_with_its_trials_after_a_kill(seen: Seen) -> None:
    after = seen.after
    assert after.status is StudyStatus.COMPLETED, after.reason
    counted = [t for t in after.trial_list if not (t.reason or "").startswith("lost")]
    assert len(counted) == TRIALS
    assert all(t.state is not TrialState.RUNNING for t in after.trial_list)
    # What had ended before the kill is kept as it was: same state, value and run.
    for number in _ended(seen.before):
        kept, was = after.trial_list[number], seen.before.trial_list[number]
        assert (kept.state, kept.value, kept.run_id) == (was.state, was.value, was.run_id)


def test_poor_trials_are_pruned_and_their_runs_cancelled(seen: Seen) -> None:
    pruned = [t for t in seen.after.trial_list if t.state is TrialState.PRUNED]
    assert pruned, seen.after.trial_list
    with Client(seen.server.url, seen.server.token) as client:
        for trial in pruned:
            assert trial.params["learning_rate"] == 1e-6
            assert trial.run_id is not None
            # Asked to stop when pruned; it stops at its next step (or its grace ends).
            wait_for(
                lambda run_id=trial.run_id: client.get_run(run_id).status is RunStatus.CANCELLED,
                timeout=60,
                interval=0.2,
            )
            assert trial.steps < 12  # pruned before its last evaluation was reported


def test_the_best_trial_is_registered_with_its_hyperparameters(seen: Seen) -> None:
    after = seen.after
    assert after.best_params["learning_rate"] == 0.05
    assert after.registered_version is not None and after.best_run is not None
    with Client(seen.server.url, seen.server.token) as client:
        version = client.get(f"{NAME}-model@{after.registered_version}")
        assert version.lineage.source_run == str(after.best_run)
        for key, value in after.best_params.items():
            assert version.lineage.hyperparameters[key] == value
        # Trials register nothing of their own: the study's one version is the model's only one.
        assert [v.version for v in client.versions(f"{NAME}-model")] == [1]
        with pytest.raises(IllegalTransition):
            client.resume_study(NAME)
        with pytest.raises(NotFound):
            client.resume_study("no-such-study")


def test_status_and_chart_from_the_cli(seen: Seen, tmp_path: Path) -> None:
    cli = Cli(
        "server",
        clean_env(MODELHUB_URL=seen.server.url, MODELHUB_TOKEN=seen.server.token),
        tmp_path,
    )
    chart = tmp_path / "study.svg"
    shown = cli.json("tune", "status", NAME, "--chart", str(chart))
    assert shown["status"] == "completed" and len(shown["trial_list"]) >= TRIALS
    root = ET.fromstring(chart.read_text())
    finished = [t for t in seen.after.trial_list if t.state.value in ("complete", "pruned")]
    assert len(root.findall(".//{http://www.w3.org/2000/svg}circle")) == len(finished)
    missing = cli.run("tune", "resume", "no-such-study", ok=False)
    assert missing.returncode != 0 and "no tuning study named" in missing.stderr
    spec = tmp_path / "pipeline.yaml"
    spec.write_text(
        tabular_spec("cli-tuned", search="{params: {hidden: {type: int, low: 64, high: 8}}}")
    )
    refused = cli.run("tune", str(spec), "--trials", "3", ok=False)
    assert refused.returncode != 0
    assert "search.params.hidden: empty or inverted range" in refused.stderr


def test_a_bad_search_block_is_refused_naming_each_problem(seen: Seen) -> None:
    assert "a log range must stay above 0" in seen.bad["search.params.learning_rate"]
    assert "needs choices" in seen.bad["search.params.hidden"]
    assert "unknown hyperparameter" in seen.bad["search.params.learnin_rate"]


def test_the_timeout_stops_asking_new_trials(seen: Seen) -> None:
    timed = seen.timed
    assert timed.status is StudyStatus.COMPLETED, timed.reason
    assert timed.trials == 3 and timed.timeout_seconds == 3
    assert timed.deadline is not None
    # Each trial takes seconds: of three, those asked before the deadline are all there is.
    assert 1 <= len(timed.trial_list) < 3
    assert all(t.asked_at is not None and t.asked_at <= timed.deadline for t in timed.trial_list)
    assert all(t.state is TrialState.COMPLETE for t in timed.trial_list)
    assert timed.registered_version == 1

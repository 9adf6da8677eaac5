"""Training: pipeline specs, trainers, and the context a trainer talks to."""

from __future__ import annotations

# `context` names both the submodule that defines LocalContext and the function below.
# Python sets a package attribute to a submodule only when it first loads it, so
# loading the submodule here (it imports nothing heavy), before the function is
# defined, leaves `modelhub.training.context` the function, while
# `from modelhub.training.context import LocalContext` still finds the module.
from modelhub.training.context import LocalContext

__all__ = ["LocalContext", "context"]


def context() -> LocalContext:
    """The context of the training run this process belongs to.

    A user's training script calls this (or takes the context its entrypoint is
    handed: the same run). The executor names the run's job file in
    MODELHUB_RUN_JOB; raises InvalidInput when that is unset or the file is gone.
    """
    from modelhub.errors import InvalidInput
    from modelhub.settings import Settings

    job = Settings().run_job
    if job is None:
        raise InvalidInput(
            "not inside a modelhub training run: MODELHUB_RUN_JOB is not set "
            "(modelhub sets it when it runs your script as a pipeline's trainer)"
        )
    if not job.is_file():
        raise InvalidInput(
            f"not inside a modelhub training run: the job file {job} does not exist",
            {"job": str(job)},
        )
    return LocalContext.from_job(job)

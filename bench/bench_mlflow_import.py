"""An MLflow model imported into modelhub and served, against `mlflow models serve`
on the same model folder: time to the first successful prediction.

The model is an ONNX MLP (32 -> 256 -> 256 -> 10, random weights) saved with
`mlflow.onnx.save_model`. modelhub: on a running `modelhub server` (warm spare
ready), `Client.import_model(--from mlflow)` -> deploy (1 replica) -> first
`/v2/.../infer` answer; reference in the same run: `mlflow models serve -m FOLDER
--env-manager local` from process start to its first `/invocations` answer (MLflow
serves a folder directly, so it has no import step; its server is one process per
model). Both answers are checked against onnxruntime on the same input. Median of
`--rounds` (3) rounds each.

MLflow comes from the project venv (the `dev` extra installs mlflow-skinny) or,
when present, from bench/.venv-mlflow (`bench/setup_peers.sh`).

    python bench/bench_mlflow_import.py [--rounds 3] [--quick]
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

from benchlib import (  # noqa: E402
    MLFLOW_PYTHON,
    admin_token,
    emit,
    free_port,
    isolate_from_user_env,
    log,
    stop_process,
)
from serving.ours import platform  # noqa: E402

SIZES = (32, 256, 256, 10)


def write_mlflow_model(folder: Path) -> Path:
    """The MLP as ONNX (onnx.helper), saved by mlflow.onnx.save_model into `folder`."""
    import mlflow.onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    nodes, inits, previous = [], [], "input"
    for index, (fan_in, fan_out) in enumerate(itertools.pairwise(SIZES)):
        weight = (rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)).astype(np.float32)
        inits += [
            numpy_helper.from_array(weight, f"w{index}"),
            numpy_helper.from_array(np.zeros(fan_out, np.float32), f"b{index}"),
        ]
        out = "logits" if index == len(SIZES) - 2 else f"h{index}"
        gemm = f"g{index}" if out != "logits" else out
        nodes.append(helper.make_node("Gemm", [previous, f"w{index}", f"b{index}"], [gemm]))
        if out != "logits":
            nodes.append(helper.make_node("Relu", [gemm], [out]))
        previous = out
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", SIZES[0]])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", SIZES[-1]])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    mlflow.onnx.save_model(model, str(folder), pip_requirements=["onnxruntime"])
    return folder


def expected(folder: Path, row: list[float]) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {"input": np.array([row], np.float32)})[0])


def modelhub_rounds(model: Path, work: Path, row: list[float], rounds: int) -> dict[str, Any]:
    from modelhub.client import Client
    from modelhub.services.interop import ImportRequest

    body = {"inputs": [{"name": "input", "shape": [1, SIZES[0]], "datatype": "FP32", "data": row}]}
    imports, firsts, totals = [], [], []
    with platform(work, "modelhub") as hub, Client(hub.url, admin_token(hub.home)) as client:
        for index in range(rounds):
            hub.spare_ready()
            name = f"mlp-{index}"
            started = time.perf_counter()
            client.import_model(ImportRequest(from_format="mlflow", name=name), model)
            imported = time.perf_counter()
            reply = hub.http.post(
                "/api/v1/deployments", json={"model": f"{name}@1", "name": name, "replicas": 1}
            )
            reply.raise_for_status()
            deployment = hub.settled(name)
            answer = httpx.post(
                f"{deployment['endpoint']}/v2/models/{name}/infer", json=body, timeout=60
            )
            answer.raise_for_status()
            done = time.perf_counter()
            outputs = {o["name"]: o["data"] for o in answer.json()["outputs"]}
            got = np.array(outputs["logits"], np.float32)
            assert np.allclose(got, expected(model, row).ravel(), atol=1e-4), "modelhub answer"
            hub.stop(name)
            imports.append(imported - started)
            firsts.append(done - imported)
            totals.append(done - started)
            log(f"modelhub round {index}: import {imports[-1]:.3f} s, total {totals[-1]:.3f} s")
    return {
        "modelhub_import_s": round(statistics.median(imports), 3),
        "modelhub_deploy_to_first_prediction_s": round(statistics.median(firsts), 3),
        "modelhub_total_s": round(statistics.median(totals), 3),
        "modelhub_total_all_s": [round(t, 3) for t in totals],
    }


def mlflow_command(work: Path) -> tuple[list[str], dict[str, str]]:
    """`python -m mlflow` from the peer venv when set up, else from the project venv
    (mlflow-skinny); `mlflow models serve` execs `uvicorn` by name, so a shim running
    that python's uvicorn goes first on PATH."""
    python = str(MLFLOW_PYTHON if MLFLOW_PYTHON.exists() else Path(sys.executable))
    shims = work / "shims"
    shims.mkdir(exist_ok=True)
    shim = shims / "uvicorn"
    shim.write_text(f'#!/bin/sh\nexec "{python}" -m uvicorn "$@"\n')
    shim.chmod(0o755)
    return [python, "-m", "mlflow"], {"PATH": f"{shims}{os.pathsep}{os.environ.get('PATH', '')}"}


def mlflow_rounds(model: Path, work: Path, row: list[float], rounds: int) -> dict[str, Any]:
    command, env = mlflow_command(work)
    times = []
    for index in range(rounds):
        port = free_port()
        started = time.perf_counter()
        with open(work / f"mlflow-{index}.log", "wb") as out:
            proc = subprocess.Popen(
                [
                    *command,
                    "models",
                    "serve",
                    "-m",
                    str(model),
                    "--env-manager",
                    "local",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(port),
                ],
                env={k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")} | env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                answer = _first_answer(proc, f"http://127.0.0.1:{port}/invocations", row)
                times.append(time.perf_counter() - started)
            finally:
                stop_process(proc)
        got = np.array(answer["predictions"]["logits"], np.float32)
        assert np.allclose(got, expected(model, row), atol=1e-4), "mlflow answer"
        log(f"mlflow models serve round {index}: {times[-1]:.3f} s")
    return {
        "mlflow_serve_first_prediction_s": round(statistics.median(times), 3),
        "mlflow_serve_all_s": [round(t, 3) for t in times],
    }


def _first_answer(proc: subprocess.Popen[bytes], url: str, row: list[float]) -> Any:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mlflow models serve exited with {proc.returncode}")
        try:
            reply = httpx.post(url, json={"inputs": [row]}, timeout=10)
            if reply.status_code == 200:
                return reply.json()
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError("mlflow models serve gave no answer within 180 s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds each (default 3)")
    parser.add_argument("--quick", action="store_true", help="one round each")
    args = parser.parse_args(argv)
    isolate_from_user_env()
    rounds = 1 if args.quick else args.rounds
    row = [float(v) for v in np.linspace(-1, 1, SIZES[0])]
    with tempfile.TemporaryDirectory(prefix="bench-mlflow-import-") as folder:
        work = Path(folder)
        model = write_mlflow_model(work / "mlflow-model")
        ours = modelhub_rounds(model, work, row, rounds)
        theirs = mlflow_rounds(model, work, row, rounds)
    total, reference = ours["modelhub_total_s"], theirs["mlflow_serve_first_prediction_s"]
    emit(
        {
            "bench": "mlflow_import",
            "model": "ONNX MLP 32-256-256-10 saved by mlflow.onnx.save_model",
            "rounds": rounds,
            **ours,
            **theirs,
            "ratio_modelhub_to_mlflow": round(total / reference, 3),
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

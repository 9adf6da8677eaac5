"""Versions registered per second, 1 MB artifacts, against the disk's floor and MLflow.

modelhub registers N distinct 1 MB safetensors files as N versions of one model,
in process (RegistryService.register) and over REST (modelhub.Client on one
keep-alive connection against a `modelhub server` process on 127.0.0.1: one
POST /models/{name}/files/{filename} per version). The physical floor, measured
in the same run on the same disk: per file, sha256 of its 1 MB, writing it to a
new file, fsync of the file and of its folder (the directory entry). Goals (issue
10): in process at most 1.5x the floor per version; over REST at least half the
in-process throughput. MLflow does the same on
fewer versions (it is slower): create a run, log the artifact, create a model
version; in process on sqlite:/// and over REST against `mlflow server`
(bench/peers/mlflow_register.py, run in bench/.venv-mlflow). File creation is
outside the timed loops.

    python bench/bench_register_throughput.py [--quick] [--versions 1000]
        [--mlflow-versions 100] [--mlflow-rest-versions 30] [--no-mlflow]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchlib import (
    MIB,
    admin_token,
    emit,
    free_port,
    isolate_from_user_env,
    log,
    median,
    modelhub_server_argv,
    rounded,
    run_peer,
    server_process,
    write_small_safetensors,
)
from modelhub.client import Client
from modelhub.services import build_services
from modelhub.services.registry import RegisterRequest
from modelhub.settings import Settings

GOAL_RATIO_INPROC = 10
GOAL_RATIO_REST = 100
GOAL_FLOOR_RATIO = 1.5  # in-process time per version / physical floor, at most
GOAL_REST_SHARE = 0.5  # REST throughput / in-process throughput, at least


def make_files(folder: Path, count: int) -> list[Path]:
    paths = []
    for i in range(count):
        path = folder / f"{i:05d}" / "model.safetensors"
        path.parent.mkdir(parents=True)
        write_small_safetensors(path, MIB)
        paths.append(path)
    return paths


def physical_floor(folder: Path, files: list[Path]) -> float:
    """Median seconds to hash 1 MB, write it to a new file, fsync it and its folder."""
    folder.mkdir()
    times = []
    for i, path in enumerate(files):
        data = path.read_bytes()
        start = time.perf_counter()
        hashlib.sha256(data).hexdigest()
        fd = os.open(folder / f"{i:05d}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        times.append(time.perf_counter() - start)
    return median(times)


def in_parallel(files: list[Path], threads: int, register: Callable[[Path], object]) -> float:
    """Versions per second registering `files` from `threads` threads at once."""
    queue = list(reversed(files))
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker() -> None:
        while True:
            with lock:
                if not queue or errors:
                    return
                path = queue.pop()
            try:
                register(path)
            except BaseException as exc:
                errors.append(exc)

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    start = time.perf_counter()
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise errors[0]
    return len(files) / elapsed


def register_inproc(home: Path, files: list[Path], threads: int) -> float:
    services = build_services(Settings(home=home))
    try:
        request = RegisterRequest(name="bench-inproc", type="custom")
        return in_parallel(
            files, threads, lambda path: services.registry.register(request, path, actor="bench")
        )
    finally:
        services.close()


def register_rest(root: Path, files: list[Path], threads: int) -> float:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    home = root / f"home-rest-{threads}"
    env = {"MODELHUB_HOME": str(home)}
    argv = modelhub_server_argv(port)
    with server_process(argv, f"{url}/healthz", env, root / f"server-{threads}.log"):
        clients = [Client(url, token=admin_token(home)) for _ in range(threads)]
        by_thread: dict[int, Client] = {}
        taken = iter(clients)
        lock = threading.Lock()

        def register(path: Path) -> object:
            me = threading.get_ident()
            with lock:  # one keep-alive connection per thread
                if me not in by_thread:
                    by_thread[me] = next(taken)
                client = by_thread[me]
            return client.register(RegisterRequest(name="bench-rest", type="custom"), path)

        try:
            return in_parallel(files, threads, register)
        finally:
            for client in clients:
                client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 versions, MLflow 5 / 3")
    parser.add_argument("--versions", type=int, default=1000)
    parser.add_argument("--mlflow-versions", type=int, default=100)
    parser.add_argument("--mlflow-rest-versions", type=int, default=30)
    parser.add_argument("--no-mlflow", action="store_true", help="skip the reference")
    parser.add_argument(
        "--threads", type=int, default=8, help="concurrent registrations (group commit)"
    )
    args = parser.parse_args()
    isolate_from_user_env()
    if args.quick:
        args.versions, args.mlflow_versions, args.mlflow_rest_versions = 20, 5, 3

    result: dict[str, Any] = {"bench": "register_throughput"}
    with tempfile.TemporaryDirectory(prefix="bench-throughput-") as tmp:
        root = Path(tmp)
        log(f"writing {args.versions} files of 1 MiB")
        files = make_files(root / "files", args.versions)

        floor = physical_floor(root / "floor", files)
        log(f"physical floor: {floor * 1000:.2f} ms per 1 MB file")
        log(f"modelhub in-process: {args.versions} versions, one at a time")
        inproc = register_inproc(root / "home-inproc", files, 1)
        log(f"modelhub in-process: {inproc:.1f} versions/s")
        log(f"modelhub in-process: {args.versions} versions, {args.threads} threads")
        inproc_par = register_inproc(root / "home-inproc-par", files, args.threads)
        log(f"modelhub in-process, {args.threads} threads: {inproc_par:.1f} versions/s")
        log(f"modelhub over REST: {args.versions} versions, one at a time")
        rest = register_rest(root, files, 1)
        log(f"modelhub over REST: {rest:.1f} versions/s")
        log(f"modelhub over REST: {args.versions} versions, {args.threads} clients")
        rest_par = register_rest(root, files, args.threads)
        log(f"modelhub over REST, {args.threads} clients: {rest_par:.1f} versions/s")

    peer: dict[str, Any] = {}
    if not args.no_mlflow:
        peer = run_peer(
            "mlflow_register.py",
            [
                "--inproc-versions", str(args.mlflow_versions),
                "--rest-versions", str(args.mlflow_rest_versions),
            ],
        )  # fmt: skip
    ml_inproc = peer.get("inproc_vps")
    ml_rest = peer.get("rest_vps")
    ratio_inproc = inproc / ml_inproc if ml_inproc else None
    ratio_rest = rest / ml_rest if ml_rest else None
    # The goals are judged on concurrent registrations, whose fsyncs a group shares.
    per_version = 1 / inproc_par
    result.update(
        versions=args.versions,
        threads=args.threads,
        floor_ms=rounded(floor * 1000),
        inproc_ms_per_version=rounded(per_version * 1000),
        inproc_sequential_ms_per_version=rounded(1000 / inproc),
        ratio_to_floor=rounded(per_version / floor, 2),
        goal_ratio_to_floor=GOAL_FLOOR_RATIO,
        goal_met_floor=per_version / floor <= GOAL_FLOOR_RATIO,
        modelhub_inproc_parallel_vps=rounded(inproc_par, 2),
        modelhub_rest_parallel_vps=rounded(rest_par, 2),
        rest_share_of_inproc=rounded(rest_par / inproc_par, 2),
        goal_rest_share=GOAL_REST_SHARE,
        goal_met_rest_share=rest_par / inproc_par >= GOAL_REST_SHARE,
        mlflow_versions=args.mlflow_versions,
        mlflow_rest_versions=args.mlflow_rest_versions,
        modelhub_inproc_vps=rounded(inproc, 2),
        modelhub_rest_vps=rounded(rest, 2),
        mlflow_inproc_vps=ml_inproc,
        mlflow_rest_vps=ml_rest,
        ratio_inproc=rounded(ratio_inproc, 2),
        ratio_rest=rounded(ratio_rest, 2),
        goal_ratio_inproc=GOAL_RATIO_INPROC,
        goal_ratio_rest=GOAL_RATIO_REST,
        goal_met_inproc=ratio_inproc is not None and ratio_inproc >= GOAL_RATIO_INPROC,
        goal_met_rest=ratio_rest is not None and ratio_rest >= GOAL_RATIO_REST,
        mlflow_version=peer.get("mlflow_version"),
    )
    if args.quick:
        result["quick"] = True
    emit(result)


if __name__ == "__main__":
    main()

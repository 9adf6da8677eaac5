"""Register a 1 GiB safetensors file; compare with `openssl dgst -sha256` on the same file.

Registration has to read and hash every byte at least once, so hashing the file
with openssl is the floor; the goal is to stay within 1.5x of it. Runs are
interleaved (openssl, modelhub in-process, modelhub over REST, repeat) and the
page cache is dropped before each timed run when we may (root); otherwise the
runs are warm and the JSON says so. Each registration uses a new model name and
is deleted afterwards (with its blob), so no run is deduplicated against another.

    python bench/bench_register_1gib.py [--quick] [--rounds 3] [--size-mib 1024] [--no-rest]
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

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
    server_process,
    write_safetensors,
)
from modelhub.client import Client
from modelhub.services import Services, build_services
from modelhub.services.registry import RegisterRequest
from modelhub.settings import Settings

GOAL_RATIO = 1.5
SEED_TARGET_S = 10


def drop_page_cache() -> bool:
    """Flush dirty pages and drop the page cache; False when not allowed (not root)."""
    try:
        subprocess.run(["sync"], check=True)
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError:
        return False
    return True


def make_model(path: Path, size_mib: int) -> int:
    """A real safetensors file: four F32 tensors whose data totals size_mib MiB."""
    quarter = size_mib * MIB // 4 // 4  # elements per tensor
    return write_safetensors(path, [(f"layers.{i}.weight", quarter) for i in range(4)])


def timed(fn: Callable[[], object], cold: bool) -> float:
    if cold:
        drop_page_cache()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="64 MiB, one round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--no-rest", action="store_true", help="skip registration over REST")
    parser.add_argument("--warm", action="store_true", help="do not drop the page cache")
    args = parser.parse_args()
    isolate_from_user_env()
    if args.quick:
        args.size_mib, args.rounds = 64, 1

    cold = not args.warm and drop_page_cache()
    if not args.warm and not cold:
        log("cannot drop the page cache (not root?): runs are warm")
    with tempfile.TemporaryDirectory(prefix="bench-1gib-") as tmp:
        root = Path(tmp)
        model = root / "model.safetensors"
        log(f"writing {args.size_mib} MiB safetensors file")
        size = make_model(model, args.size_mib)

        services = build_services(Settings(home=root / "home-inproc"))
        openssl: list[float] = []
        inproc: list[float] = []
        rest: list[float] = []
        try:
            with contextlib.ExitStack() as stack:
                client: Client | None = None
                if not args.no_rest:
                    client = start_rest(stack, root)
                for i in range(args.rounds):
                    openssl.append(timed(partial(hash_with_openssl, model), cold))
                    name = f"big-{i}"
                    inproc.append(timed(partial(register_inproc, services, name, model), cold))
                    services.registry.delete(name, "bench")
                    if client is not None:
                        rest_name = f"big-rest-{i}"
                        rest.append(timed(partial(rest_register, client, rest_name, model), cold))
                        client.delete(rest_name)
                    log(
                        f"round {i + 1}: openssl {openssl[-1]:.2f}s  in-process {inproc[-1]:.2f}s"
                        + (f"  REST {rest[-1]:.2f}s" if rest else "")
                    )
        finally:
            services.close()

    modelhub_s = median(inproc)
    openssl_s = median(openssl)
    ratio = modelhub_s / openssl_s
    result: dict[str, object] = {
        "bench": "register_1gib",
        "bytes": size,
        "rounds": args.rounds,
        "modelhub_median_s": rounded(modelhub_s),
        "openssl_median_s": rounded(openssl_s),
        "ratio": rounded(ratio, 2),
        "goal_ratio": GOAL_RATIO,
        "goal_met": ratio <= GOAL_RATIO,
        "seed_target_s": SEED_TARGET_S,
        "cache": "cold" if cold else "warm",
        "modelhub_runs_s": [rounded(t) for t in inproc],
        "openssl_runs_s": [rounded(t) for t in openssl],
    }
    if rest:
        result["modelhub_rest_median_s"] = rounded(median(rest))
        result["ratio_rest"] = rounded(median(rest) / openssl_s, 2)
    else:
        result["rest"] = "skipped (--no-rest)"
    if args.quick:
        result["quick"] = True
    emit(result)


def hash_with_openssl(path: Path) -> None:
    subprocess.run(["openssl", "dgst", "-sha256", str(path)], check=True, stdout=subprocess.DEVNULL)


def register_inproc(services: Services, name: str, path: Path) -> None:
    services.registry.register(RegisterRequest(name=name, type="custom"), path, actor="bench")


def rest_register(client: Client, name: str, path: Path) -> None:
    client.register(RegisterRequest(name=name, type="custom"), path)


def start_rest(stack: contextlib.ExitStack[bool | None], root: Path) -> Client:
    """Start `modelhub server` on a free loopback port; return a modelhub.Client for it."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {"MODELHUB_HOME": str(root / "home-rest")}
    stack.enter_context(
        server_process(modelhub_server_argv(port), f"{url}/healthz", env, root / "server.log")
    )
    token = admin_token(root / "home-rest")
    return stack.enter_context(Client(url, token=token, timeout=600))


if __name__ == "__main__":
    main()

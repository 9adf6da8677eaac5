"""What authentication costs a request: in-process and over REST.

In-process: the median time of AuthService.authenticate + authorize on a token the
server has seen (the steady state of a client with keep-alive). Over REST: the
median latency of the same read (GET one version) against a server with auth and
one started with --no-auth, measured in the same run, alternating; the difference
is what auth adds per request. Goal (issue 3): under 0.2 ms per request.

    python bench/bench_auth.py [--iterations N] [--quick]
"""

from __future__ import annotations

import argparse
import tempfile
from contextlib import ExitStack
from pathlib import Path

import httpx

from benchlib import (
    admin_token,
    emit,
    free_port,
    isolate_from_user_env,
    log,
    median,
    modelhub_server_argv,
    rounded,
    server_process,
    time_calls,
)
from modelhub.domain.auth import Action
from modelhub.samples import write_mlp_safetensors
from modelhub.services import build_services
from modelhub.services.registry import RegisterRequest
from modelhub.settings import Settings

GOAL_MS = 0.2


def in_process(root: Path, iterations: int) -> float:
    services = build_services(Settings(home=root / "inproc"))
    try:
        token = services.auth.bootstrap(root / "inproc" / "admin.token")
        assert token is not None

        def check() -> None:
            caller = services.auth.authenticate(token)
            services.auth.authorize(caller, Action.MODELS_READ)

        return median(time_calls(check, iterations)) * 1000
    finally:
        services.close()


def start(stack: ExitStack, home: Path, extra: list[str]) -> str:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = modelhub_server_argv(port) + extra
    stack.enter_context(
        server_process(argv, f"{url}/healthz", {"MODELHUB_HOME": str(home)}, home / "server.log")
    )
    return url


def over_rest(root: Path, iterations: int) -> tuple[float, float]:
    weights = write_mlp_safetensors(root / "w.safetensors")
    with ExitStack() as stack:
        homes = {"auth": root / "auth", "open": root / "open"}
        for home in homes.values():
            home.mkdir()
            services = build_services(Settings(home=home))
            services.registry.register(RegisterRequest(name="m", type="custom"), weights, "bench")
            services.close()
        auth_url = start(stack, homes["auth"], [])
        open_url = start(stack, homes["open"], ["--no-auth"])
        headers = {"authorization": f"Bearer {admin_token(homes['auth'])}"}
        with_auth = stack.enter_context(httpx.Client(base_url=auth_url, headers=headers))
        without = stack.enter_context(httpx.Client(base_url=open_url))
        samples: dict[str, list[float]] = {"auth": [], "open": []}
        for _ in range(5):  # alternate, so drift on a shared machine hits both alike
            for key, http in (("auth", with_auth), ("open", without)):
                samples[key] += time_calls(
                    lambda h=http: h.get("/api/v1/models/m/versions/1").raise_for_status(),
                    iterations // 5,
                )
        return median(samples["auth"]) * 1000, median(samples["open"]) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    iterations = 200 if args.quick else args.iterations
    isolate_from_user_env()
    with tempfile.TemporaryDirectory(prefix="bench-auth-") as tmp:
        root = Path(tmp)
        inproc_ms = in_process(root, iterations * 5)
        log(f"in-process authenticate+authorize: {inproc_ms * 1000:.1f} us")
        auth_ms, open_ms = over_rest(root, iterations)
    overhead = auth_ms - open_ms
    emit(
        {
            "bench": "auth_cost",
            "inproc_ms": rounded(inproc_ms, 4),
            "rest_with_auth_ms": rounded(auth_ms),
            "rest_without_auth_ms": rounded(open_ms),
            "rest_overhead_ms": rounded(overhead),
            "goal_ms": GOAL_MS,
            "goal_met": inproc_ms < GOAL_MS and overhead < GOAL_MS,
        }
    )


if __name__ == "__main__":
    main()

"""Data-parallel training over torch.distributed: the group a process joins, and its rules.

A distributed job (`job["distributed"] = {"workers": N, "backend": "gloo" | "nccl"}`)
runs as N copies of the training worker (`modelhub.training.launcher` starts them and
hosts their rendezvous store, `loopback_store`). Each copy joins the process group here
before its trainer starts (`join`), or adopts the group that is already initialised
(Ray Train's TorchTrainer initialises it itself). From then on rank and world size come
from torch.distributed, never from the environment alone: `rank()` and `world_size()`
answer 0 and 1 in a process that has no group, so single-process code asks the same
questions.

The rules every rank keeps (the training loop and the context apply them):
- rank 0 is the writer: it alone logs metrics, writes progress, checkpoints, the
  output folder and result.json;
- every rank takes the same number of steps (equal shards, `shard_order`), and the
  collectives outside DDP (`any_rank`, `mean_across`, `barrier`) are called at the same
  points on every rank;
- with nccl, each local rank drives its own GPU (`join` sets it by LOCAL_RANK).

Nothing here imports torch at module level: `rank()` looks for a group only where
torch.distributed is already imported.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, NoReturn

from modelhub.errors import InvalidInput

if TYPE_CHECKING:
    import torch

LOOPBACK = "127.0.0.1"
WORKER_GROUP = "worker/"  # the workers' keys in the store; a script's children use others
# The variables the launcher gives each rank that a rank's own child (a training script)
# needs to reach the same rendezvous store; see `child_environment`.
RENDEZVOUS_VARIABLES = (
    "MASTER_ADDR",
    "MASTER_PORT",
    "LOCAL_RANK",
    "LOCAL_WORLD_SIZE",
    "GLOO_SOCKET_IFNAME",
    "NCCL_SOCKET_IFNAME",
)
JOIN_TIMEOUT = timedelta(minutes=5)


def workers_of(job_or_spec: Mapping[str, Any]) -> int:
    """How many data-parallel workers a job (or a pipeline spec) asks for: 1 without a section."""
    section = job_or_spec.get("distributed")
    if isinstance(section, Mapping):
        return max(1, int(section.get("workers") or 1))
    return 1


def _group_module() -> Any | None:
    """torch.distributed when this process is in an initialised group, else None.

    Looks only where torch.distributed is already imported: a process without torch
    has no group, and asking must not cost a torch import.
    """
    dist = sys.modules.get("torch.distributed")
    if dist is None or not dist.is_available() or not dist.is_initialized():
        return None
    return dist


def rank() -> int:
    """This process's rank in its group; 0 without one."""
    dist = _group_module()
    return int(dist.get_rank()) if dist is not None else 0


def world_size() -> int:
    """How many ranks train together; 1 without a group."""
    dist = _group_module()
    return int(dist.get_world_size()) if dist is not None else 1


@dataclass(frozen=True)
class Group:
    """The group one process is in: `owned` when `join` initialised it (so `leave` ends it)."""

    rank: int
    world_size: int
    local_rank: int
    backend: str
    owned: bool

    @property
    def writer(self) -> bool:
        return self.rank == 0


def loopback_store() -> tuple[Any, int]:
    """A rendezvous store served on 127.0.0.1 only, at a port the kernel picked: (store, port).

    torch's TCPStore listens on every interface whatever host it is given, unless it is
    handed a socket already listening: so it is handed one, bound to loopback. Keep the
    store while the group lives; the ranks reach it as MASTER_ADDR:MASTER_PORT.
    """
    import socket

    from torch.distributed import TCPStore  # type: ignore[attr-defined]

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind((LOOPBACK, 0))
    listener.listen(128)
    port = int(listener.getsockname()[1])
    store = TCPStore(
        LOOPBACK,
        port,
        is_master=True,
        master_listen_fd=listener.detach(),  # the store owns the socket from here
        use_libuv=True,
        wait_for_workers=False,
        timeout=JOIN_TIMEOUT,
    )
    return store, port


def join(section: Mapping[str, Any], store_prefix: str = WORKER_GROUP) -> Group:
    """Join the job's process group, or adopt the one already initialised in this process.

    The launcher's environment names the rendezvous store (MASTER_ADDR, MASTER_PORT),
    this rank (RANK, LOCAL_RANK) and the group's size (WORLD_SIZE). The group's keys
    in the store start with `store_prefix`: a training script's child processes form
    a second group beside their workers' that way. Raises InvalidInput when nccl has
    no GPU for this local rank.
    """
    import torch.distributed as dist
    from torch.distributed import PrefixStore, TCPStore  # type: ignore[attr-defined]

    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if dist.is_initialized():
        backend = str(dist.get_backend())
        return Group(dist.get_rank(), dist.get_world_size(), local_rank, backend, owned=False)
    backend = str(section.get("backend") or "gloo")
    device = _gpu_of(local_rank) if backend == "nccl" else None
    store = TCPStore(
        os.environ["MASTER_ADDR"],
        int(os.environ["MASTER_PORT"]),
        is_master=False,
        timeout=JOIN_TIMEOUT,
    )
    dist.init_process_group(
        backend,
        store=PrefixStore(store_prefix, store),
        rank=int(os.environ["RANK"]),
        world_size=int(os.environ["WORLD_SIZE"]),
        timeout=JOIN_TIMEOUT,
        device_id=device,
    )
    return Group(dist.get_rank(), dist.get_world_size(), local_rank, backend, owned=True)


def _gpu_of(local_rank: int) -> torch.device:
    """The GPU of a local rank, made current: its share of the visible GPUs, the first of it."""
    import torch

    visible = torch.cuda.device_count()
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    if visible < local_world:
        raise InvalidInput(
            f"nccl needs a GPU per worker: {local_world} workers on this host, "
            f"{visible} GPU(s) visible; use backend gloo or give each worker a GPU",
            {"workers": local_world, "gpus": visible},
        )
    device = torch.device("cuda", local_rank * (visible // local_world))
    torch.cuda.set_device(device)
    return device


def leave(group: Group | None) -> None:
    """End the group if `join` began it; an adopted group belongs to whoever began it."""
    dist = _group_module()
    if group is not None and group.owned and dist is not None:
        dist.destroy_process_group()


def exit_now(code: int) -> NoReturn:
    """End a rank's process at once, its output flushed, skipping the interpreter's teardown.

    Once its peers are gone, torch's C++ teardown of a process group at interpreter exit
    can abort the process ("terminate called without an active exception", SIGABRT),
    which would read as a crash of a rank that finished. Everything the rank writes is
    on disk before this is called.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def child_environment() -> dict[str, str]:
    """What a rank's child process needs to join the same rendezvous as a group of its own
    (see `join`): the rendezvous variables, and this rank and world size; nothing
    without a group."""
    if world_size() == 1:
        return {}
    found = {name: os.environ[name] for name in RENDEZVOUS_VARIABLES if name in os.environ}
    return found | {"RANK": str(rank()), "WORLD_SIZE": str(world_size())}


def _collective_device() -> torch.device:
    import torch

    dist = _group_module()
    if dist is not None and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def any_rank(flag: bool) -> bool:
    """True on every rank when `flag` is true on any (a collective: call it everywhere)."""
    dist = _group_module()
    if dist is None or dist.get_world_size() == 1:
        return flag
    import torch

    vote = torch.tensor([1.0 if flag else 0.0], device=_collective_device())
    dist.all_reduce(vote, op=dist.ReduceOp.MAX)
    return bool(vote.item() > 0)


def mean_across(value: torch.Tensor) -> torch.Tensor:
    """The mean of `value` over the ranks (a collective); `value` itself without a group."""
    dist = _group_module()
    if dist is None or dist.get_world_size() == 1:
        return value
    total = value.detach().clone()
    dist.all_reduce(total)
    mean: torch.Tensor = total / dist.get_world_size()
    return mean


def barrier() -> None:
    """Wait until every rank is here (nothing without a group)."""
    dist = _group_module()
    if dist is not None and dist.get_world_size() > 1:
        dist.barrier()


def shard_size(n: int) -> int:
    """How many of `n` examples each rank takes per epoch (the last shard padded to match)."""
    return -(-n // world_size())


def shard_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """This rank's indices of `n` examples for `epoch`, as torch's DistributedSampler
    draws them: one seeded shuffle shared by every rank, split by rank, padded by
    repeating its start so that every shard has `shard_size(n)` indices."""
    import torch
    from torch.utils.data import DistributedSampler

    sampler: DistributedSampler[int] = DistributedSampler(
        range(n),  # type: ignore[arg-type]  # a Sized is all it reads
        num_replicas=world_size(),
        rank=rank(),
        shuffle=True,
        seed=seed,
        drop_last=False,
    )
    sampler.set_epoch(epoch)
    return torch.tensor(list(sampler), dtype=torch.long)


def data_parallel(model: torch.nn.Module) -> torch.nn.Module:
    """`model` wrapped in DistributedDataParallel when several ranks train it, else itself.

    A model with nothing to train (every parameter frozen) is returned as it is: DDP
    refuses it, and it has no gradients to average.
    """
    dist = _group_module()
    if dist is None or dist.get_world_size() == 1:
        return model
    if not any(p.requires_grad for p in model.parameters()):
        return model
    import torch
    from torch.nn.parallel import DistributedDataParallel

    on_gpu = next(model.parameters()).device.type == "cuda"
    device_ids = [torch.cuda.current_device()] if on_gpu else None
    return DistributedDataParallel(model, device_ids=device_ids)

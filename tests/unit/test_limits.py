"""Resource limits: the checked deployment resources, the CPUs and GPUs chosen, the cgroup
files written (in a folder laid out as a cgroup v2 one) and the fallback on this process."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from modelhub.domain.resources import check_deployment_resources, recorded_resources
from modelhub.errors import InvalidInput
from modelhub.limits import (
    ADDRESS_SPACE,
    CGROUP_V2,
    CgroupV2,
    Enforcement,
    Limits,
    choose_cpus,
    choose_gpus,
    memory_failure,
)


def test_resources_are_recorded_in_bytes_and_only_as_set() -> None:
    checked = check_deployment_resources({"memory": "512Mi", "cpus": 0.5}, 2, 0)
    assert checked.as_record() == {"memory": 512 * 2**20, "cpus": 0.5}
    assert check_deployment_resources({"gpus": 2}, 2, 4).as_record() == {"gpus": 2}
    assert not check_deployment_resources({}, 2, 0).limited


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ([1, 2], "resources"),
        ({"cpus": float("nan")}, "resources.cpus"),
        ({"cpus": True, "memory": "1Gi"}, "resources.cpus"),
        ({"memory": 0}, "resources.memory"),
        ({"memory": 1.5}, "resources.memory"),
        ({"gpus": 1.5}, "resources.gpus"),
        ({"cpus": 2.5}, "resources.cpus"),  # the machine has 2
    ],
)
def test_bad_resources_name_their_field(raw: object, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_deployment_resources(raw, 2, 0)
    assert caught.value.details["field"] == field


def test_resources_recorded_before_checking_keep_only_what_reads() -> None:
    old = {"memory": "1Gi", "cpu": 4, "gpus": -1, "cpus": 1}
    assert recorded_resources(old).as_record() == {"memory": 2**30, "cpus": 1.0}


def test_cpus_are_rounded_up_and_spread_turn_by_turn() -> None:
    assert choose_cpus(None, 0, [0, 1]) == ()
    assert [choose_cpus(1, turn, [0, 1]) for turn in range(3)] == [(0,), (1,), (0,)]
    assert choose_cpus(1.5, 0, [0, 1, 2, 3]) == (0, 1)
    assert choose_cpus(1.5, 1, [0, 1, 2, 3]) == (2, 3)
    assert choose_cpus(8, 3, [4, 5]) == (4, 5)  # never more than there are
    assert choose_gpus(1, 0, 2) == (0,) and choose_gpus(1, 1, 2) == (1,)
    assert choose_gpus(2, 1, 4) == (2, 3) and choose_gpus(1, 0, 0) == ()


def test_allocation_failures_are_told_from_other_errors() -> None:
    assert memory_failure("RuntimeError: DefaultCPUAllocator: can't allocate memory")
    assert memory_failure("MemoryError: ")
    assert not memory_failure("KeyError: 'weight'")


def _cgroup_folder(root: Path, offered: str) -> Path:
    root.mkdir()
    (root / "cgroup.subtree_control").write_text(offered)
    return root


def test_a_cgroup_folder_that_offers_memory_and_cpu_is_used(tmp_path: Path) -> None:
    root = _cgroup_folder(tmp_path / "delegated", "cpu memory pids\n")
    enforcement = Enforcement.detect(root)
    assert enforcement.mechanism == CGROUP_V2
    limits = Limits(memory=256 * 2**20, cpus=(1,), cpu_quota=1.5)
    folder = enforcement.confine("modelhub-x-42", 42, limits)
    assert folder == root / "modelhub-x-42"
    assert (folder / "memory.max").read_text() == str(256 * 2**20)
    assert (folder / "cpu.max").read_text() == "150000 100000"
    assert (folder / "cgroup.procs").read_text() == "42"
    # The process applies its CPUs itself, and no address-space limit: the cgroup holds it.
    assert enforcement.for_process(limits, folder) == Limits(cpus=(1,))
    assert not CgroupV2.oom_killed(folder)
    (folder / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    assert CgroupV2.oom_killed(folder)


def test_a_cgroup_folder_without_the_controllers_falls_back(tmp_path: Path) -> None:
    root = _cgroup_folder(tmp_path / "bare", "pids\n")
    enforcement = Enforcement.detect(root)
    assert enforcement.mechanism == ADDRESS_SPACE
    assert enforcement.confine("x", os.getpid(), Limits(memory=2**30)) is None
    assert "no cgroup v2 folder" in enforcement.describe()


def test_the_fallback_pins_a_process_and_bounds_its_address_space() -> None:
    cpu = sorted(os.sched_getaffinity(0))[-1]
    code = (
        "import os, resource\n"
        "from modelhub.limits import Limits, limit_self\n"
        f"limit_self(Limits(memory=64 * 2**20, cpus=({cpu},)))\n"
        "print(sorted(os.sched_getaffinity(0)), resource.getrlimit(resource.RLIMIT_AS)[0] > 0)\n"
        "try:\n"
        "    bytearray(256 * 2**20)\n"
        "    print('allocated')\n"
        "except MemoryError:\n"
        "    print('refused')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == [f"[{cpu}] True", "refused"]
    assert resource.getrlimit(resource.RLIMIT_AS)[0] == resource.RLIM_INFINITY  # not ours


def test_the_local_executor_puts_each_attempt_in_its_own_cgroup(tmp_path: Path) -> None:
    import json

    from modelhub.training.executor import Attempt, LocalExecutor

    root = _cgroup_folder(tmp_path / "delegated", "cpu memory\n")
    job = tmp_path / "job.json"
    limits = Limits(memory=2**30, cpus=(0,), cpu_quota=1.0)
    job.write_text(json.dumps({"limits": limits.to_json()}))  # no run: the worker fails
    executor = LocalExecutor(warm=0, enforcement=Enforcement.detect(root))
    try:
        handle = executor.start(Attempt(7, 2, job, tmp_path / "log.txt"))
        folder = root / "modelhub-run-7-2"
        assert (folder / "cgroup.procs").read_text() == str(handle.pid)
        assert (folder / "memory.max").read_text() == str(2**30)
        assert (folder / "cpu.max").read_text() == "100000 100000"
        handle.kill()
    finally:
        executor.close()

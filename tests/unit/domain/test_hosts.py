"""Placement by free capacity, and when a host counts as dead."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from modelhub.domain.hosts import Host, Placed, choose_host

NOW = datetime(2026, 12, 7, 22, 0, tzinfo=UTC)


def host(name: str, cpus: float = 4.0, memory: int = 8 << 30, beat: float = 0.0) -> Host:
    return Host(
        name=name,
        address="127.0.0.1",
        port=8400,
        pid=1,
        cpus=cpus,
        memory_bytes=memory,
        started_at=NOW,
        heartbeat_at=NOW - timedelta(seconds=beat),
    )


def test_a_deployment_goes_to_the_host_with_most_free_cpu() -> None:
    hosts = [host("a", cpus=4), host("b", cpus=4)]
    placed = [Placed("a", {"cpus": 2}, 1), Placed("b", {}, 1), Placed("gone", {"cpus": 9}, 1)]
    assert choose_host(hosts, placed, Placed(None, {}, 1)) == "b"
    # Replicas count: two replicas of one CPU on b outweigh one of two on a.
    placed = [Placed("a", {"cpus": 2}, 1), Placed("b", {"cpus": 1}, 3)]
    assert choose_host(hosts, placed, Placed(None, {}, 1)) == "a"


def test_memory_then_count_then_name_break_ties() -> None:
    hosts = [host("a", memory=8 << 30), host("b", memory=16 << 30)]
    assert choose_host(hosts, [], Placed(None, {}, 1)) == "b"
    hosts = [host("b"), host("a")]
    assert choose_host(hosts, [], Placed(None, {}, 1)) == "a"
    placed = [Placed("a", {"cpus": 0}, 1)]
    assert choose_host(hosts, placed, Placed(None, {}, 1)) == "b"


def test_unreadable_resources_count_as_one_cpu_and_no_memory() -> None:
    hosts = [host("a", cpus=2), host("b", cpus=2)]
    placed = [Placed("a", {"cpus": "lots", "memory": "huge"}, 1)]
    assert choose_host(hosts, placed, Placed(None, {"memory": "1GiB"}, 1)) == "b"


def test_no_live_host_places_nowhere() -> None:
    assert choose_host([], [], Placed(None, {}, 1)) is None


def test_a_host_is_dead_once_its_heartbeat_is_older_than_the_dead_time_or_it_stopped() -> None:
    dead_after = timedelta(seconds=10)
    assert host("a", beat=10).is_alive(NOW, dead_after)
    assert not host("a", beat=10.5).is_alive(NOW, dead_after)
    stopped = host("a").model_copy(update={"stopped_at": NOW})
    assert not stopped.is_alive(NOW, dead_after)

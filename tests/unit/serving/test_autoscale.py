from __future__ import annotations

from modelhub.serving.autoscale import ScalePolicy, Scaler


def _scaler(low: int = 1, high: int = 4, up: float = 3.0, down: float = 30.0) -> Scaler:
    return Scaler(ScalePolicy(low, high, target_in_flight=4.0, up_seconds=up, down_seconds=down))


def _feed(scaler: Scaler, replicas: int, in_flight: int, start: float, end: float) -> int:
    now = start
    while now <= end:
        replicas = scaler.observe(now, replicas, in_flight)
        now += 0.5
    return replicas


def test_sustained_load_adds_replicas_only_after_the_hold_time() -> None:
    scaler = _scaler()
    assert _feed(scaler, 1, 12, 0.0, 2.0) == 1  # above target, not yet for 3 s
    assert _feed(scaler, 1, 12, 2.5, 6.0) == 3  # 12 in flight / 4 per replica


def test_never_beyond_the_bounds() -> None:
    scaler = _scaler(high=2)
    assert _feed(scaler, 1, 100, 0.0, 20.0) == 2
    assert _feed(_scaler(low=2), 2, 0, 0.0, 100.0) == 2


def test_constant_load_at_the_boundary_does_not_flap() -> None:
    scaler = _scaler(up=1.0, down=5.0)
    replicas = _feed(scaler, 1, 8, 0.0, 10.0)
    assert replicas == 2
    seen = set()
    now = 10.5
    for _ in range(400):  # 200 s of the same load, swinging by one request
        replicas = scaler.observe(now, replicas, 7 if int(now) % 2 else 8)
        seen.add(replicas)
        now += 0.5
    assert seen == {2}


def test_idle_load_removes_one_replica_at_a_time_after_the_hold() -> None:
    scaler = _scaler(down=10.0)
    assert _feed(scaler, 3, 0, 0.0, 9.0) == 3
    assert _feed(scaler, 3, 0, 9.5, 11.0) == 2
    assert _feed(scaler, 2, 0, 11.5, 22.0) == 1


def test_a_brief_spike_does_not_scale_up() -> None:
    scaler = _scaler(up=3.0)
    replicas = _feed(scaler, 1, 40, 0.0, 1.0)
    replicas = _feed(scaler, replicas, 0, 1.5, 10.0)
    assert replicas == 1

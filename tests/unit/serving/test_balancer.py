from __future__ import annotations

from modelhub.domain.deployments import LoadBalancing
from modelhub.serving.balancer import Balancer

REPLICAS = ["http://a", "http://b", "http://c"]


def test_round_robin_takes_turns_and_keeps_the_rest_as_fallbacks() -> None:
    balancer = Balancer()
    firsts = [balancer.order("d", REPLICAS, LoadBalancing.ROUND_ROBIN)[0] for _ in range(6)]
    assert firsts == REPLICAS * 2
    assert sorted(balancer.order("d", REPLICAS, LoadBalancing.ROUND_ROBIN)) == sorted(REPLICAS)


def test_least_outstanding_prefers_the_idlest_replica() -> None:
    balancer = Balancer()
    balancer.begin("http://a")
    balancer.begin("http://a")
    balancer.begin("http://b")
    assert balancer.order("d", REPLICAS, LoadBalancing.LEAST_OUTSTANDING)[0] == "http://c"
    balancer.end("http://a")
    balancer.end("http://a")
    assert balancer.order("d", REPLICAS, LoadBalancing.LEAST_OUTSTANDING)[0] == "http://a"

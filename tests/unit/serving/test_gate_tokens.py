"""The replica's cache of verified tokens: time injected, answers from a stand-in
verifier (the server's side is tested over a real server in test_fast_path.py)."""

from __future__ import annotations

import asyncio

from modelhub.serving.dataplane.gate import Question, TokenCache, Verdict

GOOD = b"Bearer good"
QUESTION = Question("Bearer good", "fp", "POST /v2/models/fp/infer", "10.0.0.1")


class Verifier:
    def __init__(self) -> None:
        self.asked: list[Question] = []
        self.allowed = True

    async def ask(self, question: Question) -> Verdict:
        self.asked.append(question)
        await asyncio.sleep(0)  # answers come later, as over the socket
        if self.allowed:
            return Verdict(200, caller="alice")
        return Verdict(401, code="unauthenticated", message="invalid, expired or revoked token")


def test_a_verified_token_is_trusted_for_the_cache_time_only() -> None:
    now = [100.0]
    verifier = Verifier()
    cache = TokenCache(verifier.ask, ttl=1.0, clock=lambda: now[0])

    async def scenario() -> None:
        assert cache.cached(GOOD) == (None, False)
        assert await cache.check(GOOD, QUESTION) == "alice"
        now[0] += 0.3
        assert cache.cached(GOOD) == ("alice", False)
        now[0] += 0.6  # past half its time: still trusted, to be asked again
        assert cache.cached(GOOD) == ("alice", True)
        verifier.allowed = False  # revoked meanwhile
        now[0] += 0.2  # past the cache time: trusted no more; asked again, refused
        assert cache.cached(GOOD) == (None, False)
        refused = await cache.check(GOOD, QUESTION)
        assert isinstance(refused, Verdict) and refused.status == 401

    asyncio.run(scenario())
    assert len(verifier.asked) == 2


def test_refusals_are_never_cached_and_clear_drops_everything() -> None:
    verifier = Verifier()
    cache = TokenCache(verifier.ask, ttl=60.0)

    async def scenario() -> None:
        verifier.allowed = False
        for _ in range(3):
            assert isinstance(await cache.check(GOOD, QUESTION), Verdict)
        verifier.allowed = True
        assert await cache.check(GOOD, QUESTION) == "alice"
        cache.clear()
        assert cache.cached(GOOD) == (None, False)

    asyncio.run(scenario())
    assert len(verifier.asked) == 4  # every refusal was asked (and audited) apart


def test_a_refusal_on_a_refresh_ends_the_trust_at_once() -> None:
    now = [0.0]
    verifier = Verifier()
    cache = TokenCache(verifier.ask, ttl=1.0, clock=lambda: now[0])

    async def scenario() -> None:
        assert await cache.check(GOOD, QUESTION) == "alice"
        now[0] += 0.6
        verifier.allowed = False
        assert cache.cached(GOOD) == ("alice", True)
        assert isinstance(await cache.check(GOOD, QUESTION), Verdict)  # the refresh
        assert cache.cached(GOOD) == (None, False)

    asyncio.run(scenario())


def test_requests_waiting_on_one_header_share_one_question() -> None:
    verifier = Verifier()
    cache = TokenCache(verifier.ask, ttl=1.0)

    async def scenario() -> list[object]:
        return list(await asyncio.gather(*(cache.check(GOOD, QUESTION) for _ in range(20))))

    assert asyncio.run(scenario()) == ["alice"] * 20
    assert len(verifier.asked) == 1

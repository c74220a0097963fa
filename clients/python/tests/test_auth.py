"""Tokens: `token=` sends `Authorization: Bearer`; a missing or wrong token is a 401, never retried."""

from __future__ import annotations

from typing import Any, Callable, Iterator, List

import pytest

import prefeval
from prefeval import AuthenticationError

PAIR = [{"items": [{"reward": 1.0}, {"reward": 0.0}]}]
COMPARE = [{"items": [{"rewards": [1.0, 0.0]}, {"rewards": [0.0, 1.0]}]}]


@pytest.fixture(scope="module")
def secured(start_server: Callable[..., Any]) -> Any:
    return start_server("--workers", "2", "--api-tokens", "tok-a,tok-b")


@pytest.mark.parametrize("token", ["tok-a", "tok-b"])
def test_a_valid_token_is_accepted_everywhere(secured: Any, token: str) -> None:
    with prefeval.Client(secured.url, token=token) as client:
        assert client.evaluate(PAIR).summary.lists == 1
        assert client.compare(COMPARE, models=["a", "b"]).lists == 1
        with client.evaluate_stream(PAIR * 3) as stream:
            assert len(list(stream)) == 3


@pytest.mark.parametrize("token", [None, "wrong"])
def test_no_or_a_wrong_token_is_a_401(secured: Any, token: Any) -> None:
    sample = ("prefeval_http_requests_total", 'method="POST",route="/v1/evaluate",status="401"')
    before = secured.metric(*sample)
    with prefeval.Client(secured.url, token=token, max_retries=3) as client:
        with pytest.raises(AuthenticationError) as caught:
            client.evaluate(PAIR, request_id="auth-1")
        assert secured.metric(*sample) - before == 1  # not retried
        error = caught.value
        assert (error.status, error.code, error.request_id) == (401, "unauthorized", "auth-1")
        assert error.message
        pulled: List[int] = []

        def lists() -> Iterator[Any]:
            pulled.append(1)
            yield PAIR[0]

        with pytest.raises(AuthenticationError):
            client.evaluate_stream(lists())
        assert pulled == []
        with pytest.raises(AuthenticationError):
            client.compare(COMPARE, models=["a", "b"])


@pytest.mark.anyio
async def test_async_tokens(secured: Any) -> None:
    async with prefeval.AsyncClient(secured.url, token="tok-a") as client:
        assert (await client.evaluate(PAIR)).summary.lists == 1
        stream = await client.evaluate_stream(PAIR)
        async with stream:
            assert [item.line async for item in stream] == [1]
    async with prefeval.AsyncClient(secured.url) as client:
        with pytest.raises(AuthenticationError):
            await client.evaluate(PAIR)
        with pytest.raises(AuthenticationError):
            await client.evaluate_stream(PAIR)

"""The service lists' long poll (``?index=N&wait=30s``, as Consul's blocking queries), over a real HTTP server."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from tests.api.conftest import A
from tests.feed.conftest import SERVICES, Live, MakeLive, settled

INDEX = "X-Registry-Index"
V2 = "/v2/services"


async def listed(live: Live, path: str = SERVICES, **params: Any) -> tuple[int, list[str], float]:
    """``(index, slugs, seconds taken)`` of one list call; the index in the header and in ``meta`` agree."""
    started = time.monotonic()
    response = await live.client.get(path, headers=A, params=params)
    elapsed = time.monotonic() - started
    assert response.status_code == 200, response.text
    body = response.json()
    index = int(response.headers[INDEX])
    if path == SERVICES:
        assert body["meta"]["index"] == index
        return index, [service["slug"] for service in body["data"]], elapsed
    return index, [service["id"] for service in body["services"]], elapsed


@pytest.fixture(params=[SERVICES, V2], ids=["registry dialect", "ttl dialect"])
def path(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_every_list_answer_carries_the_index_and_it_moves_with_the_log(make_live: MakeLive, path: str) -> None:
    live = await make_live(ttl_path=V2)
    empty, slugs, _ = await listed(live, path)
    assert (empty, slugs) == (0, [])
    await live.register("billing")
    index, slugs, _ = await listed(live, path)
    assert slugs == ["billing"]
    assert index == (await live.plugin.store.read_events(0, limit=0)).last_id > empty


async def test_a_stale_index_answers_at_once(make_live: MakeLive, path: str) -> None:
    live = await make_live(ttl_path=V2)
    before, _, _ = await listed(live, path)
    await live.register("billing")
    index, slugs, elapsed = await listed(live, path, index=before, wait="10s")
    assert (index > before, slugs, elapsed < 1) == (True, ["billing"], True)
    # An index ahead of the log (a store emptied since, say) answers at once too, with the log's own.
    ahead, _, elapsed = await listed(live, path, index=index + 1000, wait="10s")
    assert (ahead, elapsed < 1) == (index, True)
    # Without an index, wait means nothing (as in Consul): the list answers at once.
    alone, _, elapsed = await listed(live, path, wait="10s")
    assert (alone, elapsed < 1) == (index, True)


async def test_a_current_index_blocks_until_a_change(make_live: MakeLive, path: str) -> None:
    live = await make_live(ttl_path=V2)
    index, _, _ = await listed(live, path)
    poll = asyncio.create_task(listed(live, path, index=index, wait="10s"))
    await asyncio.sleep(0.3)
    assert not poll.done()
    assert live.hub.waiting == 1
    await live.register("billing")
    after, slugs, elapsed = await asyncio.wait_for(poll, 2)
    assert (after > index, slugs) == (True, ["billing"])
    assert 0.3 < elapsed < 1.5
    assert (live.hub.waiting, live.hub.watchers) == (0, 0)


async def test_without_a_change_it_answers_when_the_wait_ends(make_live: MakeLive, path: str) -> None:
    live = await make_live(ttl_path=V2)
    await live.register("billing")
    index, _, _ = await listed(live, path)
    same, slugs, elapsed = await listed(live, path, index=index, wait="300ms")
    assert (same, slugs) == (index, ["billing"])
    assert 0.3 <= elapsed < 0.3 * 17 / 16 + 0.5  # plus up to 1/16 of jitter


@pytest.mark.parametrize("backend", ["memory"])
async def test_the_wait_is_capped_and_the_cap_is_the_default(make_live: MakeLive, path: str) -> None:
    live = await make_live(ttl_path=V2, feed_max_wait_seconds=0.2)
    index, _, _ = await listed(live, path)
    for params in ({"index": index, "wait": "5m"}, {"index": index}):
        _, _, elapsed = await listed(live, path, **params)
        assert 0.2 <= elapsed < 0.8, params


BAD = [
    {"index": "-1"},
    {"index": "ten"},
    {"index": str(2**63)},
    {"index": "0", "wait": "soon"},
    {"index": "0", "wait": "5h"},
    {"index": "0", "wait": "-1s"},
    {"index": ["1", "2"]},
]
"""A negative, textual, too large index; a wait that is no duration, in hours or negative; an index given twice."""


@pytest.mark.parametrize("backend", ["memory"])
async def test_a_bad_index_or_wait_is_a_422_in_each_dialects_shape(make_live: MakeLive, path: str) -> None:
    live = await make_live(ttl_path=V2)
    for params in BAD:
        started = time.monotonic()
        response = await live.client.get(path, headers=A, params=params)
        assert response.status_code == 422, (params, response.text)
        assert time.monotonic() - started < 1
        if path == SERVICES:
            assert response.json()["code"] == "invalid_input"
        else:
            assert isinstance(response.json()["detail"], list)


async def test_a_client_that_hangs_up_leaves_no_waiter(make_live: MakeLive) -> None:
    live = await make_live()
    index, _, _ = await listed(live)
    async with httpx.AsyncClient(base_url=live.base_url) as client:
        poll = asyncio.create_task(client.get(SERVICES, headers=A, params={"index": index, "wait": "5m"}))
        await asyncio.sleep(0.3)
        assert live.hub.waiting == 1
        poll.cancel()  # closes the connection
        await asyncio.gather(poll, return_exceptions=True)
    await settled(lambda: live.hub.waiting == live.hub.watchers == 0)

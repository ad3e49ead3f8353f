"""The shared serving state on a real Redis: the sync calls the training worker uses, the async store."""

from __future__ import annotations

import asyncio
import uuid

import redis

from protoserve_models import serving_state as st
from protoserve_runtime.redis_clients import async_client, sync_client


def test_promote_and_read_sync_and_async(redis_url: str) -> None:
    prefix = f"t-{uuid.uuid4().hex[:8]}"
    client: redis.Redis = sync_client(redis_url)
    assert st.default_version(client, prefix, "iris-knn") == ""
    assert st.promote_version(client, prefix, "iris-knn", "2") == ""
    assert st.promote_version(client, prefix, "iris-knn", "3") == "2"
    assert st.default_version(client, prefix, "iris-knn") == "3"

    async def check() -> None:
        store = st.ServingStateStore(async_client(redis_url), prefix)
        before = await store.revision()
        _, after = await store.update("iris-knn", lambda s: st.with_traffic(s, [("2", 90), ("3", 10)], "1"))
        revision, states = await store.read_all()
        assert revision == before + 1
        assert states["iris-knn"] == after
        assert after.default == "3" and after.shadow == "1"
        assert after.wanted(["1", "2", "3", "4"]) == {"1", "2", "3", "4"}
        _, after = await store.update("iris-knn", lambda s: st.with_policy(s, st.Policy("latest", 1)))
        assert after.wanted(["1", "2", "3", "4"]) == {"1", "2", "3", "4"}  # routed versions stay in
        _, after = await store.update("iris-knn", lambda s: st.with_traffic(s, [], ""))
        assert after.wanted(["1", "2", "3", "4"]) == {"3", "4"}
        await store.close()

    asyncio.run(check())
    client.close()

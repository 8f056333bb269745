"""The token check's cache: a known token skips the database, a revocation through this process is
immediate, one made elsewhere (another gateway replica, written straight to the database here) is
honoured once the cache's time is up, and turning the cache off makes it immediate everywhere."""

from __future__ import annotations

import asyncio

from reprolab_gateway.core.security import hash_token
from reprolab_gateway.models import ApiToken
from sqlalchemy import update


def _revoke_elsewhere(gw, token: str) -> None:
    with gw.app.state.sessions() as session:
        session.execute(update(ApiToken).where(ApiToken.token_hash == hash_token(token)).values(revoked=True))
        session.commit()


async def _new_token(gw) -> str:
    r = await gw.client.post("/api/v1/me/tokens", json={"name": "cached"}, headers=gw.auth())
    assert r.status_code == 201
    return r.json()["token"]


async def test_revocation_by_another_replica_applies_after_the_cache_time(make_settings, run_gateway) -> None:
    async with run_gateway(make_settings(token_cache_seconds=0.5)) as gw:
        token = await _new_token(gw)
        assert (await gw.client.get("/api/v1/me", headers=gw.auth(token))).status_code == 200
        _revoke_elsewhere(gw, token)
        # still remembered: the documented window (at most token_cache_seconds)
        assert (await gw.client.get("/api/v1/me", headers=gw.auth(token))).status_code == 200
        await asyncio.sleep(0.6)
        r = await gw.client.get("/api/v1/me", headers=gw.auth(token))
        assert r.status_code == 401 and "revoked" in r.json()["detail"]


async def test_cache_off_means_every_request_checks_the_database(make_settings, run_gateway) -> None:
    async with run_gateway(make_settings(token_cache_seconds=0)) as gw:
        token = await _new_token(gw)
        assert (await gw.client.get("/api/v1/me", headers=gw.auth(token))).status_code == 200
        _revoke_elsewhere(gw, token)
        assert (await gw.client.get("/api/v1/me", headers=gw.auth(token))).status_code == 401

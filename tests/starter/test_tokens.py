"""`herald tokens issue` and `herald keys issue`, run as processes against a store in HERALD_HOME."""

from __future__ import annotations

import asyncio
from pathlib import Path

import sqlalchemy as sa

from herald.adapters.store import Store
from herald.services.auth import Principal, key_id, resolve_token, token_hash
from tests.starter.cli import clean_env, run_cli


async def herald(home: Path, *args: str) -> tuple[int, str, str]:
    return await run_cli(clean_env(HERALD_HOME=str(home)), *args)


async def open_store(home: Path) -> Store:
    return await Store.open(f"sqlite+aiosqlite:///{(home / 'herald.db').resolve()}")


async def test_tokens_issue_prints_a_user_token_once_that_the_store_resolves(tmp_path: Path) -> None:
    code, out, err = await herald(tmp_path, "tokens", "issue", "ada")
    assert code == 0, err
    token = out.strip()
    assert out == token + "\n" and token.startswith("hrt_"), "stdout is the token alone, for scripts"
    assert token not in err and "ada" in err and "?token=" in err
    store = await open_store(tmp_path)
    try:
        assert await resolve_token(store, token) == Principal("user", "ada", key_id(token_hash(token)))
    finally:
        await store.close()


async def test_keys_issue_prints_an_agent_key(tmp_path: Path) -> None:
    code, out, err = await herald(tmp_path, "keys", "issue", "deploy-bot")
    assert code == 0, err
    key = out.strip()
    assert key.startswith("hrk_") and key not in err
    code, again, _ = await herald(tmp_path, "keys", "issue", "deploy-bot")
    assert code == 0 and again.strip() != key, "every issue is a new key"
    store = await open_store(tmp_path)
    try:
        first, second = await resolve_token(store, key), await resolve_token(store, again.strip())
        assert first == Principal("agent", "deploy-bot", key_id(token_hash(key)))
        assert second == Principal("agent", "deploy-bot", key_id(token_hash(again.strip())))
        assert first.key_id != second.key_id, "each key has its own quota bucket"
        assert (first.rate, first.burst) == (None, None), "without --rate the defaults apply"
    finally:
        await store.close()


async def test_keys_issue_rate_and_burst_give_the_key_its_own_quota(tmp_path: Path) -> None:
    code, out, err = await herald(tmp_path, "keys", "issue", "batch-bot", "--rate", "0.5", "--burst", "3")
    assert code == 0, err
    key = out.strip()
    assert key.startswith("hrk_") and key not in err
    assert "0.5/s, burst 3" in err, err
    code, out, err = await herald(tmp_path, "keys", "issue", "fast-bot", "--rate", "50")
    assert code == 0, err
    rate_only = out.strip()
    store = await open_store(tmp_path)
    try:
        found = await resolve_token(store, key)
        assert found is not None and (found.subject, found.rate, found.burst) == ("batch-bot", 0.5, 3)
        found = await resolve_token(store, rate_only)
        assert found is not None and (found.rate, found.burst) == (50.0, None)
    finally:
        await store.close()


async def test_a_bad_id_names_the_argument_exits_2_and_saves_nothing(tmp_path: Path) -> None:
    (user_code, user_out, user_err), (agent_code, agent_out, agent_err) = await asyncio.gather(
        herald(tmp_path, "tokens", "issue", "ada lovelace"),
        herald(tmp_path, "keys", "issue", "deploy/bot"),
    )
    assert (user_code, user_out) == (2, "")
    assert user_err.startswith("error: user_id: must be 1-128 characters"), user_err
    assert (agent_code, agent_out) == (2, "")
    assert agent_err.startswith("error: agent_id: must be 1-128 characters"), agent_err
    assert "ada lovelace" not in user_err and "deploy/bot" not in agent_err
    store = await open_store(tmp_path)
    try:
        async with store.engine.connect() as conn:
            assert await conn.scalar(sa.text("SELECT count(*) FROM api_tokens")) == 0
    finally:
        await store.close()


async def test_a_rate_or_burst_that_can_never_accept_is_refused_naming_it(tmp_path: Path) -> None:
    (rate_code, rate_out, rate_err), (burst_code, burst_out, burst_err) = await asyncio.gather(
        herald(tmp_path, "keys", "issue", "deploy-bot", "--rate", "0"),
        herald(tmp_path, "keys", "issue", "deploy-bot", "--burst", "0"),
    )
    assert (rate_code, rate_out) == (2, "") and "--rate" in rate_err, rate_err
    assert (burst_code, burst_out) == (2, "") and "--burst" in burst_err, burst_err
    store = await open_store(tmp_path)
    try:
        async with store.engine.connect() as conn:
            assert await conn.scalar(sa.text("SELECT count(*) FROM api_tokens")) == 0
    finally:
        await store.close()

"""`ask_user` with an action answered in words: the MCP SDK's own client over streamable HTTP on 127.0.0.1, a
real worker, and the person's words back in `answer.text` (the helpers of tests/starter/test_mcp.py)."""

from __future__ import annotations

import asyncio

from herald.services.auth import issue_token
from tests.conftest import Harness
from tests.starter.test_mcp import http_server, http_session, name, ok, with_contact

WORDS = "Hold the deploy until Zoë signs off 🙏"


async def test_http_ask_user_returns_the_persons_words(herald: Harness) -> None:
    agent, user, notification_id = name("agent"), name("user"), name("ask")
    await with_contact(herald, user)
    key = await issue_token(herald.store, "agent", agent)
    question = {
        "user_id": user,
        "question": "Anything before the deploy?",
        "actions": [{"id": "go", "label": "Go"}, {"id": "reply", "label": "Reply", "input": "text"}],
        "channels": ["email"],
        "timeout_seconds": 600,
        "notification_id": notification_id,
    }
    async with http_server(herald) as url, http_session(url, key) as session:
        call = asyncio.create_task(session.call_tool("ask_user", question))
        for _ in range(400):
            if list(herald.outbox("email").glob("*.json")):
                break
            await asyncio.sleep(0.025)
        await herald.client.respond(notification_id, "reply", user, "email", text=WORDS)
        result = ok(await asyncio.wait_for(call, 60))
    assert (result["status"], result["label"]) == ("answered", "Reply")
    assert (result["answer"]["action_id"], result["answer"]["text"]) == ("reply", WORDS)

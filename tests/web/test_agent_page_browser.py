"""The agent page in a real headless Chromium: shows the call, masks secrets, never runs caller markup."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient

from ari_app.session.store import SessionStore
from ari_app.web import links
from tests.web.conftest import TOKEN, XSS_SCRIPT, XSS_TEXT, hostile_call

CHROMIUM = "/usr/bin/chromium"
pytestmark = [
    pytest.mark.stack,
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is absent (apt-get install chromium)"
    ),
]
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
]  # fmt: skip


@pytest.fixture
async def page() -> AsyncIterator[object]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield await browser.new_page()
        finally:
            await browser.close()


async def test_agent_page_shows_call_safely_and_follows_the_transcript(
    client: TestClient, store: SessionStore, page
) -> None:  # type: ignore[no-untyped-def]
    rec = await hostile_call(store)
    url = str(client.make_url(f"/agent/{rec.session_id}")) + f"?link={links.sign(rec.session_id, TOKEN, 600)}"
    console_errors: list[str] = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)

    response = await page.goto(url)
    assert response.status == 200
    await page.wait_for_selector("body[data-loaded=true]", timeout=10_000)

    assert await page.text_content("#caller") == f"{XSS_TEXT} {rec.caller_number}"
    assert await page.text_content("#intent") == "card_payment"
    assert await page.text_content("#reason") == "caller asked for a human"
    assert await page.text_content("#summary") == f"Caller wants to pay {XSS_SCRIPT}"
    assert await page.text_content("#status") == "transferring"
    rows = await page.locator("#slots tr").all_inner_texts()
    assert [r.split("\t") for r in rows] == [
        ["card_number", "****1234"],
        ["order", XSS_TEXT],
        ["cvv", "****"],
    ]
    lines = await page.locator("#transcript li").all_inner_texts()
    assert lines == ["agent:How can I help?", f"caller:pay with {XSS_SCRIPT}"]

    # The markup stayed text: no injected element exists and nothing ran.
    assert await page.evaluate("window.__xss") is None
    assert await page.locator("main img").count() == 0
    assert await page.locator("script").count() == 1  # only agent.js
    assert "4111" not in await page.content()

    # The call goes on: the page picks up the next turn by itself.
    await store.save_turn(rec.session_id, {}, [{"speaker": "agent", "text": "Connecting you now."}])
    # (a locator wait: the page's CSP forbids the string eval wait_for_function would use)
    await page.locator("#transcript li").nth(2).wait_for(timeout=10_000)
    assert (await page.locator("#transcript li").all_inner_texts())[-1] == "agent:Connecting you now."
    assert console_errors == []


async def test_agent_page_refuses_a_wrong_token(client: TestClient, store: SessionStore, page) -> None:  # type: ignore[no-untyped-def]
    rec = await hostile_call(store)
    response = await page.goto(str(client.make_url(f"/agent/{rec.session_id}")) + "?link=9999999999.guess")
    assert response.status == 401
    assert "Incoming call" not in await page.content()

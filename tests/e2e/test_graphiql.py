"""GraphiQL in a real headless Chromium that may reach nothing but this host.

The page and its assets come from envyard itself (app/graphql/ide/); a query runs over HTTP
and a build log subscription over the WebSocket, both authorized from GraphiQL's headers.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from urllib.parse import quote

import httpx
import pytest
from playwright.async_api import async_playwright, expect

from app.graphql.ide import ASSETS
from tests.support.browser import Guard, launch, require_chromium
from tests.support.client import Client
from tests.support.ops import BUILD, create, wait_built
from tests.support.server import Server

pytestmark = pytest.mark.e2e

# ENVYARD_GRAPHIQL_SCREENSHOT=/tmp/graphiql.png keeps a picture of the page at the end.
SCREENSHOT = os.environ.get("ENVYARD_GRAPHIQL_SCREENSHOT")


async def test_the_page_loads_only_envyards_own_assets(http: httpx.AsyncClient) -> None:
    page = (await http.get("/graphql", headers={"Accept": "text/html"})).text
    assert "<title>envyard GraphiQL</title>" in page
    assert "://" not in page
    sources = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert all(s.startswith("/graphql/ide/") or s == "data:," for s in sources), sources
    referenced = dict(
        re.findall(r'(?:src|href)="/graphql/ide/([^"]+)"\s+integrity="([^"]+)"', page)
    )
    assert set(referenced) == set(ASSETS)

    # A browser opening a link with ?query= gets GraphiQL; other GETs still run the query.
    linked = await http.get("/graphql?query={__typename}", headers={"Accept": "text/html"})
    assert linked.text == page
    run = await http.get("/graphql?query={__typename}", headers={"Accept": "*/*"})
    assert run.json() == {"data": {"__typename": "Query"}}

    for name, media_type in ASSETS.items():
        response = await http.get(f"/graphql/ide/{name}")
        assert response.status_code == 200, name
        assert response.headers["content-type"].split(";")[0] == media_type
        assert "immutable" in response.headers["cache-control"]
        digest = base64.b64encode(hashlib.sha384(response.content).digest()).decode()
        assert referenced[name] == f"sha384-{digest}", name

    for path in (
        "/graphql/ide/README.md",
        "/graphql/ide/graphiql.LICENSE",
        "/graphql/ide/graphiql.html",
        "/graphql/ide/..%2F__init__.py",
        "/graphql/ide/%2E%2E%2F%2E%2E%2Fmain.py",
        "/graphql/ide/vendor/graphiql-3.8.3.min.js",
        "/graphql/ide/",
    ):
        assert (await http.get(path)).status_code == 404, path


async def test_query_and_subscription_in_graphiql_offline(standalone: Server) -> None:
    require_chromium()
    server = standalone
    origin = f"http://127.0.0.1:{server.port}"
    token = server.admin_token
    assert token
    authorization = json.dumps({"Authorization": f"Bearer {token}"})

    guard = Guard()
    posted: list[str] = []  # bodies of POST requests

    client = Client(server.http_url, server.ws_url, token)
    async with async_playwright() as playwright:
        browser = await launch(playwright)
        try:
            page = await guard.page(browser, viewport={"width": 1400, "height": 900})
            page.on(
                "request",
                lambda r: posted.append(r.post_data or "") if r.method == "POST" else None,
            )

            async def type_headers() -> None:
                await page.get_by_role("button", name="Headers").click()
                await page.locator(".graphiql-editor-tool .graphiql-editor:not(.hidden)").click()
                await page.keyboard.press("Control+A")
                await page.keyboard.insert_text(authorization)

            # A link cannot set the headers (it could slip another person's token in).
            query = "{ me { username } }"
            await page.goto(f"{origin}/graphql?query={quote(query)}&headers={quote(authorization)}")
            run = page.locator(".graphiql-execute-button")
            await run.click()
            result = page.locator(".result-window")
            await expect(result).to_contain_text("UNAUTHENTICATED")
            assert "headers=" not in page.url and "query=" in page.url
            # Typed into the headers editor, they authorize the query.
            await type_headers()
            await run.click()
            await expect(result).to_contain_text('"username": "admin"')

            # A build log subscription, authorized by typing into the headers editor.
            env = await create(client, pipLibraries=["yard-alpha"])
            version = (await client(BUILD, id=env["id"]))["buildEnvironment"]
            subscription = (
                f'subscription {{ buildLog(versionId: "{version["id"]}") {{ number text }} }}'
            )
            await page.goto(f"{origin}/graphql?query={quote(subscription)}")
            await type_headers()
            await run.click()
            await expect(result).to_contain_text("Build succeeded:", timeout=60_000)
            env = await wait_built(client, env["id"])
            last = env["versions"][0]["log"].splitlines()[-1]
            assert last.startswith("Build succeeded:")
            await expect(result).to_contain_text(f'"text": {json.dumps(last)}')
            if SCREENSHOT:
                await page.screenshot(path=SCREENSHOT)

            assert guard.external == []
            assert guard.failed == []
            assert guard.errors == []
            # The guard itself works: a request for another host is blocked and recorded.
            probe = "https://unpkg.com/graphiql@3.8.3/graphiql.min.js"
            await page.evaluate("url => fetch(url).catch(() => null)", probe)
            assert guard.external == [probe]
        finally:
            await browser.close()
            await client.aclose()

    # The subscription went over the same origin's WebSocket, with the typed headers as its
    # connection_init payload; nothing of it over HTTP.
    assert guard.websockets == [f"ws://127.0.0.1:{server.port}/graphql"]
    init, subscribe = guard.frames_sent[:2]
    assert init == {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
    assert (subscribe["type"], subscribe["payload"]["query"]) == ("subscribe", subscription)
    assert not [body for body in posted if "buildLog" in body]

"""Debian's headless Chromium, driven by Playwright, that may reach nothing but this host."""

from __future__ import annotations

import json
import os
import re
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.async_api import (
    Browser,
    BrowserContext,
    Page,
    Playwright,
    Route,
    WebSocket,
    WebSocketRoute,
)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOOPBACK = {"127.0.0.1", "localhost", "[::1]", "::1"}


def require_chromium() -> None:
    """Browser tests skip outside CI without Chromium; in CI a missing Chromium fails."""
    if os.access(CHROMIUM, os.X_OK):
        return
    message = f"{CHROMIUM} is missing; run scripts/browser-setup"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


async def launch(playwright: Playwright) -> Browser:
    """Debian's Chromium, headless (Playwright never downloads a browser of its own)."""
    return await playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
    )


class Guard:
    """Browser contexts whose requests for any other host are blocked (and recorded), and
    whose pages' errors are recorded: script errors, console errors, HTTP errors, failed
    requests, and the frames each page sent over its WebSockets."""

    def __init__(self) -> None:
        self.external: list[str] = []
        self.failed: list[str] = []
        self.errors: list[str] = []
        self.websockets: list[str] = []
        self.frames_sent: list[dict[str, Any]] = []
        self._open: list[WebSocketRoute] = []

    async def context(self, browser: Browser, **options: Any) -> BrowserContext:
        context = await browser.new_context(**options)
        await context.route("**/*", self._only_loopback)
        await context.route_web_socket(re.compile(".*"), self._only_loopback_ws)
        context.on("page", self.watch)
        return context

    async def page(self, browser: Browser, **options: Any) -> Page:
        return await (await self.context(browser, **options)).new_page()

    def watch(self, page: Page) -> None:
        page.on("requestfailed", self._request_failed)
        page.on(
            "response",
            lambda r: self.failed.append(f"{r.url}: {r.status}") if r.status >= 400 else None,
        )
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("websocket", self._websocket)

    async def _only_loopback(self, route: Route) -> None:
        if urlsplit(route.request.url).hostname in LOOPBACK:
            await route.continue_()
        else:
            self.external.append(route.request.url)
            await route.abort("blockedbyclient")

    def _only_loopback_ws(self, ws: WebSocketRoute) -> None:
        if urlsplit(ws.url).hostname in LOOPBACK:
            ws.connect_to_server()
            self._open.append(ws)
        else:
            self.external.append(ws.url)
            ws.close()

    async def drop_websockets(self) -> None:
        """Close every WebSocket the pages opened so far, as a lost connection would."""
        opened, self._open = self._open, []
        for ws in opened:
            await ws.close(code=1011, reason="dropped by the test")

    def _request_failed(self, request: Any) -> None:
        if request.url not in self.external:
            self.failed.append(f"{request.url}: {request.failure}")

    def _websocket(self, ws: WebSocket) -> None:
        self.websockets.append(ws.url)
        ws.on("framesent", lambda frame: self.frames_sent.append(json.loads(frame)))

"""The console's pages (app/console) in Debian's headless Chromium, against a real standalone
server, with every request for another host blocked.

A member creates an environment (a wrong library is shown at its field), builds it while
the log's lines arrive live, edits it, rebuilds, compares two versions, reverts, activates
and submits it; an admin compares it with the published environments and rejects it with
feedback; the member reads the feedback and submits again; the admin approves; another
member finds it published and activates it. Each page is photographed into
ENVYARD_TEST_ARTEFACTS (default: test-artefacts/ in the checkout).
"""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect
from playwright.async_api import Error as PlaywrightError

from app.console import ASSETS
from tests.support.browser import Guard, launch, require_chromium
from tests.support.client import Client
from tests.support.ops import create, wait_built
from tests.support.server import ROOT, Server

pytestmark = pytest.mark.e2e

ARTEFACTS = Path(os.environ.get("ENVYARD_TEST_ARTEFACTS", ROOT / "test-artefacts")) / "console"
WIDE = {"width": 1280, "height": 800}
NARROW = {"width": 390, "height": 800}
LIVE = 60_000  # ms: a build's end, seen in the page


async def test_the_console_is_served_by_envyard_alone(http: httpx.AsyncClient) -> None:
    # every file shipped is served (and the package ships them all: pyproject's package-data)
    static = ROOT / "app" / "console" / "static"
    assert {p.name for p in static.iterdir()} == set(ASSETS) | {"index.html"}
    assert '"app.console" = ["static/*"]' in (ROOT / "pyproject.toml").read_text()
    page = await http.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy
    assert "connect-src 'self'" in policy
    assert "://" not in page.text  # no other origin
    sources = re.findall(r'(?:src|href)="([^"]*)"', page.text)
    assert sources and all(
        s.startswith(("/console/", "/graphql/ide/")) or s == "data:," for s in sources
    )
    for source in sources:
        if source != "data:,":
            assert (await http.get(source)).status_code == 200, source
    for name, media_type in ASSETS.items():
        response = await http.get(f"/console/{name}")
        assert response.status_code == 200, name
        assert response.headers["content-type"].split(";")[0] == media_type
        assert not re.search(r"\w://\w", response.text), name  # no address of another host
        # unchanged: the browser's copy is confirmed, not sent again
        again = await http.get(
            f"/console/{name}", headers={"If-None-Match": response.headers["etag"]}
        )
        assert again.status_code == 304 and again.content == b""
    # only the listed files: not the page by another name, nor the package's own files
    for path in ("/console/index.html", "/console/__init__.py", "/console/console.js.map"):
        assert (await http.get(path)).status_code == 404, path


# Records each text the build log panel shows, with when (window.envyardLog).
RECORD_LOG = """() => {
  window.envyardLog = [];
  let last = null;
  new MutationObserver(() => {
    const log = document.querySelector("pre.log");
    const text = log ? log.textContent : null;
    if (text && text !== last) {
      last = text;
      window.envyardLog.push([performance.now(), text]);
    }
  }).observe(document.body, { subtree: true, childList: true, characterData: true });
}"""


async def ended_in(page: Page) -> None:
    """The page knows the build ended: its log is no longer said to be followed."""
    building = page.get_by_role("heading", name="Building: following the log live")
    await expect(building).to_have_count(0)


async def shoot(page: Page, name: str) -> None:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTEFACTS / f"{name}.png"), full_page=True)


async def sign_in(
    browser: Browser, guard: Guard, origin: str, token: str, **options: object
) -> Page:
    page = await guard.page(browser, viewport=options.pop("viewport", WIDE), **options)
    await page.goto(f"{origin}/")
    await page.get_by_label("API token").fill(token)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    return page


async def fits(page: Page) -> None:
    """Nothing wider than the window: no sideways scrolling."""
    width = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert width <= 0, f"{width} px wider than the window at {page.url}"


async def test_from_creation_to_published_in_the_browser(standalone: Server) -> None:
    require_chromium()
    server = standalone
    origin = f"http://127.0.0.1:{server.port}"
    alice = server.add_user("default", "alice")
    bob = server.add_user("default", "bob")
    admin = server.admin_token
    # Something published to compare with, made through the API.
    bobs = Client(server.http_url, server.ws_url, bob)
    admins = Client(server.http_url, server.ws_url, admin)
    try:
        base = await create(
            bobs, shortName="bbase", fullName="Bob's base", pipLibraries=["yard-alpha==1.0"]
        )
        await bobs("mutation($id: ID!) { buildEnvironment(id: $id) { id } }", id=base["id"])
        await wait_built(bobs, base["id"])
        await bobs("mutation($id: ID!) { submitEnvironment(id: $id) { id } }", id=base["id"])
        await admins("mutation($id: ID!) { approveEnvironment(id: $id) { id } }", id=base["id"])
    finally:
        await bobs.aclose()
        await admins.aclose()

    guard = Guard()
    async with async_playwright() as playwright:
        browser = await launch(playwright)
        try:
            await _member_builds_and_submits(browser, guard, origin, alice)
            await _admin_rejects(browser, guard, origin, admin)
            await _member_resubmits(browser, guard, origin, alice)
            await _admin_approves(browser, guard, origin, admin)
            await _a_build_is_cancelled(browser, guard, origin, bob)
            await _another_member_uses_it(browser, guard, origin, bob)
            # The guard itself works: a request for another host is blocked and recorded (a
            # console page could not even ask: its Content-Security-Policy allows only itself).
            page = await guard.page(browser)
            probe = "https://unpkg.com/react@18/umd/react.production.min.js"
            with pytest.raises(PlaywrightError):
                await page.goto(probe)
        finally:
            await browser.close()
    assert guard.external == [probe]
    assert guard.errors == []
    assert guard.failed == []
    # Live parts went over this server's WebSocket, signed in by connection_init's payload.
    assert set(guard.websockets) == {f"ws://127.0.0.1:{server.port}/graphql"}
    inits = [f for f in guard.frames_sent if f["type"] == "connection_init"]
    # (alice and bob followed their builds; the admin's pages had nothing live)
    assert {f["payload"]["Authorization"] for f in inits} == {f"Bearer {alice}", f"Bearer {bob}"}


async def _member_builds_and_submits(
    browser: Browser, guard: Guard, origin: str, token: str
) -> None:
    page = await guard.page(browser, viewport=WIDE)
    await page.goto(f"{origin}/")
    await shoot(page, "01-sign-in")
    await page.get_by_label("API token").fill("ey_not-a-token")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_contain_text("This token is not valid")
    await page.get_by_label("API token").fill(token)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Environments")).to_be_visible()
    await expect(page.get_by_role("link", name="bbase")).to_be_visible()  # published: seen by all
    await shoot(page, "02-environments")

    # The form explains the rules; a wrong library is shown at its field, nothing is made.
    await page.get_by_role("link", name="New Environment").first.click()
    await expect(
        page.get_by_text("At most 5 characters, unique in your organization")
    ).to_be_visible()
    await expect(page.get_by_text("lib, lib=v, lib==v, lib<=v or lib>=v").first).to_be_visible()
    await page.get_by_label("Short name").fill("ds")
    await page.get_by_label("Full name").fill("Data science")
    await page.get_by_label("Description").fill("Pandas-like tools for the team")
    await page.get_by_label("Pip libraries").fill("yard-slow\nyard-alpha!!1.0")
    await page.get_by_role("button", name="Save and Build").click()
    error = page.locator("#pipLibraries-error")
    await expect(error).to_contain_text("Line 2: 'yard-alpha!!1.0': use one of the forms")
    await expect(page.get_by_label("Pip libraries")).to_have_attribute("aria-invalid", "true")
    await shoot(page, "03-form-error")
    await page.get_by_label("Pip libraries").fill("yard-slow\nyard-alpha==1.0")
    await page.evaluate(RECORD_LOG)
    await page.get_by_role("button", name="Save and Build").click()

    # The build's log arrives line by line while it runs (yard-slow's index page answers
    # after 3 s): the page shows the first lines seconds before the last one.
    await expect(page.get_by_role("heading", name="ds")).to_be_visible()
    log = page.locator("pre.log")
    await expect(log).to_contain_text("$ uv pip install")
    await expect(page.locator(".page-head .status")).to_have_text("In Progress")
    await shoot(page, "04-building")
    await expect(log).to_contain_text("Build succeeded: version 1 is ready", timeout=LIVE)
    shown = await page.evaluate("window.envyardLog")
    installing = [t for t, text in shown if "$ uv pip install" in text and "succeeded" not in text]
    ended = [t for t, text in shown if "Build succeeded: version 1 is ready" in text]
    assert installing and ended, shown
    assert ended[0] - installing[0] > 2000, shown  # ms: shown live, not all at the end
    assert all(text.startswith("Build of ds version 1 started") for _, text in shown), shown
    await expect(page.locator(".page-head .status")).to_have_text("Draft")
    await ended_in(page)
    await expect(page.get_by_role("cell", name="yard-slow")).to_be_visible()
    await shoot(page, "05-built")

    # Edit, rebuild, compare the two versions.
    await page.get_by_role("link", name="Edit").click()
    await expect(page.get_by_label("Short name")).to_be_disabled()
    await page.get_by_label("Pip libraries").fill("yard-slow\nyard-alpha==1.0\nyard-beta")
    await shoot(page, "06-edit")
    await page.get_by_role("button", name="Save and Build").click()
    await page.evaluate(RECORD_LOG)  # the environment's page again, version 2 building
    await expect(log).to_contain_text("Build succeeded: version 2 is ready", timeout=LIVE)
    await ended_in(page)
    shown = await page.evaluate("window.envyardLog")  # never version 1's log meanwhile
    assert shown and all(t.startswith("Build of ds version 2 started") for _, t in shown), shown
    await page.get_by_label("Compare version 2 with").select_option(label="Version 1")
    changes = page.locator("table", has_text="From version 1 to version 2")
    await expect(changes.get_by_role("row", name=re.compile("yard-beta"))).to_contain_text("added")
    await shoot(page, "07-diff")

    # Revert to version 1: version 3 holds its packages.
    await page.get_by_label("Revert to").select_option(label="Version 1")
    await page.evaluate(RECORD_LOG)
    await page.get_by_role("button", name="Revert", exact=True).click()
    await expect(log).to_contain_text("Build succeeded: version 3 is ready", timeout=LIVE)
    await ended_in(page)
    shown = await page.evaluate("window.envyardLog")  # version 2's log, then version 3's
    assert shown and shown[-1][1].startswith("Build of ds version 3 started"), shown
    assert all(t.startswith(("Build of ds version 2 ", "Build of ds version 3 ")) for _, t in shown)
    chosen = page.get_by_label("Version", exact=True).locator("option:checked")
    await expect(chosen).to_have_text("Version 3: Succeeded, revert to 1")
    # Its files to recreate it elsewhere, downloaded as the API gives them.
    async with page.expect_download() as download_info:
        await page.get_by_role("button", name="requirements.txt").click()
    download = await download_info.value
    assert download.suggested_filename == "ds-v3-requirements.txt"
    saved = Path(await download.path()).read_text()
    assert "yard-alpha==1.0" in saved and "yard-slow==1.0" in saved and "beta" not in saved
    async with page.expect_download() as download_info:
        await page.get_by_role("button", name="Lock file").click()
    lock = Path(await (await download_info.value).path()).read_text()
    assert "yard-alpha" in lock and "sha256" in lock
    installed = page.locator("table", has_text="Installed packages of version 3")
    await expect(installed).to_contain_text("yard-alpha")
    await expect(installed).not_to_contain_text("yard-beta")
    # Older versions stay readable: version 1's stored log and packages.
    await page.get_by_label("Version", exact=True).select_option(label="Version 1: Succeeded")
    await expect(page.locator("table", has_text="Installed packages of version 1")).to_contain_text(
        "yard-slow"
    )
    await expect(log).to_contain_text("Build succeeded: version 1 is ready")

    # Activate from the keyboard alone.
    activate = page.get_by_role("button", name="Activate")
    await page.get_by_role("link", name="Edit").focus()
    for _ in range(4):
        if await activate.evaluate("b => b === document.activeElement"):
            break
        await page.keyboard.press("Tab")
    assert await activate.evaluate("b => b === document.activeElement")
    await page.keyboard.press("Enter")
    await expect(page.locator(".activation")).to_contain_text("/envs/")
    await page.get_by_role("button", name="Submit for Publish").click()
    await expect(page.locator(".page-head .status")).to_have_text("Pending Approval")
    await shoot(page, "08-submitted")
    await fits(page)
    await page.set_viewport_size(NARROW)
    await fits(page)
    await shoot(page, "09-narrow")
    await page.context.close()


async def _admin_rejects(browser: Browser, guard: Guard, origin: str, token: str) -> None:
    page = await sign_in(browser, guard, origin, token)
    await page.get_by_role("link", name="Admin → Python Environments").click()
    queue = page.locator("table", has_text="Pending approval")
    await expect(queue.get_by_role("row", name=re.compile("Data science"))).to_contain_text("alice")
    await shoot(page, "10-review-queue")
    await queue.get_by_role("link", name="ds").click()
    await expect(page.get_by_role("heading", name=re.compile("Review ds"))).to_be_visible()
    await expect(page.locator("dl.facts")).to_contain_text("Pandas-like tools for the team")
    await expect(
        page.locator("table", has_text="Installed libraries and versions")
    ).to_contain_text("yard-slow")
    comparison = page.locator("table", has_text="Most similar first")
    await expect(comparison.get_by_role("row", name=re.compile("bbase"))).to_contain_text("%")
    await comparison.get_by_role("button", name=re.compile("change")).click()
    await expect(page.locator("table", has_text="From bbase to this version")).to_contain_text(
        "yard-slow"
    )
    await shoot(page, "11-review")
    await page.get_by_role("button", name="Reject").click()
    await expect(page.locator("#feedback-error")).to_contain_text(
        "Say what the creator should change"
    )
    await page.get_by_label(re.compile("Feedback for the creator")).fill(
        "Pin yard-alpha to 2.0, please."
    )
    await page.get_by_role("button", name="Reject").click()
    await expect(page.locator(".notice-ok")).to_contain_text("went back to its creator")
    await expect(page.get_by_text("Nothing waits for review.")).to_be_visible()
    await page.context.close()


async def _member_resubmits(browser: Browser, guard: Guard, origin: str, token: str) -> None:
    page = await sign_in(browser, guard, origin, token)
    await page.get_by_label("Status").select_option(label="Draft")
    await page.get_by_role("link", name="ds", exact=True).click()
    await expect(page.get_by_role("note")).to_contain_text("Pin yard-alpha to 2.0, please.")
    await shoot(page, "12-rejected")
    await page.get_by_role("button", name="Submit for Publish").click()
    await expect(page.locator(".page-head .status")).to_have_text("Pending Approval")
    await page.get_by_role("link", name="Events").click()
    await expect(page.locator("ol.timeline")).to_contain_text(
        "admin rejected it (version 3): Pin yard-alpha to 2.0, please."
    )
    await shoot(page, "13-events")
    await page.context.close()


async def _admin_approves(browser: Browser, guard: Guard, origin: str, token: str) -> None:
    page = await sign_in(browser, guard, origin, token)
    # A package policy: a wrong rule is shown at its field; a right one is kept.
    await page.get_by_role("link", name="Policy").click()
    rules = page.get_by_label("Blocked packages")
    await rules.fill("yard-slow\nnot a name!")
    await page.get_by_role("button", name="Save policy").click()
    await expect(page.locator("#blockedPackages-error")).to_contain_text("not a name!")
    await rules.fill("yard-slow")
    await page.get_by_role("button", name="Save policy").click()
    await expect(page.locator(".notice-ok")).to_contain_text("1 blocked package rule")
    await shoot(page, "14-policy")
    # The review names the violation; approving needs it acknowledged.
    await page.goto(f"{origin}/#/admin")
    queue = page.locator("table", has_text="Pending approval")
    await expect(queue.get_by_role("row", name=re.compile("Data science"))).to_contain_text(
        "1 violation"
    )
    await queue.get_by_role("link", name="ds").click()
    violations = page.get_by_role("region", name=re.compile("Policy violations"))
    await expect(violations).to_contain_text("pip yard-slow 1.0 matches the blocked rule yard-slow")
    approve = page.get_by_role("button", name="Approve")
    await expect(approve).to_be_disabled()
    await page.get_by_label(re.compile("I have read the policy violations")).check()
    await shoot(page, "15-review-violation")
    await approve.click()
    await expect(page.locator(".notice-ok")).to_contain_text("ds is published")
    await page.get_by_role("link", name="Deprecation").click()
    await page.get_by_label("Unused for at least (days)").fill("0")
    candidates = page.locator("table", has_text="Unused for 0 days or more")
    await expect(candidates.get_by_role("row", name=re.compile("bbase"))).to_contain_text("never")
    await shoot(page, "16-deprecation")
    await page.context.close()


async def _another_member_uses_it(browser: Browser, guard: Guard, origin: str, token: str) -> None:
    page = await sign_in(browser, guard, origin, token, viewport=NARROW)
    await expect(page.locator(".count")).to_have_text("3 environments")  # his failed one too
    await page.get_by_label("Status").select_option(label="Published")
    await expect(page.locator(".count")).to_have_text("2 environments")
    await page.get_by_label("Search").fill("Data sci")
    await expect(page.locator(".count")).to_have_text("1 environment")
    await page.get_by_role("link", name="ds", exact=True).click()
    await expect(page.locator(".page-head .status")).to_have_text("Published")
    await expect(page.get_by_role("button", name="Build")).to_have_count(0)  # not the creator's
    await page.get_by_role("button", name="Activate").click()
    await expect(page.locator(".activation")).to_contain_text("Version 3 is active")
    await page.reload()  # the environment's usage counts alice's activation and bob's
    await expect(page.locator("dl.facts").first).to_contain_text("2 activations by 2 people")
    await fits(page)
    await shoot(page, "17-published-narrow")
    await page.context.close()


async def _a_build_is_cancelled(browser: Browser, guard: Guard, origin: str, token: str) -> None:
    page = await sign_in(browser, guard, origin, token)
    await page.get_by_role("link", name="New Environment").first.click()
    await page.get_by_label("Short name").fill("slow")
    await page.get_by_label("Full name").fill("A slow one")
    await page.get_by_label("Pip libraries").fill("yard-sloth")  # its index page takes 8 s
    await page.get_by_role("button", name="Save and Build").click()
    await expect(page.locator("pre.log")).to_contain_text("$ uv pip install")
    # Another window joins while the build waits: it shows the log from its first line on,
    # then follows it live.
    late = await sign_in(browser, guard, origin, token)
    await late.goto(page.url)
    await expect(
        late.get_by_role("heading", name="Building: following the log live")
    ).to_be_visible()
    late_log = late.locator("pre.log")
    await expect(late_log).to_contain_text("$ uv pip install")
    assert (await late_log.text_content() or "").startswith("Build of slow version 1 started")
    await page.get_by_role("button", name="Cancel build").click()
    await expect(page.locator(".page-head .status")).to_have_text("Failed")
    await expect(page.locator("pre.log")).to_contain_text("cancelled by bob")
    await expect(late_log).to_contain_text("cancelled by bob")  # live, in the late window too
    await ended_in(page)
    await ended_in(late)
    await expect(late.locator(".page-head .status")).to_have_text("Failed")
    await late.context.close()
    await expect(page.get_by_role("button", name="Activate")).to_be_disabled()
    await shoot(page, "18-cancelled")
    await page.context.close()


async def test_the_environment_list_pages_and_filters(standalone: Server) -> None:
    require_chromium()
    server = standalone
    carol = server.add_user("elsewhere", "carol")  # an organization of her own
    client = Client(server.http_url, server.ws_url, carol)
    try:
        for n in range(23):
            await create(client, shortName=f"c{n:02d}", fullName=f"Carol's number {n}")
    finally:
        await client.aclose()
    guard = Guard()
    async with async_playwright() as playwright:
        browser = await launch(playwright)
        try:
            page = await sign_in(browser, guard, f"http://127.0.0.1:{server.port}", carol)
            rows = page.locator("tbody tr")
            count = page.locator(".count")
            await expect(count).to_have_text("23 environments, page 1")
            await expect(rows).to_have_count(20)
            await expect(rows.first).to_contain_text("c00")
            await page.get_by_role("button", name="Next page").click()
            await expect(count).to_have_text("23 environments, page 2")
            await expect(rows).to_have_count(3)
            await expect(rows.first).to_contain_text("c20")
            await expect(page.get_by_role("button", name="Next page")).to_be_disabled()
            # a search from page 2 starts from the first page of what it finds
            await page.get_by_label("Search").fill("number 7")
            await expect(count).to_have_text("1 environment")
            await expect(rows).to_have_count(1)
            await page.get_by_label("Status").select_option(label="Published")
            await expect(page.get_by_text("No environment matches.")).to_be_visible()
        finally:
            await browser.close()
    assert guard.errors == [] and guard.failed == [] and guard.external == []


async def live_event(page: Page, client: Client, prefix: str) -> None:
    """An event appears on the events page as it happens (the server may register the
    page's subscription a moment after it asked: events are made until one arrives)."""
    for n in range(10):
        name = f"{prefix}{n}"
        await create(client, shortName=name, fullName=name)
        try:
            await expect(page.locator("ol.timeline")).to_contain_text(
                f"{name}: dave created it", timeout=1000
            )
            return
        except AssertionError:
            continue
    raise AssertionError(f"no event of {prefix}* arrived live")


async def test_live_updates_come_back_after_the_connection_drops(standalone: Server) -> None:
    require_chromium()
    server = standalone
    dave = server.add_user("third", "dave")
    client = Client(server.http_url, server.ws_url, dave)
    guard = Guard()
    try:
        async with async_playwright() as playwright:
            browser = await launch(playwright)
            try:
                page = await sign_in(browser, guard, f"http://127.0.0.1:{server.port}", dave)
                await page.get_by_role("link", name="Events").click()
                await expect(page.locator("ol.timeline")).to_be_attached()
                await live_event(page, client, "da")
                await guard.drop_websockets()
                paused = page.get_by_text("Live updates paused")
                await expect(paused).to_be_visible()
                await expect(paused).to_be_hidden(timeout=15_000)  # connected again
                await live_event(page, client, "db")
                # A new token for dave: the live connection, made again with the old one, is
                # refused, and the page signs out, saying why.
                token = await asyncio.to_thread(server.new_token, "third", "dave")
                await guard.drop_websockets()
                await expect(page.get_by_role("alert")).to_contain_text("Your session ended")
                assert await page.evaluate("sessionStorage.getItem('envyard.token')") is None
                # Signed in with the new one; then a newer one: a query is refused alike.
                await page.get_by_label("API token").fill(token)
                await page.get_by_role("button", name="Sign in").click()
                await expect(page.get_by_role("button", name="Sign out")).to_be_visible()
                await asyncio.to_thread(server.new_token, "third", "dave")
                await page.get_by_role("link", name="New Environment").click()
                await expect(page.get_by_role("alert")).to_contain_text("Your session ended")
                await expect(page.get_by_label("API token")).to_be_visible()
            finally:
                await browser.close()
    finally:
        await client.aclose()
    # the first connection, the two made again, and the new sign-in's (back on the events page)
    assert len(guard.websockets) == 4
    assert guard.errors == [] and guard.failed == [] and guard.external == []


async def test_the_live_log_in_every_mode(server: Server) -> None:
    """The build log as the page shows it, standalone on SQLite and PostgreSQL and from a
    Docker worker through Redis: live from the first line, and a window joining mid-build
    shows it from line 1 and follows it to the end."""
    require_chromium()
    origin = f"http://127.0.0.1:{server.port}"
    token = server.add_user("watchers", "lena")
    guard = Guard()
    async with async_playwright() as playwright:
        browser = await launch(playwright)
        try:
            page = await sign_in(browser, guard, origin, token)
            await page.get_by_role("link", name="New Environment").first.click()
            await page.get_by_label("Short name").fill("live")
            await page.get_by_label("Full name").fill("Followed live")
            await page.get_by_label("Pip libraries").fill("yard-sloth")  # its page takes 8 s
            await page.evaluate(RECORD_LOG)
            await page.get_by_role("button", name="Save and Build").click()
            log = page.locator("pre.log")
            await expect(log).to_contain_text("$ uv pip install", timeout=LIVE)
            late = await sign_in(browser, guard, origin, token)
            await late.goto(page.url)
            late_log = late.locator("pre.log")
            await expect(late_log).to_contain_text("$ uv pip install")
            assert (await late_log.text_content() or "").startswith("Build of live version 1")
            for window in (page, late):
                await expect(window.locator("pre.log")).to_contain_text(
                    "Build succeeded: version 1 is ready", timeout=LIVE
                )
                await ended_in(window)
            shown = await page.evaluate("window.envyardLog")
            installing = [t for t, text in shown if "$ uv pip install" in text]
            ended = [t for t, text in shown if "Build succeeded" in text]
            assert installing and ended and ended[0] - installing[0] > 2000, shown
            assert all(text.startswith("Build of live version 1 started") for _, text in shown)
        finally:
            await browser.close()
    assert guard.errors == [] and guard.failed == [] and guard.external == []

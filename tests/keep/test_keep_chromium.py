"""The keep flow as an owner lives it, in headless Chromium: open the link from the notice, see the device, reach the
Keep button with the keyboard, click it; the worker enables the device in the simulator and the audit log holds
the keep. Opening the link alone changes nothing. The page's text and button meet WCAG AAA contrast (7:1)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import azure.functions as func
import pytest
from aiohttp import web

from functions.keep import keep_link
from shared import bootstrap
from tests.keep.cdp import browser
from tests.keep.world import World, chain_intact, queued, records, set_env, start_world, work_queue

handler = keep_link.build().get_user_function()
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "keep"


@pytest.fixture
def world() -> Iterator[World]:
    yield from start_world()


@pytest.fixture
async def app_url(monkeypatch: pytest.MonkeyPatch, world: World) -> AsyncIterator[str]:
    """The Function behind a loopback HTTP server, the way the Functions host would call it."""

    async def serve(request: web.Request) -> web.Response:
        token = request.match_info["token"]
        answer = await handler(
            func.HttpRequest(
                method=request.method, url=str(request.url), body=await request.read(), route_params={"token": token},
                headers=dict(request.headers),
            )
        )
        return web.Response(status=answer.status_code, body=answer.get_body(), headers=dict(answer.headers),
                            content_type=answer.mimetype, charset=answer.charset)  # fmt: skip

    app = web.Application()
    app.router.add_route("*", "/api/keep/{token}", serve)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    url = f"http://127.0.0.1:{port}"
    set_env(monkeypatch, world, base_url=url)
    yield url
    await runner.cleanup()
    await bootstrap.close_shared()


def _luminance(rgb: str) -> float:
    values = [int(v) / 255 for v in rgb[rgb.index("(") + 1 : rgb.index(")")].split(",")[:3]]
    linear = [v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4 for v in values]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(foreground: str, background: str) -> float:
    light, dark = sorted((_luminance(foreground), _luminance(background)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


async def test_open_the_link_see_the_device_press_keep_and_it_is_enabled(
    world: World, app_url: str, chromium: str, tmp_path: Path
) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    link = f"{app_url}/api/keep/{world.token()}"
    async with browser(chromium, tmp_path / "profile") as page:
        await page.goto(link)
        text = await page.value("document.body.innerText")
        assert "Keep LAPTOP-ONLEAVE?" in text and "disabled by entra-janitor on" in text and "Kept until" in text
        assert await page.value("document.documentElement.lang") == "en"
        assert await page.value("document.title") == "Keep LAPTOP-ONLEAVE? entra-janitor"
        await page.screenshot(ARTIFACTS / "keep-confirm.png")
        # opening the link (twice, as a mail scanner and then the owner) changed nothing
        await page.goto(link)
        assert await records() == [] and await queued() == 0 and world.tenant.writes == []
        assert world.device()["accountEnabled"] is False

        # accessible: the button is reached with Tab, named by what it does, described, and readable (7:1)
        await page.key("Tab", "Tab", 9)
        focused = await page.value("[document.activeElement.id, document.activeElement.textContent, "
                                   "document.activeElement.getAttribute('aria-describedby')]")  # fmt: skip
        assert focused[0] == "keep" and focused[1].startswith("Keep this device until") and focused[2] == "keep-what"
        colours = await page.value(
            "(() => { const b = document.querySelector('#keep'), s = getComputedStyle(b), d = getComputedStyle(document.body);"
            " return [s.color, s.backgroundColor, d.color, d.backgroundColor]; })()"
        )
        assert contrast(colours[0], colours[1]) >= 7 and contrast(colours[2], colours[3]) >= 7

        await page.click("#keep")
        await page.wait_for("Page.loadEventFired")
        done = await page.value("document.body.innerText")
        assert "You kept LAPTOP-ONLEAVE" in done and "being enabled again" in done
        await page.screenshot(ARTIFACTS / "keep-done.png")

    [keep] = await records(kind="keep")
    assert keep.entry.decision == "acted" and keep.entry.actor == world.owner.user_principal_name
    assert await work_queue() == 1
    device = world.device()
    assert device["accountEnabled"] is True and device["extensionAttributes"]["extensionAttribute15"] is None
    assert await chain_intact()

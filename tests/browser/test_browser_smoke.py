"""The whole chain of the browser tests works: Debian's Chromium, driven by Playwright, reaches
the local platform (``python -m local.platform``) and reads what it serves."""

from __future__ import annotations

import json

from playwright.sync_api import Page

from tests.browser.conftest import Platform, Shots


def test_the_browser_reads_the_apis_openapi_document(
    platform: Platform, page: Page, shots: Shots
) -> None:
    response = page.goto(f"{platform.url}/openapi.json")

    assert response is not None
    assert response.status == 200, platform.output()
    shots.save(page, "openapi", full_page=False)  # the whole document is 12,000 px tall, 8 s
    # Chromium shows a JSON document as text (its "pretty-print" control is no page text)
    document = json.loads(page.locator("body").inner_text())
    assert document["openapi"].startswith("3")
    assert "/subscriptions" in document["paths"]


def test_a_path_the_api_does_not_have_answers_404(platform: Platform, page: Page) -> None:
    response = page.goto(f"{platform.url}/no-such-path")

    assert response is not None
    assert response.status == 404

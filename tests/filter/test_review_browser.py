"""The review page in a real browser (headless Debian Chromium driven by Playwright): keyboard
accept/reject, decisions on disk, and the page showing them after a reload.

Issue 5."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from syrip_gen.filter import FilterConfig, filter_dataset
from syrip_gen.review.decisions import decisions_path, load_decisions
from syrip_gen.review.server import make_server, serve_in_thread, url_of
from helpers.filter_fixtures import skeleton_2d_samples, write_dataset

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
INSTALL = Path(__file__).resolve().parents[2] / "scripts" / "install_browser.sh"


def _chromium() -> str:
    if not os.path.exists(CHROMIUM) and INSTALL.exists():
        subprocess.run(["bash", str(INSTALL)], check=False, timeout=600)
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing and scripts/install_browser.sh could not install it "
                    "(needs root and Debian's apt); the review page's browser test cannot run")
    pytest.importorskip("playwright.sync_api", reason="python package playwright not installed (dev extra)")
    return CHROMIUM


@pytest.fixture()
def browser_page():
    exe = _chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=ARGS)
        page = browser.new_page(viewport={"width": 1100, "height": 760})
        yield page
        browser.close()


def test_keyboard_review_survives_reload(tmp_path, browser_page):
    root = tmp_path / "ds"
    samples = skeleton_2d_samples(9)
    samples[6] = dict(samples[6], t=samples[6]["t"] + [1.0, 0, 0])  # mostly out of frame
    samples[6]["kp3d"] = samples[6]["kp3d"] + [1.0, 0, 0]
    write_dataset(root, samples)
    filter_dataset(root, FilterConfig(gates=("out_of_frame", "few_visible", "too_small")))
    server = make_server(root, port=0)
    serve_in_thread(server)
    page = browser_page
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(url_of(server))
        page.wait_for_selector("body[data-ready='1']")
        assert page.locator(".card").count() == 9
        assert page.locator(".card svg line").count() > 9 * 10  # skeleton overlays drawn
        assert page.locator(".badge.auto-reject").count() == 1  # the filter's verdict is shown
        page.keyboard.press("a")  # accept image 1, move on
        page.wait_for_selector(".card[data-image-id='1'][data-decision='accept']")
        page.keyboard.press("ArrowRight")  # skip image 2
        page.keyboard.press("r")  # reject image 3
        page.wait_for_selector(".card[data-image-id='3'][data-decision='reject']")
        page.keyboard.press("r")  # reject image 4 ...
        page.wait_for_selector(".card[data-image-id='4'][data-decision='reject']")
        page.keyboard.press("u")  # ... and undo it
        page.wait_for_selector(".card[data-image-id='4'][data-decision='']")
        saved = load_decisions(decisions_path(root))
        assert {k: v["decision"] for k, v in saved.items()} == {"1": "accept", "3": "reject"}
        page.screenshot(path=str(tmp_path / "review.png"))
        if os.environ.get("SYRIP_GEN_SCREENSHOT"):
            shutil.copy(tmp_path / "review.png", os.environ["SYRIP_GEN_SCREENSHOT"])

        page.reload()
        page.wait_for_selector("body[data-ready='1']")
        assert page.locator(".card[data-image-id='1']").get_attribute("data-decision") == "accept"
        assert page.locator(".card[data-image-id='3']").get_attribute("data-decision") == "reject"
        assert page.locator(".card[data-image-id='2']").get_attribute("data-decision") == ""
        assert "accepted 1" in page.inner_text("#counts") and "rejected 1" in page.inner_text("#counts")
        assert json.loads(decisions_path(root).read_text())["version"] == 1
        assert not errors, errors
    finally:
        server.shutdown()
        server.server_close()

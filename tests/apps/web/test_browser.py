"""End to end in a real browser: Debian's headless Chromium driven by Playwright against ``cdp serve``'s app
on the test lake. A marketer signs in, browses the tag catalog, builds an audience from two groups of
conditions and sees its estimate, saves it, opens its page (versions, TGI, ID-type coverage, overlap, a
lookalike with its evaluation), exports a pack and downloads the zip; an analyst runs SQL and an admin
reads the audit log. A screenshot of every page is saved in the folder the test prints
(``CDP_WEB_ARTIFACTS`` or ``<tmp>/cdp-web-artifacts``)."""

from __future__ import annotations

import io
import os
import re
import shutil
import socket
import tempfile
import threading
import time
import zipfile
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.e2e]
CHROMIUM = os.environ.get("CDP_CHROMIUM", "/usr/bin/chromium")


def _need_browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    missing = "playwright is not installed" if sync_playwright is None else None
    if missing is None and not Path(CHROMIUM).exists():
        missing = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    if missing:
        # Never skipped: .ci/run installs Debian's chromium; on a laptop, apt-get install chromium.
        pytest.fail(f"the browser test needs a browser: {missing}")
    return sync_playwright


@pytest.fixture(scope="module")
def artifacts() -> Path:
    folder = Path(os.environ.get("CDP_WEB_ARTIFACTS") or Path(tempfile.gettempdir()) / "cdp-web-artifacts")
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    print(f"\nweb UI screenshots and the downloaded pack: {folder}")
    return folder


@pytest.fixture(scope="module")
def server(web_lake):
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(web_lake.app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


def wait_until(page, expression: str, timeout: float = 30000) -> None:
    """Poll a JavaScript expression from Python until it is truthy. Not ``page.wait_for_function``: that
    evaluates the string inside the page, which the app's Content-Security-Policy (no eval) forbids."""
    deadline = time.monotonic() + timeout / 1000
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"timed out waiting for {expression}"
        time.sleep(0.1)


def test_marketer_builds_estimates_exports_and_downloads(web_lake, server, artifacts) -> None:
    sync_playwright = _need_browser()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            context = browser.new_context(viewport={"width": 1360, "height": 1000}, accept_downloads=True)
            # Offline: any request leaving the service (a CDN, fonts) fails the test.
            outside: list[str] = []
            context.route(
                re.compile(r"^(?!http://127\.0\.0\.1)"),
                lambda route: (outside.append(route.request.url), route.abort()),
            )
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            shot = lambda name: page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)  # noqa: E731

            page.goto(server + "/")
            page.wait_for_selector("#login:not([hidden])")
            page.fill("[data-testid=token]", "cdp_wrong")
            page.click("[data-testid=login]")
            page.wait_for_selector("#login-error:not([hidden])")
            assert "token" in page.inner_text("#login-error")
            shot("01_login_refused")
            page.fill("[data-testid=token]", web_lake.tokens["marketer"])
            page.click("[data-testid=login]")

            # Tag catalog: search in Chinese, open a tag, see its distribution chart.
            page.wait_for_selector("[data-testid=tag-table] tr[data-tag]")
            page.fill("[data-testid=tag-search]", "性别")
            page.wait_for_selector("tr[data-tag=age]", state="detached")
            assert page.locator("tr[data-tag=gender]").count() == 1
            page.click("tr[data-tag=gender]")
            page.wait_for_selector("[data-testid=tag-distribution] svg rect")
            page.select_option("[data-testid=layer-filter]", "raw")
            wait_until(
                page,
                "[...document.querySelectorAll('[data-testid=tag-table] .pill')]"
                ".every(p => p.textContent === 'raw')",
            )
            shot("02_tag_catalog")

            # Audience builder: gender = F OR (age >= 30 AND points > 0) ... estimate updates live.
            page.click("nav a[data-page=builder]")
            page.wait_for_selector("[data-testid=cond-tag]")
            page.select_option("[data-testid=cond-tag] >> nth=0", "gender")
            page.select_option("[data-testid=cond-op] >> nth=0", "=")
            page.fill("[data-testid=cond-value] >> nth=0", "F")
            estimate = page.locator("[data-testid=estimate]")
            wait_until(
                page,
                "document.querySelector('[data-testid=estimate]').textContent.match(/[0-9]/)",
                timeout=15000,
            )
            first = int(re.sub(r"\D", "", estimate.inner_text()))
            started = time.perf_counter()
            page.click("[data-testid=add-group]")
            page.select_option("[data-testid=cond-tag] >> nth=1", "age")
            page.select_option("[data-testid=cond-op] >> nth=1", ">=")
            page.fill("[data-testid=cond-value] >> nth=1", "30")
            page.select_option("[data-testid=top-join]", "any")
            wait_until(
                page,
                f"(() => {{ const t = document.querySelector('[data-testid=estimate]').textContent;"
                f" const n = parseInt(t.replace(/\\D/g, '')); return n > {first}; }})()",
                timeout=15000,
            )
            seconds = time.perf_counter() - started
            widened = int(re.sub(r"\D", "", estimate.inner_text()))
            print(f"estimate after the last edit shown in {seconds:.2f} s (incl. 250 ms debounce): {widened}")
            assert "ms" in page.inner_text("[data-testid=estimate-note]")
            shot("03_builder_estimate")
            page.fill("[data-testid=audience-name]", "Browser women or 30+")
            page.click("[data-testid=save-audience]")

            # Audience page: versions, size over time, insight (TGI) and ID-type coverage, lookalike slider.
            page.wait_for_url(re.compile(r"#/audience/browser_women_or_30"))
            page.wait_for_selector("[data-testid=versions] td")
            page.wait_for_selector("[data-testid=tgi-chart] svg rect", timeout=60000)
            page.wait_for_selector("[data-testid=idtype-chart] svg rect")
            page.fill("[data-testid=lookalike-slider]", "100")
            assert re.fullmatch(
                r"\d+ people \(0\.\d× seed\)", page.inner_text("[data-testid=lookalike-size]")
            )
            other = page.locator("[data-testid=overlap-other] option").first.get_attribute("value")
            page.select_option("[data-testid=overlap-other]", other)
            page.click("[data-testid=overlap-run]")
            page.wait_for_selector("[data-testid=overlap-result] dl")
            page.click("[data-testid=lookalike-run]")
            page.wait_for_selector("[data-testid=lookalike-evaluation]", timeout=180_000)
            assert "lookalike" in page.inner_text("[data-testid=lookalike-result]").lower()
            shot("04_audience_page")

            # Edit the rule in the builder and save it as version 2 of the same audience.
            page.click("[data-testid=edit-rule]")
            page.wait_for_selector("[data-testid=cond-value] >> nth=1")
            assert page.input_value("[data-testid=cond-value] >> nth=1") == "30"
            assert page.input_value("[data-testid=top-join]") == "any"
            page.fill("[data-testid=cond-value] >> nth=1", "40")
            wait_until(
                page, "document.querySelector('[data-testid=estimate-note]').textContent.includes('ms')"
            )
            assert "v2" in page.inner_text("[data-testid=save-audience]")
            page.click("[data-testid=save-audience]")
            page.wait_for_selector("[data-testid=versions] tr >> nth=2")
            assert "v2" in page.inner_text("[data-testid=versions]")

            page.click("nav a[data-page=audiences]")
            page.wait_for_selector("[data-testid=audience-table] td")
            shot("05_audiences")

            # Packs: destination and ID types, export, manifest, download the zip.
            page.goto(server + "/#/packs?audience=browser_women_or_30")
            page.wait_for_selector("[data-testid=pack-destination]")
            page.select_option("[data-testid=pack-destination]", "tencent")
            assert page.is_disabled("[data-testid=idtype-wechat_openid]")  # raw openids: admins only
            page.uncheck("[data-testid=idtype-imei]")
            page.click("[data-testid=export]")
            page.wait_for_selector("[data-testid=manifest-people]", timeout=60000)
            people = int(re.sub(r"\D", "", page.inner_text("[data-testid=manifest-people]")))
            assert people >= 50
            with page.expect_download() as info:
                page.click("[data-testid=download-manifest-pack]")
            target = artifacts / info.value.suggested_filename
            info.value.save_as(target)
            shot("06_packs_export")
            with zipfile.ZipFile(target) as bundle:
                assert "manifest.json" in bundle.namelist()
                inner = next(n for n in bundle.namelist() if "hash_mobile_phone" in n)
                with zipfile.ZipFile(io.BytesIO(bundle.read(inner))) as ids:
                    lines = ids.read(ids.namelist()[0]).decode().split()
            assert lines and all(re.fullmatch(r"[0-9a-f]{32}", x) for x in lines)

            # Bad input shows a reason on the page, not a crash.
            page.click("nav a[data-page=builder]")
            page.wait_for_selector("[data-testid=cond-tag]")
            page.select_option("[data-testid=cond-tag] >> nth=0", "age")
            page.fill("[data-testid=cond-value] >> nth=0", "old")
            wait_until(
                page, "document.querySelector('[data-testid=estimate-note]').classList.contains('error')"
            )
            assert "numeric" in page.inner_text("[data-testid=estimate-note]")
            shot("07_builder_bad_input")

            # An analyst runs SQL; an admin reads the audit log with the export and the download.
            page.click("[data-testid=logout]")
            page.fill("[data-testid=token]", web_lake.tokens["analyst"])
            page.click("[data-testid=login]")
            page.wait_for_selector("nav a[data-page=sql]:not(.hidden)")
            page.click("nav a[data-page=sql]")
            page.fill(
                "[data-testid=sql-text]", "SELECT id_type, count(*) AS n FROM gold.oneid_map GROUP BY 1"
            )
            page.click("button:text-is('Run')")
            page.wait_for_selector("#page table.list td")
            shot("08_sql_analyst")
            page.click("[data-testid=logout]")
            page.fill("[data-testid=token]", web_lake.tokens["admin"])
            page.click("[data-testid=login]")
            page.click("nav a[data-page=audit]")
            page.wait_for_selector("[data-testid=audit-table] td")
            audit = page.inner_text("[data-testid=audit-table]")
            assert "pack_export" in audit and "pack_download" in audit
            shot("09_audit_admin")
            assert errors == [] and outside == []
        finally:
            browser.close()
    assert len(list(artifacts.glob("*.png"))) == 9

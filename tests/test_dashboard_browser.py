"""The dashboard as a person sees it: Debian's Chromium driven by Playwright, pages opened from disk
(file://) and from the live server, numbers checked against summary.json, XSS payloads inert.

One browser for the whole module; the site is built once from a real demo run, a Harbor
fixture, a hostile job and a big trial. Without /usr/bin/chromium (apt-get install chromium)
the module is skipped, unless TRIALBOOK_REQUIRE_BROWSER=1 makes that a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from dashboard_trees import (
    HOSTILE_VARIANT,
    JOB_DIR,
    PAYLOADS,
    TRIAL_DIRS,
    write_big_job,
    write_hostile_job,
    write_live_job,
)

from trialbook.app.show import show_path
from trialbook.dashboard import resolve_site
from trialbook.dashboard.jobpage import job_id, trial_id

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
HARBOR = Path(__file__).parent / "fixtures" / "harbor" / "jobs"

if not Path(CHROMIUM).exists() and os.environ.get("TRIALBOOK_REQUIRE_BROWSER") != "1":
    pytest.skip("Chromium is not installed (apt-get install chromium)", allow_module_level=True)
if os.environ.get("TRIALBOOK_REQUIRE_BROWSER") == "1":
    from playwright import sync_api
else:
    sync_api = pytest.importorskip("playwright.sync_api")


def _cli(*args: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "trialbook.cli.main", *args, "--json"],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A demo block (a real run) with SFT data, plus a Harbor fixture, a hostile and a big job."""
    base = tmp_path_factory.mktemp("dash")
    demo = _cli("demo", str(base / "demo"))
    block = Path(demo["block"])
    _cli("convert", "--all", "--block", str(block))
    others = base / "others"
    hostile = write_hostile_job(others)
    big = write_big_job(others)
    built = _cli("dashboard", "--block", str(block), str(HARBOR), str(others))
    return {"demo": demo, "block": block, "built": built, "root": Path(built["site"]),
            "demo_job": Path(demo["job_dir"]), "hostile": hostile, "big": big}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    pg.set_default_timeout(15000)
    pg.dialogs = []  # type: ignore[attr-defined]
    pg.errors = []  # type: ignore[attr-defined]
    pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    yield pg
    context.close()


def _open(pg: Any, site: dict[str, Any], route: str = "") -> None:
    pg.goto(f"file://{site['root']}/index.html{route}")
    pg.wait_for_selector("body[data-ready]")
    assert pg.get_attribute("body", "data-ready") != "error", pg.inner_text("main")


def _wait_route(pg: Any, name: str) -> None:
    pg.wait_for_selector(f"body[data-ready='{name}']")


def _cell(pg: Any, table: str, row_text: str, col: str) -> str:
    row = pg.locator(f"table[data-table='{table}'] tbody tr", has_text=row_text).first
    return row.locator(f"td[data-col='{col}']").inner_text().strip()


def _until(check: Any, timeout: float = 20.0) -> None:
    """Poll ``check()`` until true (the site's CSP forbids the eval behind page.wait_for_function)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _rate(v: float | None) -> str:
    return "—" if v is None else f"{v:.3f}"


def test_demo_ends_by_building_the_dashboard(site: dict[str, Any]) -> None:
    index = Path(site["demo"]["dashboard"])
    assert index.is_file() and index == site["block"] / "dashboard" / "site" / "index.html"
    assert site["built"]["jobs"] == 4 and site["built"]["warnings"] == []


def test_jobs_page_shows_every_layout_with_summary_numbers(site: dict[str, Any], page: Any) -> None:
    _open(page, site)
    summary = json.loads((site["demo_job"] / "summary.json").read_text())
    assert _cell(page, "jobs", "demo", "n_trials") == str(summary["n_trials"])
    assert _cell(page, "jobs", "demo", "success_rate") == _rate(summary["overall_success_rate"])
    assert _cell(page, "jobs", "mixed-agents", "layout") == "harbor"
    assert _cell(page, "jobs", "big-job", "layout") == "native"
    # filtering and sorting happen in the page
    page.fill("input[type=search]", "mixed")
    assert page.locator("table[data-table='jobs'] tbody tr").count() == 1
    page.fill("input[type=search]", "")
    page.click("table[data-table='jobs'] th[data-col='n_trials']")
    first = page.locator("table[data-table='jobs'] tbody tr").first.locator("td[data-col='n_trials']").inner_text()
    assert first == "1"  # the big job: fewest trials first
    assert page.dialogs == [] and page.errors == []


def _check_job_page(page: Any, summary: dict[str, Any]) -> None:
    assert page.inner_text("[data-stat='n_trials'] .value") == str(summary["n_trials"])
    assert page.inner_text("[data-stat='overall_success_rate'] .value") == _rate(summary["overall_success_rate"])
    assert page.inner_text("[data-stat='failures'] .value") == str(summary["failures"])
    for v in summary["variants"]:
        name = v["variant"]
        row = page.locator("table[data-table='variants'] tbody tr").filter(
            has=page.locator("td[data-col='variant']", has_text=name)).first
        assert row.locator("td[data-col='n_trials']").inner_text() == str(v["n_trials"])
        assert row.locator("td[data-col='n_success']").inner_text() == str(v["n_success"])
        assert row.locator("td[data-col='success_rate']").inner_text() == _rate(v["success_rate"])
        assert row.locator("td[data-col='n_errors']").inner_text() == str(v["n_errors"])
        for k, p in v["pass_at_k"].items():
            assert row.locator(f"td[data-col='pass@{k}']").inner_text() == _rate(p)
    assert page.locator("table.matrix a.att").count() == summary["n_trials_listed"]  # one square per trial


def test_demo_job_page_equals_summary_json(site: dict[str, Any], page: Any) -> None:
    _open(page, site, f"#/job/{job_id(str(site['demo_job']))}")
    _check_job_page(page, json.loads((site["demo_job"] / "summary.json").read_text()))
    page.wait_for_selector("body[data-plotted='job']")
    assert page.locator(".plot .main-svg").count() >= 3  # pass@k, outcomes, errors drawn by plotly
    assert page.dialogs == [] and page.errors == []


def test_harbor_job_page_equals_its_summary(site: dict[str, Any], page: Any) -> None:
    job = HARBOR / "mixed-agents"
    summary = show_path(job, write=False)[0].summary
    _open(page, site, f"#/job/{job_id(str(job.resolve()))}")
    _check_job_page(page, summary)
    # a trial of an LLM agent: its steps, tool calls and tokens
    trial = job / "fix-add__4uhAZyo"
    steps = json.loads((trial / "agent" / "trajectory.json").read_text())["steps"]
    page.click(f"a[href='#/trial/{job_id(str(job.resolve()))}/{trial_id(str(trial.resolve()))}']")
    _wait_route(page, "trial")
    assert page.locator(".step").count() == len(steps)
    assert page.locator(".call .name").count() == sum(len(s.get("tool_calls") or []) for s in steps)
    result = json.loads((trial / "result.json").read_text())
    assert page.inner_text("[data-stat='outcome'] .badge") == "unresolved"
    assert result["verifier_result"]["rewards"]["reward"] == 0
    assert page.locator("[data-file='Test output'] pre").count() == 1


def test_click_through_every_page(site: dict[str, Any], page: Any) -> None:
    _open(page, site)
    page.click("table[data-table='jobs'] a:text-is('demo')")
    _wait_route(page, "job")
    page.locator("table.matrix a.att.o-resolved").first.click()
    _wait_route(page, "trial")
    assert page.inner_text("[data-stat='outcome'] .badge") == "resolved"
    assert page.locator("[data-file='Test output']").count() == 1
    page.wait_for_selector("body[data-plotted='trial']")
    assert page.locator(".plot .main-svg").count() >= 1  # the timeline
    page.go_back()
    _wait_route(page, "job")
    page.click("a[data-link='analysis']")
    _wait_route(page, "analysis")
    assert page.locator("h2", has_text="Failure distributions").count() == 1
    assert page.locator("table.data").count() > 5
    page.go_back()
    _wait_route(page, "job")
    page.click("a[data-link='compare']")
    _wait_route(page, "compare")
    assert page.inner_text("[data-stat='gained'] .value") == "4"  # oracle solves 4 tasks nop never does
    page.click("nav a[data-nav='sft']")
    _wait_route(page, "sft")
    stats = json.loads(next((site["block"] / "artifacts" / "sft_data").glob("*/lf.stats.json")).read_text())
    assert page.inner_text("[data-stat='in'] .value") == str(stats["trajectories"]["in"])
    assert page.inner_text("[data-stat='kept'] .value") == str(stats["trajectories"]["kept"])
    page.click("nav a[data-nav='archives']")
    _wait_route(page, "archives")
    history = yaml.safe_load((site["block"] / "artifacts" / "index.yaml").read_text())["runs"]
    assert _cell(page, "archives", "demo", "success_rate") == _rate(history[0]["results"]["success_rate"])
    assert _cell(page, "archives", "demo", "n_trials") == str(history[0]["results"]["n_trials"])
    assert page.dialogs == [] and page.errors == []


def test_xss_payloads_stay_text(site: dict[str, Any], page: Any) -> None:
    hostile = site["hostile"]
    jid = job_id(str(hostile))
    routes = ["", f"#/job/{jid}", f"#/compare?a={jid}.0&b={job_id(str(site['demo_job']))}.0"]
    routes += [f"#/trial/{jid}/{trial_id(str(hostile / d))}" for d in TRIAL_DIRS]
    for route in routes:
        _open(page, site, route)
        page.wait_for_selector("body[data-plotted]")
        for details in page.locator("details").all():
            details.locator("summary").click()
        injected = page.evaluate("""() => ({
            img: document.querySelectorAll('img').length,
            inline: document.querySelectorAll('script:not([src])').length,
            handlers: document.querySelectorAll('[onerror],[onload],[onclick],[onmouseover]').length,
            links: Array.from(document.querySelectorAll('a[href]')).filter(a => !a.getAttribute('href').startsWith('#')).length,
            frames: document.querySelectorAll('iframe,object,embed').length,
            svgScript: document.querySelectorAll('svg script').length})""")
        assert injected == {"img": 0, "inline": 0, "handlers": 0, "links": 0, "frames": 0, "svgScript": 0}, route
    text = page.inner_text("main")
    for payload in (PAYLOADS["script"], PAYLOADS["img"], PAYLOADS["svg"], PAYLOADS["js"], HOSTILE_VARIANT):
        assert payload in text  # shown, as text
    assert JOB_DIR in page.inner_text(".crumbs")
    assert page.dialogs == [] and page.errors == []


def test_a_big_trajectory_is_cut_and_paged(site: dict[str, Any], page: Any) -> None:
    big = site["big"]
    _open(page, site, f"#/trial/{job_id(str(big))}/{trial_id(str(big / 'huge__1'))}")
    assert page.locator(".step").count() == 100
    page.click("button:text-is('show more steps')")
    _until(lambda: page.locator(".step").count() == 300)
    huge = page.locator(".step[data-step='2'] .obs pre").first
    before = len(huge.inner_text())
    page.locator(".step[data-step='2'] button:text-is('show more')").click()
    _until(lambda: len(huge.inner_text()) > before)
    assert page.errors == []


def test_compare_intervals_match_published_values(site: dict[str, Any], page: Any) -> None:
    _open(page, site, "#/compare")
    # Newcombe (1998), Statistics in Medicine 17:873, table II: 56/70 vs 48/80 -> 0.2 (0.0524, 0.3339)
    got = page.evaluate("TB.stats.newcombe(48, 80, 56, 70)")
    assert round(got["delta"], 4) == 0.2 and round(got["low"], 4) == 0.0524 and round(got["high"], 4) == 0.3339
    # t quantiles: table values, then the expansion (df = 60: 2.000)
    assert page.evaluate("TB.stats.t975(10)") == 2.228 and abs(page.evaluate("TB.stats.t975(60)") - 2.000) < 2e-3


def test_live_server_shows_a_running_job_progress(tmp_path: Path, page: Any) -> None:
    from trialbook.dashboard.serve import serve

    root = tmp_path / "jobs"
    write_live_job(root, finished=1)
    spec = resolve_site(None, [root], tmp_path / "site")
    stop, ready = threading.Event(), []
    thread = threading.Thread(target=serve, kwargs={"spec": spec, "port": 0, "interval": 0.3, "stop": stop,
                                                    "on_ready": ready.append}, daemon=True)
    thread.start()
    try:
        page.wait_for_timeout(100)
        for _ in range(100):
            if ready:
                break
            page.wait_for_timeout(100)
        import urllib.request
        with urllib.request.urlopen(ready[0] + "index.html") as resp:
            assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
        page.goto(ready[0] + "#/")
        page.wait_for_selector("body[data-ready='jobs']")
        assert "1/4" in _cell(page, "jobs", "live-job", "status")
        write_live_job(root, finished=3)  # two more trials finish while the page is open
        _until(lambda: "3/4" in _cell(page, "jobs", "live-job", "status"))
        assert _cell(page, "jobs", "live-job", "n_trials") == "3"
    finally:
        stop.set()
        thread.join(10)
    shutil.rmtree(tmp_path / "site", ignore_errors=True)

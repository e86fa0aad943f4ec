"""Regenerate the dashboard screenshots of the README (docs/img/dashboard-*.png).

Runs the demo in a temporary directory, converts its job to SFT data, builds the dashboard
with the Harbor test fixture beside it, and photographs each page in the system's Chromium.

Usage: python docs/img/make_screenshots.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from trialbook.dashboard.jobpage import job_id, trial_id

HERE = Path(__file__).resolve().parent
HARBOR = HERE.parents[1] / "tests" / "fixtures" / "harbor" / "jobs"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def cli(*args: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "trialbook.cli.main", *args, "--json"],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        demo = cli("demo", str(Path(tmp) / "demo"))
        cli("convert", "--all", "--block", demo["block"])
        site = Path(cli("dashboard", "--block", demo["block"], str(HARBOR))["site"])
        demo_job = job_id(demo["job_dir"])
        harbor_job = HARBOR / "mixed-agents"
        trial = trial_id(str(harbor_job / "fix-add__4uhAZyo"))
        pages = {
            "jobs": "", "job": f"#/job/{demo_job}", "trial": f"#/trial/{job_id(str(harbor_job))}/{trial}",
            "analysis": f"#/analysis/{demo_job}", "compare": f"#/compare?a={demo_job}.0&b={demo_job}.1",
            "sft": "#/sft", "archives": "#/archives",
        }
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            for name, route in pages.items():
                page.goto(f"file://{site}/index.html{route}")
                page.wait_for_selector("body[data-plotted]", timeout=60000)
                page.wait_for_timeout(300)
                page.screenshot(path=str(HERE / f"dashboard-{name}.png"))
                print(HERE / f"dashboard-{name}.png")
            browser.close()


if __name__ == "__main__":
    main()

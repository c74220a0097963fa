#!/usr/bin/env python3
"""The README's report screenshot: the report of the README's "Compare two models on a whole
dataset" comparison (the same `prefeval compare` command, then `prefeval report`), opened in
headless Chromium and saved as docs/report-hh-rlhf.png (the whole page in a viewport 1200 px wide).

    python3 scripts/screenshot-report.py [PREFEVAL_BINARY]

The binary defaults to target/release/prefeval. Needs Debian's chromium and Playwright
(scripts/install-test-tools). SOURCE_DATE_EPOCH is fixed, so a rerun writes the same report bytes;
the report is kept beside the PNG's run in a temporary directory only.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

REPO = Path(__file__).resolve().parents[1]
OUTPUT = REPO / "docs" / "report-hh-rlhf.png"
# The day the screenshot was first made (2026-12-03): the report's date row, fixed.
SOURCE_DATE_EPOCH = "1796256000"
WIDTH, HEIGHT = 1200, 900
TIMEOUT_MS = 30_000

COMPARE = [
    "compare", str(REPO / "examples/compare/hh-rlhf-scored.jsonl.gz"), "--models", "length,length-penalized",
    "--format", "pairs", "--unknown-fields", "ignore", "--normalization", "comparisons", "--beta", "0.01",
    "--fields", "chosen_rewards:chosen_scores,rejected_rewards:rejected_scores,"
    "chosen_length:chosen_chars,rejected_length:rejected_chars",
    "-o", "compare.out.ndjson",
]  # fmt: skip
REPORT = ["report", "compare.out.ndjson", "-o", "report.html"]


def main() -> int:
    binary = Path(sys.argv[1] if len(sys.argv) > 1 else REPO / "target" / "release" / "prefeval").resolve()
    environment = dict(os.environ, SOURCE_DATE_EPOCH=SOURCE_DATE_EPOCH)
    with tempfile.TemporaryDirectory(prefix="prefeval-screenshot.") as work:
        for command in (COMPARE, REPORT):
            subprocess.run([str(binary), *command], cwd=work, env=environment, check=True, timeout=120)
        report = Path(work) / "report.html"
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"),
                args=["--no-sandbox"],  # as root, Chromium's sandbox does not start
                timeout=TIMEOUT_MS,
            )
            try:
                page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT}, device_scale_factor=1)
                page.goto(report.as_uri(), wait_until="load", timeout=TIMEOUT_MS)
                # The whole page, wider than the viewport where a table is.
                page.screenshot(path=str(OUTPUT), full_page=True, timeout=TIMEOUT_MS)
            finally:
                browser.close()
    print(f"{OUTPUT.relative_to(REPO)}: {OUTPUT.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())

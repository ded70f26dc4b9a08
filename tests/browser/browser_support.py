"""Where the browser is and how it is started (shared by the conftest and the tests of this folder)."""

import os

CHROMIUM = os.environ.get("ZHIZAO_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

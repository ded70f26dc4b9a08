"""Browser tests: Playwright driving Debian's Chromium (/usr/bin/chromium), headless, against a server on
loopback. Skipped, with the reason, when Playwright or the browser is missing."""

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests/: test_server_support
sys.path.insert(0, str(HERE))  # browser_support

from browser_support import CHROMIUM  # noqa: E402


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).resolve().parent
    reason = None
    if not Path(CHROMIUM).exists():
        reason = f"no Chromium at {CHROMIUM} (apt-get install -y chromium)"
    else:
        try:
            import playwright  # noqa: F401
        except ImportError:
            reason = "the playwright Python package is not installed"
    if reason:
        for item in items:
            if Path(str(item.fspath)).resolve().parent == here:
                item.add_marker(pytest.mark.skip(reason=reason))

"""``python -m zhizao.server --db PATH --host 127.0.0.1 --port 8000``: the same as ``zhizao serve``."""

import argparse

from zhizao.server import serve

p = argparse.ArgumentParser(prog="python -m zhizao.server", description=__doc__)
p.add_argument("--db", default="zhizao.duckdb")
p.add_argument("--host", default="127.0.0.1")
p.add_argument("--port", type=int, default=8000)
p.add_argument("--max-upload-mb", type=float, default=200)
p.add_argument("--no-warm", action="store_true")
p.add_argument("--log-level", default="info")
a = p.parse_args()
serve(a.db, a.host, a.port, a.max_upload_mb, not a.no_warm, log_level=a.log_level)

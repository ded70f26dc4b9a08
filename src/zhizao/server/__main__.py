"""``python -m zhizao.server --db PATH --host 127.0.0.1 --port 8000``: the same as ``zhizao serve``."""

import argparse

from zhizao.server import CACHE_MB, FRESH_WAIT, serve

p = argparse.ArgumentParser(prog="python -m zhizao.server", description=__doc__)
p.add_argument("--db", default="zhizao.duckdb")
p.add_argument("--host", default="127.0.0.1")
p.add_argument("--port", type=int, default=8000)
p.add_argument("--max-upload-mb", type=float, default=200)
p.add_argument("--no-warm", action="store_true")
p.add_argument("--log-level", default="info")
p.add_argument("--fresh-wait", type=float, default=FRESH_WAIT)
p.add_argument("--always-fresh", action="store_true")
p.add_argument("--cache-mb", type=float, default=CACHE_MB)
p.add_argument("--slots", type=int, default=None, help="requests computed at once (0: all)")
p.add_argument("--slot-patience", type=float, default=None, help="seconds a request holds its slot at most")
p.add_argument("--mqtt", action="append", default=[], help="HOST:PORT of an MQTT broker (repeatable)")
p.add_argument("--mqtt-prefix", default="zhizao/v1")
a = p.parse_args()
if a.slots is not None and not 0 <= a.slots <= 1024:  # (as zhizao serve's)
    p.error(f"--slots must be at least 0 and at most 1024, not {a.slots}")
if a.slot_patience is not None and not 0.001 <= a.slot_patience <= 3600:
    p.error(f"--slot-patience must be at least 0.001 and at most 3600 (s), not {a.slot_patience}")
if not 1 <= a.cache_mb <= 2**20:  # as zhizao serve's --cache-mb (min 1): a smaller cache keeps nothing
    p.error(f"--cache-mb must be at least 1 and at most 1048576 (MiB), not {a.cache_mb}")
live = []
for b in a.mqtt:
    from zhizao.live import parse_broker
    from zhizao.server.live import MqttSource

    live.append(MqttSource(*parse_broker(b), prefix=a.mqtt_prefix))
serve(a.db, a.host, a.port, a.max_upload_mb, not a.no_warm, log_level=a.log_level,
      fresh_wait=None if a.always_fresh else a.fresh_wait, live=live, cache_mb=a.cache_mb, slots=a.slots,
      slot_patience=a.slot_patience)

"""The MQTT topic namespace and JSON payloads of live records.

Topic namespace (ISA-95 levels, then the canonical table)::

    zhizao/v1/<enterprise>/<site>/<area>/<work_center>/<equipment>/<table>

``zhizao/v1`` is the default prefix (``--prefix``). A level may be ``_`` when it does not apply (for example
site-level calendar entries: ``zhizao/v1/E1/S1/_/_/_/calendar``). The payload is UTF-8 JSON: one canonical
record (an object with canonical column names) or an array of them. Values are JSON strings, numbers,
booleans or null; time stamps are ISO 8601 strings (with offset, or naive in the equipment's zone), exactly
as in canonical CSV files.

For the tables whose records belong to one machine (:data:`SUBJECT_TABLES`), the topic's equipment fills a
missing ``equipment_id`` (energy and quality records that name a ``scope`` instead are left alone), and a
record naming another equipment is rejected (``topic_mismatch``). Records of ``equipment`` also take their
missing hierarchy levels from the topic.

This module is pure: no network, no store. Payloads are decoded and checked in the store, in bulk, by
:class:`zhizao.live.ingestor.LiveIngestor`.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from zhizao.errors import InputError

DEFAULT_PREFIX = "zhizao/v1"
#: ISA-95 levels in topic order.
TOPIC_LEVELS = ("enterprise", "site", "area", "work_center", "equipment")
#: canonical tables accepted over MQTT (shop-floor data; the portfolio tables are not streamed)
LIVE_TABLES = ("equipment", "states", "production", "energy", "quality", "calendar", "labour", "products",
               "variables")
#: tables whose records belong to the topic's equipment
SUBJECT_TABLES = ("equipment", "states", "production", "energy", "quality")
#: placeholder of a topic level that does not apply
NO_LEVEL = "_"

#: quarantine rules added by live ingestion (the loader's rules are in :mod:`zhizao.ingest.load`)
LIVE_RULES = {
    "malformed_topic": "the topic is not <prefix>/<enterprise>/<site>/<area>/<work_center>/<equipment>/<table>",
    "unknown_table": "the topic's table is not a canonical table accepted live",
    "malformed_payload": "the payload is not UTF-8 JSON, or not an object or an array of objects",
    "topic_mismatch": "the record names another equipment (or hierarchy level) than its topic",
    "mapping_error": "the table's mapping file cannot be applied to the records",
    "unloadable": "the message makes its batch fail in the store (found by halving the batch); the store error",
}


@dataclass(frozen=True)
class Topic:
    """A parsed topic: the hierarchy levels (None for ``_``) and the table."""

    enterprise: str | None
    site: str | None
    area: str | None
    work_center: str | None
    equipment: str | None
    table: str

    def levels(self) -> dict[str, str | None]:
        return {k: getattr(self, k) for k in TOPIC_LEVELS}


class TopicError(InputError):
    """A topic outside the namespace; ``rule`` is the quarantine rule."""

    def __init__(self, rule: str, detail: str, table: str = ""):
        super().__init__(detail)
        self.rule = rule
        self.table = table


@functools.lru_cache(maxsize=65536)
def parse_topic(topic: str, prefix: str = DEFAULT_PREFIX) -> Topic:
    """Split ``topic`` into hierarchy levels and table.

    Raises
    ------
    TopicError
        ``malformed_topic`` (wrong prefix or number of levels, empty level) or ``unknown_table``.
    """
    pre = prefix.strip("/").split("/") if prefix.strip("/") else []
    parts = topic.split("/")
    if parts[:len(pre)] != pre or len(parts) != len(pre) + len(TOPIC_LEVELS) + 1:
        raise TopicError("malformed_topic", f"topic {topic!r} is not {prefix}/<enterprise>/<site>/<area>/"
                                            f"<work_center>/<equipment>/<table>")
    rest = parts[len(pre):]
    if any(p == "" for p in rest):
        raise TopicError("malformed_topic", f"topic {topic!r} has an empty level")
    table = rest[-1]
    if table not in LIVE_TABLES:
        raise TopicError("unknown_table", f"topic table {table!r} is not one of {', '.join(LIVE_TABLES)}",
                         table=table)
    levels = [None if p == NO_LEVEL else p for p in rest[:-1]]
    if table in SUBJECT_TABLES and levels[-1] is None:
        raise TopicError("malformed_topic", f"topic {topic!r}: {table} records need an equipment level",
                         table=table)
    return Topic(*levels, table=table)


def topic_for(table: str, equipment: str | None = None, work_center: str | None = None, area: str | None = None,
              site: str | None = None, enterprise: str | None = None, prefix: str = DEFAULT_PREFIX) -> str:
    """The topic of ``table`` records of one equipment (or a higher level: missing levels become ``_``)."""
    levels = [enterprise, site, area, work_center, equipment]
    return "/".join([prefix.strip("/"), *[NO_LEVEL if v in (None, "") else str(v) for v in levels], table])


def message_hash(topic: str, payload: bytes) -> str:
    """Identity of a message for redelivery dedupe: BLAKE2b-128 of topic and payload, hex."""
    return hashlib.blake2b(b"%s\x00%s" % (topic.encode("utf-8", "surrogateescape"), payload),
                           digest_size=16).hexdigest()


def raw_text(payload: bytes, limit: int = 4096) -> str:
    """The payload as a JSON document for the quarantine's raw column (a JSON string if it is not JSON)."""
    text = payload[:limit].decode("utf-8", "replace")
    try:
        json.loads(payload)
        if len(payload) <= limit:
            return payload.decode("utf-8")
    except (UnicodeDecodeError, ValueError):
        pass
    return json.dumps(text, ensure_ascii=False)

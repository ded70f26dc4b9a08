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
from zhizao.ingest.rules import RULES as _RULES
from zhizao.messages import Message, define

#: details of the live quarantine rules (structured messages: code and parameters in the quarantine)
MALFORMED_TOPIC = define("live.malformed_topic", "topic %(topic)s is not %(prefix)s/<enterprise>/<site>/<area>/"
                                                 "<work_center>/<equipment>/<table>")
EMPTY_LEVEL = define("live.empty_level", "topic %(topic)s has an empty level")
UNKNOWN_TABLE = define("live.unknown_table", "topic table %(table)s is not one of %(tables)s")
NEEDS_EQUIPMENT = define("live.needs_equipment", "topic %(topic)s: %(table)s records need an equipment level")
NOT_UTF8 = define("live.not_utf8", "not UTF-8: %(error)s")
NOT_JSON = define("live.not_json", "not JSON")
NOT_OBJECT = define("live.not_object", "record %(index)s is a JSON %(type)s, not an object")
NO_COLUMN = define("live.no_column", "record %(index)s has no column of table %(table)s")
TOO_MANY_KEYS = define("live.too_many_keys", "record %(index)s has %(keys)s keys, more than the limit of %(limit)s")
PAYLOAD_TOO_LARGE = define("live.payload_too_large", "the message has %(bytes)s bytes, more than the limit of "
                                                     "%(limit)s")
TOPIC_MISMATCH = define("live.topic_mismatch", "record %(column)s '%(value)s' differs from the topic's "
                                               "%(level)s '%(topic_value)s'")
UNLOADABLE = define("live.unloadable", "%(error)s")
MAPPING_ERROR = define("live.mapping_error", "%(error)s")

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
LIVE_RULES = {r: d for r, d in _RULES.items()
              if r in ("malformed_topic", "unknown_table", "malformed_payload", "payload_too_large", "too_many_keys",
                       "topic_mismatch", "mapping_error", "unloadable")}


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

    def __init__(self, rule: str, detail: Message | str, table: str = ""):
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
        raise TopicError("malformed_topic", MALFORMED_TOPIC(topic=repr(topic), prefix=prefix))
    rest = parts[len(pre):]
    if any(p == "" for p in rest):
        raise TopicError("malformed_topic", EMPTY_LEVEL(topic=repr(topic)))
    table = rest[-1]
    if table not in LIVE_TABLES:
        raise TopicError("unknown_table", UNKNOWN_TABLE(table=repr(table), tables=list(LIVE_TABLES)), table=table)
    # the levels of TOPIC_LEVELS, None for NO_LEVEL
    enterprise, site, area, work_center, equipment = (None if p == NO_LEVEL else p for p in rest[:-1])
    if table in SUBJECT_TABLES and equipment is None:
        raise TopicError("malformed_topic", NEEDS_EQUIPMENT(topic=repr(topic), table=table), table=table)
    return Topic(enterprise, site, area, work_center, equipment, table=table)


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

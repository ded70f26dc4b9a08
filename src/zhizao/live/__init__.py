"""Live ingestion: MQTT and OPC UA sources into the canonical tables, exactly once (see docs/live.md).

Example (needs a broker; not run as a doctest)::

    from zhizao.live import LiveIngestor, MqttListener
    ing = LiveIngestor("plant.duckdb")
    listener = MqttListener(ing, "127.0.0.1", 1883)
    listener.start()
    ing.kpi(level="work_center")      # the current shift so far, every committed record included
    listener.stop(); ing.close()
"""

from zhizao.live.ingestor import BatchReport, LiveIngestor, current_shift
from zhizao.live.mqtt import MqttListener, MqttPublisher, TlsOptions, parse_broker
from zhizao.live.opcua import Converter, NodesConfig, NodesError, OpcUaListener, counter_delta, load_nodes, parse_nodes
from zhizao.live.topics import DEFAULT_PREFIX, LIVE_RULES, LIVE_TABLES, message_hash, parse_topic, topic_for

__all__ = [
           "DEFAULT_PREFIX",
           "LIVE_RULES",
           "LIVE_TABLES",
           "BatchReport",
           "Converter",
           "LiveIngestor",
           "MqttListener",
           "MqttPublisher",
           "NodesConfig",
           "NodesError",
           "OpcUaListener",
           "TlsOptions",
           "counter_delta",
           "current_shift",
           "load_nodes",
           "message_hash",
           "parse_broker",
           "parse_nodes",
           "parse_topic",
           "topic_for",
]

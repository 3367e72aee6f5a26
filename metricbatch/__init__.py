"""metricbatch: cheap, safe custom CloudWatch metrics at any volume.

from metricbatch import send_metric
send_metric("Latency", 12.5, unit="Milliseconds", namespace="Shop/Checkout", dimensions={"Service": "cart"})
"""

from __future__ import annotations

from metricbatch.default import default_producer, flush, send_metric, set_default_producer, stats
from metricbatch.exceptions import ConfigurationError, InvalidMetricError, MetricBatchError, WireFormatError
from metricbatch.producer import MetricProducer, ProducerConfig
from metricbatch.timing import flush_after, flushing, timer

__all__ = [
    "ConfigurationError",
    "InvalidMetricError",
    "MetricBatchError",
    "MetricProducer",
    "ProducerConfig",
    "WireFormatError",
    "default_producer",
    "flush",
    "flush_after",
    "flushing",
    "send_metric",
    "set_default_producer",
    "stats",
    "timer",
]
__version__ = "0.1.0"

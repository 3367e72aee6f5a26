"""metricbatch: cheap, safe custom CloudWatch metrics at any volume.

from metricbatch import send_metric
send_metric("Latency", 12.5, unit="Milliseconds", namespace="Shop/Checkout", dimensions={"Service": "cart"})

The public names are imported lazily (PEP 562): ``import metricbatch`` costs almost nothing, and the batcher
Lambda, which imports ``metricbatch.batcher``, never loads the producer side.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from metricbatch.exceptions import ConfigurationError, InvalidMetricError, MetricBatchError, WireFormatError
    from metricbatch.producer.config import ProducerConfig
    from metricbatch.producer.default import default_producer, flush, send_metric, series, set_default_producer, stats
    from metricbatch.producer.instrument import instrument_boto3, uninstrument_boto3
    from metricbatch.producer.producer import MetricProducer
    from metricbatch.producer.series import SeriesHandle
    from metricbatch.producer.timing import flush_after, flushing, timer

# public name -> the module that defines it
_EXPORTS = {
    "ConfigurationError": "metricbatch.exceptions",
    "InvalidMetricError": "metricbatch.exceptions",
    "MetricBatchError": "metricbatch.exceptions",
    "WireFormatError": "metricbatch.exceptions",
    "MetricProducer": "metricbatch.producer.producer",
    "ProducerConfig": "metricbatch.producer.config",
    "SeriesHandle": "metricbatch.producer.series",
    "default_producer": "metricbatch.producer.default",
    "flush": "metricbatch.producer.default",
    "send_metric": "metricbatch.producer.default",
    "series": "metricbatch.producer.default",
    "set_default_producer": "metricbatch.producer.default",
    "stats": "metricbatch.producer.default",
    "flush_after": "metricbatch.producer.timing",
    "flushing": "metricbatch.producer.timing",
    "timer": "metricbatch.producer.timing",
    "instrument_boto3": "metricbatch.producer.instrument",
    "uninstrument_boto3": "metricbatch.producer.instrument",
}

__all__ = [
    "ConfigurationError",
    "InvalidMetricError",
    "MetricBatchError",
    "MetricProducer",
    "ProducerConfig",
    "SeriesHandle",
    "WireFormatError",
    "default_producer",
    "flush",
    "flush_after",
    "flushing",
    "instrument_boto3",
    "send_metric",
    "series",
    "set_default_producer",
    "stats",
    "timer",
    "uninstrument_boto3",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'metricbatch' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])

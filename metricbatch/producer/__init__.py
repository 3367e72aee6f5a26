"""The producer side: what a service imports to send metrics (``send_metric``, ``MetricProducer``, ``timer``)."""

from __future__ import annotations

from metricbatch.producer.config import ProducerConfig
from metricbatch.producer.producer import MetricProducer
from metricbatch.producer.series import SeriesHandle

__all__ = ["MetricProducer", "ProducerConfig", "SeriesHandle"]

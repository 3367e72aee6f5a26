"""The producer side: what a service imports to send metrics (``send_metric``, ``MetricProducer``, ``timer``)."""

from __future__ import annotations

from metricbatch.producer.producer import MetricProducer, ProducerConfig

__all__ = ["MetricProducer", "ProducerConfig"]

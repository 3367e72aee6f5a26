"""Unit tests of metricbatch/producer/."""

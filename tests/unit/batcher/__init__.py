"""Unit tests of metricbatch/batcher/."""

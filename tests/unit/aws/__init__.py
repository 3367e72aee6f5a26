"""Unit tests of metricbatch/aws/."""

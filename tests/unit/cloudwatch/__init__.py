"""Unit tests of metricbatch/cloudwatch/."""

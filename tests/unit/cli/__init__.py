"""Unit tests of metricbatch/cli/."""

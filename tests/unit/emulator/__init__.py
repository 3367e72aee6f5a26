"""Unit tests of metricbatch/emulator/."""

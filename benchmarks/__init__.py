"""Side-by-side measurements behind ``make bench`` (``python -m benchmarks``); not tests."""

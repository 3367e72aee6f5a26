"""The ``metricbatch_metrics`` fixture comes with the installed package: a project outside this repository, with no
conftest of its own, gets it from the ``pytest11`` entry point; switching modes between its tests leaks nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

OUTSIDE_TESTS = '''
    import pytest
    import metricbatch
    from metricbatch import InvalidMetricError, MetricProducer
    from metricbatch.testing import captured


    def checkout(items):
        """The code under test: counts orders and items through the module-level helpers."""
        metricbatch.send_metric("Orders", 1, unit="Count", namespace="Shop", dimensions={"Service": "cart"})
        metricbatch.series("Items", unit="Count", namespace="Shop").send(items)


    def test_a_captures_what_the_code_sends(metricbatch_metrics):
        checkout(3)
        assert metricbatch_metrics.values("Orders") == [1.0]
        assert [(m.name, m.value, m.unit) for m in metricbatch_metrics.captured("Items")] == [("Items", 3.0, "Count")]
        assert metricbatch.stats()["mode"] == "memory"


    def test_b_another_mode_in_the_next_test_sees_no_leak(monkeypatch):
        monkeypatch.setenv("METRICBATCH_MODE", "off")
        metricbatch.set_default_producer(None)
        checkout(5)
        assert metricbatch.stats()["mode"] == "off"
        assert metricbatch.stats()["discarded"] == 2
        assert captured() == []
        metricbatch.set_default_producer(None)


    def test_c_the_fixture_again_holds_only_this_tests_metrics(metricbatch_metrics):
        checkout(7)
        assert metricbatch_metrics.values("Items") == [7.0]
        with pytest.raises(InvalidMetricError, match="value.finite"):
            metricbatch.send_metric("Orders", float("inf"), namespace="Shop")
        assert len(metricbatch_metrics) == 2


    def test_d_after_the_fixture_the_environment_decides_again():
        assert metricbatch.default_producer().mode == "off"  # no queue URL, no mode in this environment
        assert captured() == []
'''


def test_the_fixture_works_in_a_project_that_only_installed_the_package(tmp_path: Path) -> None:
    (tmp_path / "test_outside.py").write_text(textwrap.dedent(OUTSIDE_TESTS))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("METRICBATCH_", "AWS_", "PYTEST_"))}
    env.pop("PYTHONPATH", None)  # the installed package, not this checkout's path
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_outside.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "4 passed" in result.stdout

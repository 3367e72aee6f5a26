"""The end-to-end tier runs the batcher as Lambda runs it: the dev stack's synthesized package, once per session."""

from __future__ import annotations

from pathlib import Path

import pytest
from e2e_support import synth_assembly


@pytest.fixture(scope="session")
def deployed_assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The dev stack's cloud assembly (``cdk synth -c env=dev``): its batcher asset is what the tests run."""
    return synth_assembly(tmp_path_factory.mktemp("e2e-cdk") / "dev")

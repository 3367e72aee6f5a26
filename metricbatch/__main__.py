from __future__ import annotations

import sys

from metricbatch.cli import main

sys.exit(main())

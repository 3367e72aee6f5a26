"""The workloads every design runs: steady mixed traffic, high cardinality, bursts."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

# (namespace, metric, unit, dimension name, value range) — what service wrappers emit.
_SHAPES = (
    ("Shop/Checkout", "DynamoDB.GetItem", "Milliseconds", "Table", (2, 40)),
    ("Shop/Checkout", "DynamoDB.PutItem", "Milliseconds", "Table", (4, 60)),
    ("Shop/Checkout", "KMS.Decrypt", "Milliseconds", "KeyAlias", (3, 25)),
    ("Shop/Checkout", "OrdersPlaced", "Count", "Channel", (1, 1)),
    ("Shop/Catalog", "S3.GetObject", "Milliseconds", "Bucket", (8, 120)),
    ("Shop/Catalog", "S3.PutObject.Size", "Bytes", "Bucket", (1024, 4_000_000)),
    ("Shop/Catalog", "SecretsManager.GetSecretValue", "Milliseconds", "Secret", (10, 90)),
    ("Shop/Catalog", "CacheHits", "Count", "Cache", (0, 1)),
)

Metric = tuple[str, str, str, dict[str, str], float]  # namespace, name, unit, dimensions, value


@dataclass(frozen=True)
class Workload:
    name: str
    description: str
    metrics: list[Metric]
    series: int
    rate: float | None  # metrics per second the producers emit at (None: as fast as they can)
    burst: int = 0  # metrics per burst (bursty workload), one burst per second

    def __len__(self) -> int:
        return len(self.metrics)


def _metrics(count: int, series: int, seed: int) -> list[Metric]:
    rng = random.Random(seed)
    dims = [
        {_SHAPES[i % len(_SHAPES)][3]: f"v{i // len(_SHAPES)}", "Service": f"service-{i % 4}"} for i in range(series)
    ]
    out: list[Metric] = []
    for _ in range(count):
        s = rng.randrange(series)
        namespace, name, unit, _, (low, high) = _SHAPES[s % len(_SHAPES)]
        if unit in ("Count", "Bytes"):
            value = float(rng.randint(int(low), int(high)))
        else:
            value = round(rng.lognormvariate(math.log((low + high) / 4), 0.6), 1)
        out.append((namespace, name, unit, dims[s], value))
    return out


def workloads(scale: float = 1.0) -> list[Workload]:
    n = int(20_000 * scale)
    return [
        Workload("steady", "mixed service traffic, 100 series, 5,000 metrics/s", _metrics(n, 100, 1), 100, 5000.0),
        Workload("high-cardinality", "5,000 series, as fast as possible", _metrics(n, 5000, 2), 5000, None),
        Workload(
            "bursty", "100 series, bursts of 5,000 metrics once a second", _metrics(n, 100, 3), 100, None, burst=5000
        ),
    ]

// What memory mode keeps (metricbatch/producer/capture.py): every accepted metric as it was sent, in one store per
// process that metricbatch/testing reads and clears.
import { processWide } from "./process-wide.js";
import type { Series } from "./wire.js";

// Memory mode is meant for tests, but must not grow without end if a service runs in it: beyond this many metrics
// it drops (and counts) further ones (MAX_CAPTURED in metricbatch/producer/capture.py).
export const MAX_CAPTURED = 1_000_000;

/** One accepted sendMetric call, after validation (frozen). */
export interface CapturedMetric {
  readonly namespace: string;
  readonly name: string;
  readonly value: number;
  readonly unit: string;
  readonly dimensions: Readonly<Record<string, string>>;
  /** Epoch seconds, as given (default: when it was sent). */
  readonly timestamp: number;
  readonly storageResolution: number;
}

/** Only the captured metrics with this namespace and/or exactly these dimensions. */
export interface CaptureFilter {
  namespace?: string;
  dimensions?: Record<string, string>;
}

function sameDimensions(a: Readonly<Record<string, string>>, b: Record<string, string>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => Object.hasOwn(b, k) && a[k] === b[k]);
}

export class CaptureStore {
  private readonly metrics: CapturedMetric[] = [];

  constructor(private readonly limit: number = MAX_CAPTURED) {}

  /** Keep one metric; false when the store is full (the producer counts it as dropped). */
  add(series: Series, value: number, timestamp: number): boolean {
    if (this.metrics.length >= this.limit) return false;
    this.metrics.push(
      Object.freeze({
        namespace: series.namespace,
        name: series.name,
        value,
        unit: series.unit,
        dimensions: Object.freeze(Object.fromEntries(series.dimensions)),
        timestamp,
        storageResolution: series.resolution,
      }),
    );
    return true;
  }

  select(name: string | undefined, filter: CaptureFilter): CapturedMetric[] {
    const { namespace, dimensions } = filter;
    return this.metrics.filter(
      (m) =>
        (name === undefined || m.name === name) &&
        (namespace === undefined || m.namespace === namespace) &&
        (dimensions === undefined || sameDimensions(m.dimensions, dimensions)),
    );
  }

  clear(): void {
    this.metrics.length = 0;
  }
}

// One store per process, whichever build (ESM or CommonJS) sends and whichever reads metricbatch/testing.
export const STORE = processWide("captureStore", () => new CaptureStore());
